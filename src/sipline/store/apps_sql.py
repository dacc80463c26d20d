"""OAuth applications, their one-time codes and tokens (AppRepository)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from sipline.store import schema as t
from sipline.store.crypto import Cell
from sipline.store.records import App, TokenGrant
from sipline.store.sql_base import SqlPart


class SqlApps(SqlPart):
    def insert_app(
        self,
        *,
        portal_id: int,
        client_id: str,
        secret_hash: str,
        name: str,
        scopes: str,
        handler_url: str,
        allowed_users: str | None,
        now: float,
        secret: str | None = None,
    ) -> App:
        app_id = self.conn.execute(
            sa.insert(t.app)
            .values(
                portal_id=portal_id,
                client_id=client_id,
                secret_hash=secret_hash,
                name=name,
                scopes=scopes,
                handler_url=handler_url,
                allowed_users=allowed_users,
                created_at=now,
            )
            .returning(t.app.c.id)
        ).scalar_one()
        if secret is not None:  # docs/behaviour.md#event-signature: it signs the app's deliveries
            sealed = self.box.seal(secret, Cell(t.app.name, "secret", app_id))
            self.conn.execute(sa.update(t.app).where(t.app.c.id == app_id).values(secret=sealed))
        return self._app_where(t.app.c.id == app_id)[0]  # type: ignore[index]

    def app_by_client_id(self, client_id: str) -> tuple[App, str] | None:
        """The app and its client secret's hash."""
        return self._app_where(t.app.c.client_id == client_id)

    def apps(self, portal_id: int) -> list[App]:
        rows = self.conn.execute(sa.select(t.app).where(t.app.c.portal_id == portal_id).order_by(t.app.c.id))
        return [_app(row) for row in rows.mappings()]

    def set_app_active(self, client_id: str, active: bool) -> bool:
        return bool(
            self.conn.execute(sa.update(t.app).where(t.app.c.client_id == client_id).values(active=active)).rowcount
        )

    def delete_app(self, client_id: str) -> bool:
        found = self._app_where(t.app.c.client_id == client_id)
        if found is None:
            return False
        app_id = found[0].id
        for table in (t.oauth_token, t.oauth_code):
            self.conn.execute(sa.delete(table).where(table.c.app_id == app_id))
        self.conn.execute(sa.delete(t.app).where(t.app.c.id == app_id))
        return True

    def insert_code(self, *, app_id: int, user_row_id: int, code_hash: str, expires_at: float) -> None:
        self.conn.execute(
            sa.insert(t.oauth_code).values(
                app_id=app_id, user_id=user_row_id, code_hash=code_hash, expires_at=expires_at
            )
        )

    def take_code(self, code_hash: str) -> tuple[int, int, float] | None:
        """(app row id, user row id, expires at) of a one-time code, which is gone afterwards."""
        row = self.conn.execute(
            sa.delete(t.oauth_code)
            .where(t.oauth_code.c.code_hash == code_hash)
            .returning(t.oauth_code.c.app_id, t.oauth_code.c.user_id, t.oauth_code.c.expires_at)
        ).first()
        return (row[0], row[1], row[2]) if row else None

    def insert_token(
        self,
        *,
        app_id: int,
        user_row_id: int,
        access_hash: str,
        refresh_hash: str,
        access_expires_at: float,
        refresh_expires_at: float,
        now: float,
    ) -> None:
        self.conn.execute(
            sa.delete(t.oauth_token).where(
                t.oauth_token.c.refresh_hash.is_(None), t.oauth_token.c.access_expires_at < now
            )
        )
        self.conn.execute(
            sa.insert(t.oauth_token).values(
                app_id=app_id,
                user_id=user_row_id,
                access_hash=access_hash,
                refresh_hash=refresh_hash,
                access_expires_at=access_expires_at,
                refresh_expires_at=refresh_expires_at,
                created_at=now,
            )
        )

    def take_refresh(self, refresh_hash: str) -> tuple[int, int, float] | None:
        """(app row id, user row id, refresh expiry) of a refresh token, which cannot be used again."""
        row = self.conn.execute(
            sa.update(t.oauth_token)
            .where(t.oauth_token.c.refresh_hash == refresh_hash)
            .values(refresh_hash=None)
            .returning(t.oauth_token.c.app_id, t.oauth_token.c.user_id, t.oauth_token.c.refresh_expires_at)
        ).first()
        return (row[0], row[1], row[2]) if row else None

    def token_grant(self, access_hash: str) -> TokenGrant | None:
        query = (
            sa.select(
                t.app,
                t.oauth_token.c.access_expires_at,
                t.user.c.number,
                t.user.c.active.label("user_active"),
                t.user.c.is_admin,
                t.user.c.can_modify_numbers,
            )
            .join(t.app, t.app.c.id == t.oauth_token.c.app_id)
            .join(t.user, t.user.c.id == t.oauth_token.c.user_id)
            .where(t.oauth_token.c.access_hash == access_hash)
        )
        row = self.conn.execute(query).mappings().first()
        if row is None:
            return None
        return TokenGrant(
            app=_app(row),
            user_number=row["number"],
            user_active=row["user_active"],
            user_is_admin=row["is_admin"],
            can_modify_numbers=row["can_modify_numbers"],
            expires_at=row["access_expires_at"],
        )

    def user_number(self, user_row_id: int) -> int:
        return self.conn.execute(sa.select(t.user.c.number).where(t.user.c.id == user_row_id)).scalar_one()

    def app_by_row(self, app_id: int) -> App:
        return self._app_where(t.app.c.id == app_id)[0]  # type: ignore[index]

    def _app_where(self, condition: sa.ColumnElement[bool]) -> tuple[App, str] | None:
        row = self.conn.execute(sa.select(t.app).where(condition)).mappings().first()
        return (_app(row), row["secret_hash"]) if row else None


def _app(row: RowMapping) -> App:
    allowed = row["allowed_users"]
    return App(
        id=row["id"],
        portal_id=row["portal_id"],
        client_id=row["client_id"],
        name=row["name"],
        scopes=frozenset(filter(None, row["scopes"].split(","))),
        handler_url=row["handler_url"],
        status=row["status"],
        version=row["version"],
        allowed_users=frozenset(int(n) for n in allowed.split(",") if n) if allowed is not None else None,
        active=row["active"],
        created_at=row["created_at"],
    )
