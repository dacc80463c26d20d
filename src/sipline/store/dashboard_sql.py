"""The web dashboard's sign-in links and sessions, and the first portal's webhook kept to be printed
again (DashboardRepository; docs/behaviour.md#dashboard). Tokens are kept only as their hashes."""

from __future__ import annotations

import sqlalchemy as sa

from sipline.store import schema as t
from sipline.store.crypto import Cell, SecretBox
from sipline.store.records import DashboardVisit
from sipline.store.sql_base import SqlPart

_link, _session, _user = t.dashboard_link, t.dashboard_session, t.user


class SqlDashboard(SqlPart):
    def insert_dashboard_link(self, *, portal_id: int, user_row_id: int, token_hash: str, expires_at: float) -> None:
        self.conn.execute(
            sa.insert(_link).values(
                portal_id=portal_id, user_id=user_row_id, token_hash=token_hash, expires_at=expires_at
            )
        )

    def take_dashboard_link(self, token_hash: str, portal_id: int, now: float) -> int | None:
        """Marks the link used, once: the user row it signs in, or None (unknown, used, expired, or
        another portal's)."""
        return self.conn.execute(
            sa.update(_link)
            .where(
                _link.c.token_hash == token_hash,
                _link.c.portal_id == portal_id,
                _link.c.used_at.is_(None),
                _link.c.expires_at > now,
            )
            .values(used_at=now)
            .returning(_link.c.user_id)
        ).scalar_one_or_none()

    def insert_dashboard_session(self, *, portal_id: int, user_row_id: int, token_hash: str, now: float) -> None:
        self.conn.execute(
            sa.insert(_session).values(
                portal_id=portal_id, user_id=user_row_id, token_hash=token_hash, created_at=now, seen_at=now
            )
        )

    def dashboard_visit(self, token_hash: str) -> DashboardVisit | None:
        row = (
            self.conn.execute(
                sa.select(
                    _session.c.id,
                    _session.c.portal_id,
                    _session.c.seen_at,
                    _user.c.number,
                    _user.c.name,
                    _user.c.is_admin,
                    _user.c.can_modify_numbers,
                    _user.c.active,
                )
                .join(_user, _user.c.id == _session.c.user_id)
                .where(_session.c.token_hash == token_hash)
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        return DashboardVisit(
            session_id=row["id"],
            portal_id=row["portal_id"],
            seen_at=row["seen_at"],
            user_number=row["number"],
            user_name=row["name"],
            is_admin=bool(row["is_admin"]),
            can_modify_numbers=bool(row["can_modify_numbers"] or row["is_admin"]),
            user_active=bool(row["active"]),
        )

    def touch_dashboard_session(self, session_id: int, now: float) -> None:
        self.conn.execute(sa.update(_session).where(_session.c.id == session_id).values(seen_at=now))

    def end_dashboard_sessions(self, *, session_id: int | None = None, portal_id: int | None = None) -> int:
        """Ends one session, or every session and unused link of a portal (None: of every portal);
        returns how many sessions ended."""
        if session_id is not None:
            return self.conn.execute(sa.delete(_session).where(_session.c.id == session_id)).rowcount
        sessions, links = sa.delete(_session), sa.delete(_link)
        if portal_id is not None:
            sessions = sessions.where(_session.c.portal_id == portal_id)
            links = links.where(_link.c.portal_id == portal_id)
        self.conn.execute(links)
        return self.conn.execute(sessions).rowcount

    def forget_dashboard_tokens(self, now: float, idle: float) -> None:
        """Drops links past their time and sessions idle longer than `idle`."""
        self.conn.execute(sa.delete(_link).where(_link.c.expires_at <= now))
        self.conn.execute(sa.delete(_session).where(_session.c.seen_at <= now - idle))

    # -- the first portal's webhook, printed at every start ------------------------------------------

    def keep_webhook_code(self, webhook_id: int, code: str) -> None:
        sealed = self.box.seal(code, Cell(t.webhook.name, "sealed_code", webhook_id))
        self.conn.execute(sa.update(t.webhook).where(t.webhook.c.id == webhook_id).values(sealed_code=sealed))

    def kept_webhook(self, portal_id: int) -> tuple[int, str] | None:
        """The portal's kept webhook while it is live: (its user's number, its code)."""
        row = self.conn.execute(
            sa.select(t.webhook.c.id, t.webhook.c.sealed_code, _user.c.number)
            .join(_user, _user.c.id == t.webhook.c.user_id)
            .where(
                t.webhook.c.portal_id == portal_id,
                t.webhook.c.sealed_code.is_not(None),
                t.webhook.c.active.is_(True),
                _user.c.active.is_(True),
            )
            .order_by(t.webhook.c.id)
            .limit(1)
        ).first()
        if row is None:
            return None
        return row.number, self.box.open(row.sealed_code, Cell(t.webhook.name, "sealed_code", row.id))

    def _reseal_kept_webhooks(self, new_box: SecretBox) -> int:
        rows = self.conn.execute(
            sa.select(t.webhook.c.id, t.webhook.c.sealed_code).where(t.webhook.c.sealed_code.is_not(None))
        ).all()
        for row_id, sealed in rows:
            cell = Cell(t.webhook.name, "sealed_code", row_id)
            resealed = new_box.seal(self.box.open(sealed, cell), cell)
            self.conn.execute(sa.update(t.webhook).where(t.webhook.c.id == row_id).values(sealed_code=resealed))
        return len(rows)
