"""Portals, users and webhooks (AccountRepository)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from sipline.store import schema as t
from sipline.store.records import Portal, User, WebhookGrant, WebhookInfo
from sipline.store.sql_base import SqlPart, algorithm_list, storable
from sipline.store.topics import PORTAL_WRITE

# read by every sip.add and sip.delete: built once and run through SqlPart._driver (see lines_sql.py)
_PORTAL = sa.select(t.portal).where(t.portal.c.id == sa.bindparam("b_id"))
_LOCKED_PORTAL = _PORTAL.with_for_update()  # FOR UPDATE is dropped by the SQLite compiler


class SqlAccounts(SqlPart):
    def default_portal(self) -> Portal | None:
        row = self.conn.execute(sa.select(t.portal).order_by(t.portal.c.id).limit(1)).mappings().first()
        return _portal(row) if row else None

    def portal(self, portal_id: int) -> Portal:
        (row,) = self._driver(_PORTAL, [{"b_id": portal_id}])
        return _driver_portal(row)

    def lock_portal(self, portal_id: int) -> Portal:
        # SQLite: BEGIN IMMEDIATE already serialises writers.
        (row,) = self._driver(_LOCKED_PORTAL, [{"b_id": portal_id}])
        return _driver_portal(row)

    def insert_portal(
        self, *, domain: str, title: str, member_id: str, max_cloud_lines: int, now: float, max_lines: int | None = None
    ) -> Portal:
        limits = {} if max_lines is None else {"max_lines": max_lines}
        portal_id = self.conn.execute(
            sa.insert(t.portal)
            .values(
                **limits,
                domain=domain,
                title=title,
                member_id=member_id,
                max_cloud_lines=max_cloud_lines,
                paid_date_end="2099-12-31T00:00:00+00:00",
                created_at=now,
            )
            .returning(t.portal.c.id)
        ).scalar_one()
        self.conn.execute(sa.insert(t.lines_version).values(portal_id=portal_id))
        return self.portal(portal_id)

    def insert_user(self, *, portal_id: int, name: str, is_admin: bool, can_modify_numbers: bool) -> tuple[int, int]:
        number = (
            1
            + self.conn.execute(
                sa.select(sa.func.coalesce(sa.func.max(t.user.c.number), 0)).where(t.user.c.portal_id == portal_id)
            ).scalar_one()
        )
        row_id = self.conn.execute(
            sa.insert(t.user)
            .values(
                portal_id=portal_id,
                number=number,
                name=name,
                is_admin=is_admin,
                can_modify_numbers=can_modify_numbers or is_admin,
            )
            .returning(t.user.c.id)
        ).scalar_one()
        return row_id, number

    def user_row_id(self, portal_id: int, number: int) -> int | None:
        if not storable(number):
            return None
        return self.conn.execute(
            sa.select(t.user.c.id).where(t.user.c.portal_id == portal_id, t.user.c.number == number)
        ).scalar_one_or_none()

    def insert_webhook(self, *, portal_id: int, user_row_id: int, code_hash: str, scopes: str, now: float) -> int:
        return self.conn.execute(
            sa.insert(t.webhook)
            .values(portal_id=portal_id, user_id=user_row_id, code_hash=code_hash, scopes=scopes, created_at=now)
            .returning(t.webhook.c.id)
        ).scalar_one()

    def webhook_grant(self, code_hash: str) -> WebhookGrant | None:
        query = (
            sa.select(
                t.webhook.c.id,
                t.webhook.c.portal_id,
                t.webhook.c.scopes,
                t.webhook.c.expires_at,
                t.user.c.number,
                t.user.c.active,
                t.user.c.can_modify_numbers,
                t.user.c.is_admin,
            )
            .join(t.user, t.user.c.id == t.webhook.c.user_id)
            .where(t.webhook.c.code_hash == code_hash, t.webhook.c.active.is_(True))
        )
        row = self.conn.execute(query).mappings().first()
        if row is None:
            return None
        return WebhookGrant(
            webhook_id=row["id"],
            portal_id=row["portal_id"],
            user_number=row["number"],
            scopes=frozenset(filter(None, row["scopes"].split(","))),
            expires_at=row["expires_at"],
            user_active=row["active"],
            can_modify_numbers=row["can_modify_numbers"],
            user_is_admin=row["is_admin"],
        )

    def portal_realms(self) -> dict[str, tuple[str, ...] | None]:
        query = sa.select(t.portal.c.incoming_server, t.portal.c.digest_algorithms).where(
            t.portal.c.incoming_server.is_not(None)
        )
        return {realm.lower(): algorithm_list(algorithms) for realm, algorithms in self.conn.execute(query)}

    def portal_by_domain(self, domain: str) -> Portal | None:
        row = self.conn.execute(sa.select(t.portal).where(t.portal.c.domain == domain)).mappings().first()
        return _portal(row) if row else None

    def portals(self) -> list[Portal]:
        return [_portal(row) for row in self.conn.execute(sa.select(t.portal).order_by(t.portal.c.id)).mappings()]

    def update_portal(self, portal_id: int, changes: dict[str, object]) -> None:
        self.touched.update(PORTAL_WRITE)
        self.conn.execute(sa.update(t.portal).where(t.portal.c.id == portal_id).values(changes))
        if "incoming_server" in changes:  # its office lines' INCOMING_SERVER, as sip.get shows them
            self._portal_lines_changed(portal_id)

    def set_default_line(self, portal_id: int, line_id: str | None) -> None:
        self.touched.update(PORTAL_WRITE)
        self.conn.execute(sa.update(t.portal).where(t.portal.c.id == portal_id).values(default_line=line_id))

    def user(self, portal_id: int, number: int) -> User | None:
        if not storable(number):
            return None
        row = (
            self.conn.execute(sa.select(t.user).where(t.user.c.portal_id == portal_id, t.user.c.number == number))
            .mappings()
            .first()
        )
        if row is None:
            return None
        return User(
            portal_id=row["portal_id"],
            number=row["number"],
            name=row["name"],
            last_name=row["last_name"],
            is_admin=row["is_admin"],
            can_modify_numbers=row["can_modify_numbers"],
            active=row["active"],
        )

    def set_user_active(self, portal_id: int, number: int, active: bool) -> bool:
        return storable(number) and bool(
            self.conn.execute(
                sa.update(t.user)
                .where(t.user.c.portal_id == portal_id, t.user.c.number == number)
                .values(active=active)
            ).rowcount
        )

    def webhooks(self, portal_id: int) -> list[WebhookInfo]:
        query = (
            sa.select(t.webhook, t.user.c.number)
            .join(t.user, t.user.c.id == t.webhook.c.user_id)
            .where(t.webhook.c.portal_id == portal_id)
            .order_by(t.webhook.c.id)
        )
        return [
            WebhookInfo(row["id"], row["number"], row["scopes"], row["created_at"], row["active"])
            for row in self.conn.execute(query).mappings()
        ]

    def revoke_webhook(self, portal_id: int, webhook_id: int) -> bool:
        return storable(webhook_id) and bool(
            self.conn.execute(
                sa.update(t.webhook)
                .where(t.webhook.c.portal_id == portal_id, t.webhook.c.id == webhook_id)
                .values(active=False)
            ).rowcount
        )


def _driver_portal(row: Mapping[Any, Any]) -> Portal:
    """A portal row as the driver gives it (booleans as 0/1 on SQLite)."""
    return _portal({**row, "paid": bool(row["paid"]), "active": bool(row["active"])})


def _portal(row: Mapping[Any, Any]) -> Portal:
    return Portal(
        id=row["id"],
        domain=row["domain"],
        title=row["title"],
        member_id=row["member_id"],
        max_cloud_lines=row["max_cloud_lines"],
        incoming_server=row["incoming_server"],
        default_line=row["default_line"],
        free_minutes=row["free_minutes"],
        paid=row["paid"],
        paid_date_end=row["paid_date_end"],
        rate_burst=row["rate_burst"],
        rate_drain=row["rate_drain"],
        active=row["active"],
        digest_algorithms=row["digest_algorithms"],
        max_lines=row["max_lines"],
    )
