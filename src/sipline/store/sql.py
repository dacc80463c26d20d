"""The repository over SQLAlchemy Core; the same statements run on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from sipline.store import schema as t
from sipline.store.crypto import Cell, SecretBox
from sipline.store.records import (
    App,
    Binding,
    LeaseRound,
    Line,
    LineType,
    NewLine,
    OfficeUser,
    Portal,
    Registration,
    RegistrationUpdate,
    StatusResult,
    TokenGrant,
    User,
    WebhookGrant,
    WebhookInfo,
)

_LINE_QUERY = sa.select(t.line, t.registration.c.reg_id).select_from(
    t.line.outerjoin(t.registration, t.registration.c.line_id == t.line.c.id)
)
# the line table's sealed columns: each value opens only in its own row and column (crypto.Cell)
SEALED_COLUMNS = ("password", "incoming_password", "incoming_ha1")
_SAVE_REGISTRATION = (
    sa.update(t.registration)
    .where(t.registration.c.reg_id == sa.bindparam("b_reg_id"))
    .values({name: sa.bindparam(name) for name in (
        "status_result", "status_code", "error_message", "last_updated", "call_id", "cseq_reserved",
        "registered_contact", "sent_contact", "expires_requested")})
)
_SAVE_LINE_STATUS = (
    sa.update(t.line)
    .where(t.line.c.id == sa.bindparam("b_line_id"))
    .values(registration_status_code=sa.bindparam("code"), registration_error_message=sa.bindparam("message"))
)
# scale-out: a worker writes only the lines whose lease it holds (a late write of one that lost a
# line would overwrite the Contacts its new owner stored)
_SAVE_REGISTRATION_LEASED = _SAVE_REGISTRATION.where(t.registration.c.lease_owner == sa.bindparam("b_owner"))
_SAVE_LINE_STATUS_LEASED = _SAVE_LINE_STATUS.where(sa.exists().where(
    t.registration.c.line_id == t.line.c.id, t.registration.c.lease_owner == sa.bindparam("b_owner")))
# The registrar's hot path (a group commit per batch of REGISTERs): statements built once, with
# IN lists of a few fixed sizes (padded by repeating an id), so each compiles once per dialect.
_IN_SIZES = (1, 8, 64)
_INT32 = 2**31
_BINDINGS_OF = {
    size: sa.select(t.binding)
    .where(t.binding.c.line_id.in_([sa.bindparam(f"l{i}") for i in range(size)]))
    .order_by(t.binding.c.id)
    for size in _IN_SIZES
}
_LOCK_LINES = {
    size: sa.select(t.line.c.id).where(t.line.c.id.in_([sa.bindparam(f"l{i}") for i in range(size)])).with_for_update()
    for size in _IN_SIZES
}
_BINDING_COLUMNS = [column.name for column in t.binding.columns if column.name != "id"]
_INSERT_BINDING = sa.insert(t.binding).values({name: sa.bindparam(name) for name in _BINDING_COLUMNS})
_THIS_BINDING = (t.binding.c.line_id == sa.bindparam("b_line_id"), t.binding.c.contact == sa.bindparam("b_contact"))
_DELETE_BINDING = sa.delete(t.binding).where(*_THIS_BINDING)
_UPDATE_BINDING = sa.update(t.binding).where(*_THIS_BINDING).values(
    {name: sa.bindparam(name) for name in _BINDING_COLUMNS if name not in ("line_id", "contact")})
_OFFICE_USER = (
    sa.select(t.line.c.id, t.line.c.portal_id, t.line.c.incoming_login, t.line.c.incoming_password,
              t.line.c.incoming_realm, t.line.c.incoming_ha1, t.portal.c.incoming_server,
              sa.func.coalesce(t.line.c.digest_algorithms, t.portal.c.digest_algorithms).label("digest_algorithms"))
    .join(t.portal, t.portal.c.id == t.line.c.portal_id)
    .where(t.line.c.incoming_login == sa.bindparam("b_login"), t.line.c.type == sa.bindparam("b_type"))
)
_SEALED_VALUES = (sa.select(t.line.c.id, *(t.line.c[name] for name in SEALED_COLUMNS))
                  .where(sa.or_(*(t.line.c[name].is_not(None) for name in SEALED_COLUMNS)))
                  .order_by(t.line.c.id))
# SQL text, and what turns a row of named parameters into the driver's positional ones (None: it takes names)
_COMPILED: dict[tuple[sa.Executable, str], tuple[str, Callable[[dict], tuple] | None]] = {}


class SqlRepository:
    def __init__(self, conn: Connection, box: SecretBox) -> None:
        self.conn = conn
        self.box = box

    # -- portals, users, webhooks ------------------------------------------------

    def default_portal(self) -> Portal | None:
        row = self.conn.execute(sa.select(t.portal).order_by(t.portal.c.id).limit(1)).mappings().first()
        return _portal(row) if row else None

    def portal(self, portal_id: int) -> Portal:
        return _portal(self.conn.execute(sa.select(t.portal).where(t.portal.c.id == portal_id)).mappings().one())

    def lock_portal(self, portal_id: int) -> Portal:
        # FOR UPDATE is dropped by the SQLite compiler; there BEGIN IMMEDIATE already serialises writers.
        query = sa.select(t.portal).where(t.portal.c.id == portal_id).with_for_update()
        return _portal(self.conn.execute(query).mappings().one())

    def insert_portal(self, *, domain: str, title: str, member_id: str, max_cloud_lines: int, now: float,
                      max_lines: int | None = None) -> Portal:
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
        return self.portal(portal_id)

    def insert_user(
        self, *, portal_id: int, name: str, is_admin: bool, can_modify_numbers: bool
    ) -> tuple[int, int]:
        number = 1 + self.conn.execute(
            sa.select(sa.func.coalesce(sa.func.max(t.user.c.number), 0)).where(t.user.c.portal_id == portal_id)
        ).scalar_one()
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
        if not _storable(number):
            return None
        return self.conn.execute(
            sa.select(t.user.c.id).where(t.user.c.portal_id == portal_id, t.user.c.number == number)
        ).scalar_one_or_none()

    def insert_webhook(
        self, *, portal_id: int, user_row_id: int, code_hash: str, scopes: str, now: float
    ) -> int:
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
        query = (sa.select(t.portal.c.incoming_server, t.portal.c.digest_algorithms)
                 .where(t.portal.c.incoming_server.is_not(None)))
        return {realm.lower(): _algorithms(algorithms) for realm, algorithms in self.conn.execute(query)}

    def portal_by_domain(self, domain: str) -> Portal | None:
        row = self.conn.execute(sa.select(t.portal).where(t.portal.c.domain == domain)).mappings().first()
        return _portal(row) if row else None

    def portals(self) -> list[Portal]:
        return [_portal(row) for row in self.conn.execute(sa.select(t.portal).order_by(t.portal.c.id)).mappings()]

    def update_portal(self, portal_id: int, changes: dict[str, object]) -> None:
        self.conn.execute(sa.update(t.portal).where(t.portal.c.id == portal_id).values(changes))

    def user(self, portal_id: int, number: int) -> User | None:
        if not _storable(number):
            return None
        row = self.conn.execute(
            sa.select(t.user).where(t.user.c.portal_id == portal_id, t.user.c.number == number)
        ).mappings().first()
        if row is None:
            return None
        return User(portal_id=row["portal_id"], number=row["number"], name=row["name"], last_name=row["last_name"],
                    is_admin=row["is_admin"], can_modify_numbers=row["can_modify_numbers"], active=row["active"])

    def set_user_active(self, portal_id: int, number: int, active: bool) -> bool:
        return _storable(number) and bool(self.conn.execute(
            sa.update(t.user).where(t.user.c.portal_id == portal_id, t.user.c.number == number).values(active=active)
        ).rowcount)

    def webhooks(self, portal_id: int) -> list[WebhookInfo]:
        query = (sa.select(t.webhook, t.user.c.number).join(t.user, t.user.c.id == t.webhook.c.user_id)
                 .where(t.webhook.c.portal_id == portal_id).order_by(t.webhook.c.id))
        return [WebhookInfo(row["id"], row["number"], row["scopes"], row["created_at"], row["active"])
                for row in self.conn.execute(query).mappings()]

    def revoke_webhook(self, portal_id: int, webhook_id: int) -> bool:
        return _storable(webhook_id) and bool(self.conn.execute(
            sa.update(t.webhook).where(t.webhook.c.portal_id == portal_id, t.webhook.c.id == webhook_id)
            .values(active=False)
        ).rowcount)

    # -- OAuth applications, codes, tokens -----------------------------------------------------

    def insert_app(self, *, portal_id: int, client_id: str, secret_hash: str, name: str, scopes: str,
                   handler_url: str, allowed_users: str | None, now: float) -> App:
        app_id = self.conn.execute(
            sa.insert(t.app).values(portal_id=portal_id, client_id=client_id, secret_hash=secret_hash, name=name,
                                    scopes=scopes, handler_url=handler_url, allowed_users=allowed_users,
                                    created_at=now).returning(t.app.c.id)
        ).scalar_one()
        return self._app_where(t.app.c.id == app_id)[0]  # type: ignore[index]

    def app_by_client_id(self, client_id: str) -> tuple[App, str] | None:
        """The app and its client secret's hash."""
        return self._app_where(t.app.c.client_id == client_id)

    def apps(self, portal_id: int) -> list[App]:
        rows = self.conn.execute(sa.select(t.app).where(t.app.c.portal_id == portal_id).order_by(t.app.c.id))
        return [_app(row) for row in rows.mappings()]

    def set_app_active(self, client_id: str, active: bool) -> bool:
        return bool(self.conn.execute(
            sa.update(t.app).where(t.app.c.client_id == client_id).values(active=active)).rowcount)

    def insert_code(self, *, app_id: int, user_row_id: int, code_hash: str, expires_at: float) -> None:
        self.conn.execute(sa.insert(t.oauth_code).values(app_id=app_id, user_id=user_row_id, code_hash=code_hash,
                                                          expires_at=expires_at))

    def take_code(self, code_hash: str) -> tuple[int, int, float] | None:
        """(app row id, user row id, expires at) of a one-time code, which is gone afterwards."""
        row = self.conn.execute(sa.delete(t.oauth_code).where(t.oauth_code.c.code_hash == code_hash).returning(
            t.oauth_code.c.app_id, t.oauth_code.c.user_id, t.oauth_code.c.expires_at)).first()
        return (row[0], row[1], row[2]) if row else None

    def insert_token(self, *, app_id: int, user_row_id: int, access_hash: str, refresh_hash: str,
                     access_expires_at: float, refresh_expires_at: float, now: float) -> None:
        self.conn.execute(sa.delete(t.oauth_token).where(t.oauth_token.c.refresh_hash.is_(None),
                                                         t.oauth_token.c.access_expires_at < now))
        self.conn.execute(sa.insert(t.oauth_token).values(
            app_id=app_id, user_id=user_row_id, access_hash=access_hash, refresh_hash=refresh_hash,
            access_expires_at=access_expires_at, refresh_expires_at=refresh_expires_at, created_at=now))

    def take_refresh(self, refresh_hash: str) -> tuple[int, int, float] | None:
        """(app row id, user row id, refresh expiry) of a refresh token, which cannot be used again."""
        row = self.conn.execute(
            sa.update(t.oauth_token).where(t.oauth_token.c.refresh_hash == refresh_hash).values(refresh_hash=None)
            .returning(t.oauth_token.c.app_id, t.oauth_token.c.user_id, t.oauth_token.c.refresh_expires_at)).first()
        return (row[0], row[1], row[2]) if row else None

    def token_grant(self, access_hash: str) -> TokenGrant | None:
        query = (sa.select(t.app, t.oauth_token.c.access_expires_at, t.user.c.number, t.user.c.active.label("user_active"),
                           t.user.c.is_admin, t.user.c.can_modify_numbers)
                 .join(t.app, t.app.c.id == t.oauth_token.c.app_id)
                 .join(t.user, t.user.c.id == t.oauth_token.c.user_id)
                 .where(t.oauth_token.c.access_hash == access_hash))
        row = self.conn.execute(query).mappings().first()
        if row is None:
            return None
        return TokenGrant(app=_app(row), user_number=row["number"], user_active=row["user_active"],
                          user_is_admin=row["is_admin"], can_modify_numbers=row["can_modify_numbers"],
                          expires_at=row["access_expires_at"])

    def user_number(self, user_row_id: int) -> int:
        return self.conn.execute(sa.select(t.user.c.number).where(t.user.c.id == user_row_id)).scalar_one()

    def app_by_row(self, app_id: int) -> App:
        return self._app_where(t.app.c.id == app_id)[0]  # type: ignore[index]

    def _app_where(self, condition: sa.ColumnElement[bool]) -> tuple[App, str] | None:
        row = self.conn.execute(sa.select(t.app).where(condition)).mappings().first()
        return (_app(row), row["secret_hash"]) if row else None

    def set_default_line(self, portal_id: int, line_id: str | None) -> None:
        self.conn.execute(sa.update(t.portal).where(t.portal.c.id == portal_id).values(default_line=line_id))

    # -- lines -------------------------------------------------------------------

    def lines(self, portal_id: int, app_id: str | None) -> list[Line]:
        query = _LINE_QUERY.where(t.line.c.portal_id == portal_id)
        if app_id is not None:
            query = query.where(t.line.c.app_id == app_id)
        return [self._line(row) for row in self.conn.execute(query.order_by(t.line.c.config_id)).mappings()]

    def line_by_config(self, portal_id: int, config_id: int) -> Line | None:
        if not _storable(config_id):
            return None
        query = _LINE_QUERY.where(t.line.c.portal_id == portal_id, t.line.c.config_id == config_id)
        row = self.conn.execute(query).mappings().first()
        return self._line(row) if row else None

    def count_cloud_lines(self, portal_id: int) -> int:
        return self.count_lines(portal_id, LineType.CLOUD)

    def count_lines(self, portal_id: int, type_: LineType | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(t.line).where(t.line.c.portal_id == portal_id)
        if type_ is not None:
            query = query.where(t.line.c.type == type_.value)
        return self.conn.execute(query).scalar_one()

    def title_taken(self, portal_id: int, title_key: str, except_line_id: int | None) -> bool:
        query = sa.select(t.line.c.id).where(t.line.c.portal_id == portal_id, t.line.c.title_key == title_key)
        if except_line_id is not None:
            query = query.where(t.line.c.id != except_line_id)
        return self.conn.execute(query.limit(1)).first() is not None

    def next_config_id(self) -> int:
        return self._next("config_id")

    def insert_line(self, new: NewLine, now: float) -> Line:
        line_id = self.conn.execute(
            sa.insert(t.line)
            .values(
                config_id=new.config_id,
                portal_id=new.portal_id,
                app_id=new.app_id,
                type=new.type.value,
                title=new.title,
                title_key=new.title_key,
                server=new.server,
                login=new.login,
                incoming_login=new.incoming_login,
                registration_status_code=new.registration_status_code,
                digest_algorithms=new.digest_algorithms,
                created_at=now,
            )
            .returning(t.line.c.id)
        ).scalar_one()
        # sealed once the row has its id, which the sealed values are bound to
        sealed = {"password": new.password, "incoming_password": new.incoming_password}
        if any(value is not None for value in sealed.values()):
            self.update_line(line_id, sealed)
        if new.session is not None:
            self.conn.execute(
                sa.insert(t.registration).values(
                    reg_id=self._next("reg_id"),
                    line_id=line_id,
                    status_result=StatusResult.WAIT.value,
                    last_updated=now,
                    call_id=new.session.call_id,
                    contact_token=new.session.contact_token,
                )
            )
        row = self.conn.execute(_LINE_QUERY.where(t.line.c.id == line_id)).mappings().one()
        return self._line(row)

    def update_line(self, line_id: int, changes: dict[str, object]) -> None:
        values = {
            column: self._seal(value, column, line_id) if column in SEALED_COLUMNS else value  # type: ignore[arg-type]
            for column, value in changes.items()
        }
        self.conn.execute(sa.update(t.line).where(t.line.c.id == line_id).values(**values))

    def delete_line(self, line_id: int) -> None:
        self.conn.execute(sa.delete(t.registration).where(t.registration.c.line_id == line_id))
        self.conn.execute(sa.delete(t.binding).where(t.binding.c.line_id == line_id))
        self.conn.execute(sa.delete(t.line).where(t.line.c.id == line_id))

    def reseal(self, new_box: SecretBox) -> int:
        count = 0
        for row in self.conn.execute(_SEALED_VALUES).mappings():
            values = {name: new_box.seal(self._open(row[name], name, row["id"]), _cell(name, row["id"]))
                      for name in SEALED_COLUMNS if row[name] is not None}
            if values:
                self.conn.execute(sa.update(t.line).where(t.line.c.id == row["id"]).values(values))
                count += len(values)
        return count

    def sample_secret(self) -> str | None:
        row = self.conn.execute(_SEALED_VALUES.limit(1)).mappings().first()
        if row is None:
            return None
        name = next(name for name in SEALED_COLUMNS if row[name] is not None)
        return self._open(row[name], name, row["id"])

    def registration(self, portal_id: int, app_id: str, reg_id: int) -> Registration | None:
        query = (
            sa.select(t.registration)
            .join(t.line, t.line.c.id == t.registration.c.line_id)
            .where(t.registration.c.reg_id == reg_id, t.line.c.portal_id == portal_id, t.line.c.app_id == app_id)
        )
        row = self.conn.execute(query).mappings().first()
        return None if row is None else _registration(row)

    def cloud_registrations(self, line_ids: Sequence[int] | None = None) -> list[tuple[Line, Registration]]:
        query = (
            sa.select(t.line, t.registration)
            .join(t.registration, t.registration.c.line_id == t.line.c.id)
            .order_by(t.line.c.id)
        )
        if line_ids is not None:
            query = query.where(t.line.c.id.in_(line_ids))
        return [(self._line(row), _registration(row)) for row in self.conn.execute(query).mappings()]

    # -- scale-out: leases of `sip` workers (PostgreSQL) -------------------------------------------

    def lease_round(self, worker: str, lease_time: float, max_moves: int, acquire: bool = True) -> LeaseRound:
        reg, workers_table, now = t.registration, t.sip_worker, self._db_now()
        # a line's lease is its owner's heartbeat: renewing every lease is one row, whatever the lines
        renewed = self.conn.execute(sa.update(workers_table).where(
            workers_table.c.id == worker, workers_table.c.heartbeat_at >= now - lease_time).values(heartbeat_at=now))
        if renewed.rowcount == 0:  # new, or back after its heartbeat went stale: what it held may be taken
            self.conn.execute(sa.update(reg).where(reg.c.lease_owner == worker).values(lease_owner=None))
            self.conn.execute(sa.delete(workers_table).where(workers_table.c.id == worker))
            self.conn.execute(sa.insert(workers_table).values(id=worker, heartbeat_at=now))
        self.conn.execute(sa.delete(workers_table).where(workers_table.c.heartbeat_at < now - 2 * lease_time))
        held = sorted(self.conn.execute(sa.select(reg.c.line_id).where(reg.c.lease_owner == worker)).scalars())
        workers = self.conn.execute(sa.select(sa.func.count()).select_from(workers_table)
                                    .where(workers_table.c.heartbeat_at >= now - lease_time)).scalar_one()
        lines = self.conn.execute(sa.select(sa.func.count()).select_from(reg)).scalar_one()
        share = math.ceil(lines / max(1, workers))
        acquired: list[int] = []
        released: list[int] = []
        if acquire and len(held) < share:
            live = sa.select(workers_table.c.id).where(workers_table.c.heartbeat_at >= now - lease_time)
            free = (sa.select(reg.c.line_id)
                    .where(sa.or_(reg.c.lease_owner.is_(None), reg.c.lease_owner.not_in(live.scalar_subquery())))
                    .order_by(reg.c.line_id).limit(share - len(held)).with_for_update(skip_locked=True))
            acquired = list(self.conn.execute(free).scalars())
            if acquired:
                self.conn.execute(sa.update(reg).where(reg.c.line_id.in_(acquired)).values(lease_owner=worker))
        elif len(held) > share:
            released = held[share:][:max_moves]
            self.conn.execute(sa.update(reg).where(reg.c.line_id.in_(released), reg.c.lease_owner == worker)
                              .values(lease_owner=None))
            held = [line_id for line_id in held if line_id not in set(released)]
        return LeaseRound(held=held, acquired=acquired, released=released, workers=workers)

    def release_leases(self, worker: str) -> None:
        self.conn.execute(sa.update(t.registration).where(t.registration.c.lease_owner == worker)
                          .values(lease_owner=None))
        self.conn.execute(sa.delete(t.sip_worker).where(t.sip_worker.c.id == worker))

    def _db_now(self) -> float:
        if self.conn.dialect.name == "postgresql":
            return float(self.conn.execute(sa.select(sa.func.extract("epoch", sa.func.clock_timestamp())))
                         .scalar_one())
        return time.time()

    def ping(self) -> None:
        self.conn.execute(sa.select(1)).scalar_one()

    def notify(self, channel: str, payload: str) -> None:
        self.conn.execute(sa.select(sa.func.pg_notify(channel, payload)))

    def serialise(self, name: str) -> None:
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(name))))

    def save_registrations(self, updates: list[RegistrationUpdate], owner: str | None = None) -> None:
        if not updates:
            return
        updates = sorted(updates, key=lambda update: update.reg_id)  # one lock order for every writer
        fence = {} if owner is None else {"b_owner": owner}
        self._driver(_SAVE_REGISTRATION if owner is None else _SAVE_REGISTRATION_LEASED, [
            {
                **fence,
                "b_reg_id": update.reg_id,
                "status_result": update.status_result.value,
                "status_code": update.status_code,
                "error_message": update.error_message,
                "last_updated": update.last_updated,
                "call_id": update.call_id,
                "cseq_reserved": update.cseq_reserved,
                "registered_contact": update.registered_contact,
                "sent_contact": update.sent_contact,
                "expires_requested": update.expires_requested,
            }
            for update in updates
        ])
        outcomes = [update for update in updates if update.outcome]
        if outcomes:  # A7: REGISTRATION_STATUS_CODE / _ERROR_MESSAGE of the line follow outcomes
            self._driver(_SAVE_LINE_STATUS if owner is None else _SAVE_LINE_STATUS_LEASED, [
                {**fence, "b_line_id": u.line_id, "code": u.status_code, "message": u.error_message} for u in outcomes
            ])

    def _driver(self, statement: sa.Executable, rows: list[dict[str, object]]) -> list[dict[str, object]]:
        """One statement for one or many rows, compiled once per dialect and run on the driver's own
        cursor: the engine writes thousands of status rows a second, and the registrar thousands of
        bindings, where SQLAlchemy's per-row parameter and result processing would cost more than
        the database's own work. Rows come back as the driver gives them (booleans as 0/1 on SQLite).

        Raises: sqlalchemy.exc.DBAPIError, as SQLAlchemy's own execute would."""
        dialect = self.conn.dialect
        key = (statement, dialect.name)
        if key not in _COMPILED:
            compiled = statement.compile(dialect=dialect)
            _COMPILED[key] = (str(compiled), _positional(compiled.positiontup) if compiled.positiontup else None)
        sql, positional = _COMPILED[key]
        params = [positional(row) for row in rows] if positional else rows
        cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if len(params) == 1:
                cursor.execute(sql, params[0])
            else:
                cursor.executemany(sql, params)
            if cursor.description is None:
                return []
            columns = [column[0] for column in cursor.description]
            return [dict(zip(columns, row)) for row in cursor.fetchall()]
        except dialect.loaded_dbapi.Error as error:
            raise sa.exc.DBAPIError.instance(sql, params, error, dialect.loaded_dbapi.Error) from None
        finally:
            cursor.close()

    def reset_registration(self, reg_id: int, now: float) -> None:
        self.conn.execute(
            sa.update(t.registration)
            .where(t.registration.c.reg_id == reg_id)
            .values(status_result=StatusResult.WAIT.value, status_code=0, error_message="", last_updated=now)
        )

    # -- office registrations -------------------------------------------------------

    def office_user(self, login: str) -> tuple[OfficeUser, str | None] | None:
        """The office line with this INCOMING_LOGIN, and its portal's own INCOMING_SERVER (if set): read
        once per PBX after each change, so through a statement compiled once (see `_driver`)."""
        found = self._driver(_OFFICE_USER, [{"b_login": login, "b_type": LineType.OFFICE.value}])
        if not found:
            return None
        row = found[0]
        sealed = row["incoming_ha1"]
        user = OfficeUser(
            line_id=row["id"], portal_id=row["portal_id"], login=row["incoming_login"],
            password=self._open(row["incoming_password"], "incoming_password", row["id"]) or "",
            realm=row["incoming_realm"], ha1=json.loads(self._open(sealed, "incoming_ha1", row["id"]) or "{}"),
            algorithms=_algorithms(row["digest_algorithms"]),
        )
        return user, row["incoming_server"]

    def store_ha1(self, line_id: int, realm: str, ha1: dict[str, str]) -> None:
        self.conn.execute(sa.update(t.line).where(t.line.c.id == line_id).values(
            incoming_realm=realm, incoming_ha1=self._seal(json.dumps(ha1), "incoming_ha1", line_id)))

    def bindings_of(self, line_ids: list[int], *, lock: bool = True) -> dict[int, list[Binding]]:
        """Bindings per line; with `lock` the lines stay locked until commit (one writer per AoR, B5;
        SQLite's BEGIN IMMEDIATE has locked the whole database already)."""
        found: dict[int, list[Binding]] = {line_id: [] for line_id in line_ids}
        for chunk in _chunks(line_ids):
            if lock and self.conn.dialect.name != "sqlite":
                self._driver(_LOCK_LINES[len(chunk)], [_in_params(chunk)])
            for row in self._driver(_BINDINGS_OF[len(chunk)], [_in_params(chunk)]):
                found[row["line_id"]].append(_binding(row))
        return found

    def save_bindings(self, changes: dict[int, tuple[list[Binding], list[Binding]]]) -> None:
        """`changes`: line → (bindings before, bindings after), where a binding left as it was is the same
        object in both. A refresh rewrites one row in place: an UPDATE costs SQLite about half of a DELETE
        and an INSERT, which also touch the line index and the autoincrement counter."""
        gone: list[dict[str, object]] = []
        added: list[dict[str, object]] = []
        changed: list[dict[str, object]] = []
        for line_id, (before, after) in changes.items():
            old = {binding.contact: binding for binding in before}
            new = {binding.contact for binding in after}
            gone += [{"b_line_id": line_id, "b_contact": contact} for contact in old if contact not in new]
            for binding in after:
                previous = old.get(binding.contact)
                if previous is None:
                    added.append(_binding_row(line_id, binding))
                elif previous is not binding:  # the rules make a new Binding only for a change
                    changed.append(_binding_row(line_id, binding) | {"b_line_id": line_id, "b_contact": binding.contact})
        for statement, rows in ((_DELETE_BINDING, gone), (_UPDATE_BINDING, changed), (_INSERT_BINDING, added)):
            if rows:
                self._driver(statement, rows)

    def delete_bindings(self, line_id: int) -> None:
        self.conn.execute(sa.delete(t.binding).where(t.binding.c.line_id == line_id))

    def delete_expired_bindings(self, now: float) -> int:
        return self.conn.execute(sa.delete(t.binding).where(t.binding.c.expires_at <= now)).rowcount

    def connection_closed(self, ip: str, port: int) -> int:
        """Bindings that came over a TCP/TLS connection from ip:port are unreachable now (B7)."""
        return self.conn.execute(
            sa.update(t.binding)
            .where(t.binding.c.source_ip == ip, t.binding.c.source_port == port, t.binding.c.transport != "udp")
            .values(reachable=False)
        ).rowcount

    def nat_bindings(self, now: float) -> list[tuple[int, Binding]]:
        query = (sa.select(t.binding)
                 .where(t.binding.c.nat.is_(True), t.binding.c.transport == "udp", t.binding.c.expires_at > now)
                 .order_by(t.binding.c.id))
        return [(row["line_id"], _binding(row)) for row in self.conn.execute(query).mappings()]

    def set_reachable(self, keys: list[tuple[int, str]], reachable: bool) -> None:
        binding = t.binding.c
        for line_id, contact in keys:
            self.conn.execute(sa.update(t.binding).where(binding.line_id == line_id, binding.contact == contact)
                              .values(reachable=reachable))

    # -- helpers -----------------------------------------------------------------

    def _next(self, counter: str) -> int:
        return self.conn.execute(
            sa.update(t.counter)
            .where(t.counter.c.name == counter)
            .values(value=t.counter.c.value + 1)
            .returning(t.counter.c.value)
        ).scalar_one()

    def _seal(self, value: str | None, column: str, line_id: int) -> bytes | None:
        return None if value is None else self.box.seal(value, _cell(column, line_id))

    def _open(self, value: bytes | None, column: str, line_id: int) -> str | None:
        return None if value is None else self.box.open(value, _cell(column, line_id))

    def _line(self, row: RowMapping) -> Line:
        return Line(
            id=row["id"],
            config_id=row["config_id"],
            portal_id=row["portal_id"],
            app_id=row["app_id"],
            type=LineType(row["type"]),
            title=row["title"],
            server=row["server"],
            login=row["login"],
            password=self._open(row["password"], "password", row["id"]),
            auth_user=row["auth_user"],
            outbound_proxy=row["outbound_proxy"],
            detect_line_number=row["detect_line_number"],
            line_detect_header_order=row["line_detect_header_order"],
            reg_id=row["reg_id"],
            incoming_login=row["incoming_login"],
            incoming_password=self._open(row["incoming_password"], "incoming_password", row["id"]),
            registration_status_code=row["registration_status_code"],
            registration_error_message=row["registration_error_message"],
            digest_algorithms=row["digest_algorithms"],
        )


def _cell(column: str, line_id: int) -> Cell:
    return Cell(t.line.name, column, line_id)


def _chunks(line_ids: list[int]) -> list[list[int]]:
    """The ids in chunks of a size from _IN_SIZES, the last padded by repeating its first id."""
    largest = _IN_SIZES[-1]
    chunks = [line_ids[start:start + largest] for start in range(0, len(line_ids), largest)]
    if chunks:
        size = next(size for size in _IN_SIZES if size >= len(chunks[-1]))
        chunks[-1] = chunks[-1] + [chunks[-1][0]] * (size - len(chunks[-1]))
    return chunks


def _in_params(chunk: list[int]) -> dict[str, object]:
    return {f"l{i}": line_id for i, line_id in enumerate(chunk)}


def _binding(row: Mapping[str, Any]) -> Binding:
    return Binding(
        contact=row["contact"], expires_at=row["expires_at"], granted=row["granted"], call_id=row["call_id"],
        cseq=row["cseq"], transport=row["transport"], source=(row["source_ip"], row["source_port"]),
        local=(row["local_ip"], row["local_port"]), q=row["q"],
        path=tuple(filter(None, row["path"].split("\n"))), instance=row["instance"], reg_id=row["reg_id"],
        user_agent=row["user_agent"], algorithm=row["algorithm"], nat=bool(row["nat"]),
        reachable=bool(row["reachable"]),
        first_registered_at=row["first_registered_at"], last_refreshed_at=row["last_refreshed_at"],
    )


def _storable(key: int) -> bool:
    """Whether an id from a request can name a row at all: INTEGER columns hold 32 bits on
    PostgreSQL, and a larger value would be an error there rather than "no such row"."""
    return -_INT32 <= key < _INT32


def _positional(names: list[str]) -> Callable[[dict], tuple]:
    """A row of named parameters → the driver's positional tuple, in the order of `names`."""
    if len(names) == 1:
        name = names[0]
        return lambda row: (row[name],)
    return itemgetter(*names)


def _binding_row(line_id: int, binding: Binding) -> dict[str, object]:
    return {
        "line_id": line_id, "contact": binding.contact, "expires_at": binding.expires_at,
        "granted": binding.granted, "call_id": binding.call_id, "cseq": binding.cseq,
        "transport": binding.transport, "source_ip": binding.source[0], "source_port": binding.source[1],
        "local_ip": binding.local[0], "local_port": binding.local[1], "q": binding.q,
        "path": "\n".join(binding.path), "instance": binding.instance, "reg_id": binding.reg_id,
        "user_agent": binding.user_agent, "algorithm": binding.algorithm, "nat": binding.nat,
        "reachable": binding.reachable, "first_registered_at": binding.first_registered_at,
        "last_refreshed_at": binding.last_refreshed_at,
    }


def _registration(row: RowMapping) -> Registration:
    return Registration(
        reg_id=row["reg_id"],
        line_id=row["line_id"],
        status_result=StatusResult(row["status_result"]),
        status_code=row["status_code"],
        error_message=row["error_message"],
        last_updated=row["last_updated"],
        call_id=row["call_id"],
        contact_token=row["contact_token"],
        cseq_reserved=row["cseq_reserved"],
        registered_contact=row["registered_contact"],
        sent_contact=row["sent_contact"],
        expires_requested=row["expires_requested"],
    )


def _app(row: RowMapping) -> App:
    allowed = row["allowed_users"]
    return App(
        id=row["id"], portal_id=row["portal_id"], client_id=row["client_id"], name=row["name"],
        scopes=frozenset(filter(None, row["scopes"].split(","))), handler_url=row["handler_url"],
        status=row["status"], version=row["version"],
        allowed_users=frozenset(int(n) for n in allowed.split(",") if n) if allowed is not None else None,
        active=row["active"], created_at=row["created_at"],
    )


def _portal(row: RowMapping) -> Portal:
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


def _algorithms(text: str | None) -> tuple[str, ...] | None:
    """B3: a stored algorithm list ("SHA-256,MD5", checked when written) as the registrar offers it."""
    return tuple(text.split(",")) if text else None
