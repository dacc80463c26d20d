"""Lines: the rows the voximplant.sip.* rules read and write, their sealed secrets (LineRepository)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import sqlalchemy as sa

from sipline.store import schema as t
from sipline.store.crypto import SecretBox
from sipline.store.records import Line, LineState, LineType, NewLine, StatusResult
from sipline.store.sql_base import SqlPart, sealed_cell, storable

_LINE_QUERY = sa.select(t.line, t.registration.c.reg_id).select_from(
    t.line.outerjoin(t.registration, t.registration.c.line_id == t.line.c.id)
)
# the line table's sealed columns: each value opens only in its own row and column (crypto.Cell)
SEALED_COLUMNS = ("password", "incoming_password", "incoming_ha1")
_SEALED_VALUES = (
    sa.select(t.line.c.id, *(t.line.c[name] for name in SEALED_COLUMNS))
    .where(sa.or_(*(t.line.c[name].is_not(None) for name in SEALED_COLUMNS)))
    .order_by(t.line.c.id)
)

# sip.add and sip.delete: each is about ten statements, and building one with SQLAlchemy Core
# (expressions, cache key, execution context, result set-up) cost more than SQLite's own work
# (docs/benchmarks.md, issue 21 point 6). Built once here, compiled once per dialect and run on
# the driver's cursor (SqlPart._driver); the line table has no column a driver returns otherwise
# than SQLAlchemy would (no booleans).
_NEW_LINE_COLUMNS = (
    "config_id",
    "portal_id",
    "app_id",
    "type",
    "title",
    "title_key",
    "server",
    "login",
    "incoming_login",
    "registration_status_code",
    "digest_algorithms",
    "created_at",
)
_INSERT_LINE = (
    sa.insert(t.line).values({name: sa.bindparam(f"b_{name}") for name in _NEW_LINE_COLUMNS}).returning(t.line.c.id)
)
_SEAL_NEW_LINE = (
    sa.update(t.line)
    .where(t.line.c.id == sa.bindparam("b_id"))
    .values(password=sa.bindparam("b_password"), incoming_password=sa.bindparam("b_incoming_password"))
)
_NEW_SESSION_COLUMNS = ("reg_id", "line_id", "status_result", "last_updated", "call_id", "contact_token")
_INSERT_REGISTRATION = sa.insert(t.registration).values(
    {name: sa.bindparam(f"b_{name}") for name in _NEW_SESSION_COLUMNS}
)
_LINE_BY_ID = _LINE_QUERY.where(t.line.c.id == sa.bindparam("b_id"))
_LINE_BY_CONFIG = _LINE_QUERY.where(
    t.line.c.portal_id == sa.bindparam("b_portal_id"), t.line.c.config_id == sa.bindparam("b_config_id")
)
_DELETE_LINE_ROWS = tuple(
    sa.delete(table).where(table.c.line_id == sa.bindparam("b_id"))
    for table in (t.registration, t.binding, t.line_history)
)
_DELETE_LINE = sa.delete(t.line).where(t.line.c.id == sa.bindparam("b_id")).returning(t.line.c.portal_id)
_COUNT_LINES = (
    sa.select(sa.func.count().label("n")).select_from(t.line).where(t.line.c.portal_id == sa.bindparam("b_portal_id"))
)
_COUNT_TYPED_LINES = _COUNT_LINES.where(t.line.c.type == sa.bindparam("b_type"))
_TITLE_TAKEN = sa.select(t.line.c.id).where(
    t.line.c.portal_id == sa.bindparam("b_portal_id"), t.line.c.title_key == sa.bindparam("b_title_key")
)  # no LIMIT (a bound parameter): a non-empty TITLE_KEY is unique in its portal (schema's index)
_TITLE_TAKEN_BY_OTHER = _TITLE_TAKEN.where(t.line.c.id != sa.bindparam("b_except_id"))


class SqlLines(SqlPart):
    _reseal_event_secrets: Callable[[SecretBox], int]  # SqlDeliveries', in the repository
    _reseal_kept_webhooks: Callable[[SecretBox], int]  # SqlDashboard's

    def lines(self, portal_id: int, app_id: str | None) -> list[Line]:
        query = _LINE_QUERY.where(t.line.c.portal_id == portal_id)
        if app_id is not None:
            query = query.where(t.line.c.app_id == app_id)
        return [self._line(row) for row in self.conn.execute(query.order_by(t.line.c.config_id)).mappings()]

    def line_by_config(self, portal_id: int, config_id: int) -> Line | None:
        if not storable(config_id):
            return None
        found = self._driver(_LINE_BY_CONFIG, [{"b_portal_id": portal_id, "b_config_id": config_id}])
        return self._line(found[0]) if found else None

    def line_states(
        self,
        now: float,
        *,
        portal_id: int | None = None,
        config_id: int | None = None,
        status: StatusResult | None = None,
    ) -> list[LineState]:
        if config_id is not None and not storable(config_id):
            return []
        binding = t.binding.c
        live = (
            sa.select(
                binding.line_id,
                sa.func.count().label("live_bindings"),
                sa.func.max(binding.last_refreshed_at).label("last_registered"),
            )
            .where(binding.expires_at > now)  # docs/behaviour.md#office-status: live bindings only
            .group_by(binding.line_id)
            .subquery()
        )
        query = (
            sa.select(t.line, t.registration, t.portal.c.domain, live.c.live_bindings, live.c.last_registered)
            .select_from(
                t.line.join(t.portal, t.portal.c.id == t.line.c.portal_id)
                .outerjoin(t.registration, t.registration.c.line_id == t.line.c.id)
                .outerjoin(live, live.c.line_id == t.line.c.id)
            )
            .order_by(t.line.c.config_id)
        )
        for column, value in (
            (t.line.c.portal_id, portal_id),
            (t.line.c.config_id, config_id),
            (t.registration.c.status_result, status and status.value),
        ):
            if value is not None:
                query = query.where(column == value)
        return [
            LineState(
                line=self._line(row),
                portal_domain=row["domain"],
                registration=None if row["status_result"] is None else self._registration(row),
                bindings=row["live_bindings"] or 0,
                last_registered=row["last_registered"],
            )
            for row in self.conn.execute(query).mappings()
        ]

    def count_cloud_lines(self, portal_id: int) -> int:
        return self.count_lines(portal_id, LineType.CLOUD)

    def count_lines(self, portal_id: int, type_: LineType | None = None) -> int:
        if type_ is None:
            return self._driver(_COUNT_LINES, [{"b_portal_id": portal_id}])[0]["n"]
        return self._driver(_COUNT_TYPED_LINES, [{"b_portal_id": portal_id, "b_type": type_.value}])[0]["n"]

    def title_taken(self, portal_id: int, title_key: str, except_line_id: int | None) -> bool:
        if except_line_id is None:
            return bool(self._driver(_TITLE_TAKEN, [{"b_portal_id": portal_id, "b_title_key": title_key}]))
        params = {"b_portal_id": portal_id, "b_title_key": title_key, "b_except_id": except_line_id}
        return bool(self._driver(_TITLE_TAKEN_BY_OTHER, [params]))

    def next_config_id(self) -> int:
        return self._next("config_id")

    def insert_line(self, new: NewLine, now: float) -> Line:
        values = {f"b_{name}": getattr(new, name) for name in _NEW_LINE_COLUMNS if name != "created_at"}
        values.update(b_type=new.type.value, b_created_at=now)
        line_id = self._driver(_INSERT_LINE, [values])[0]["id"]
        # sealed once the row has its id, which the sealed values are bound to
        if new.password is not None or new.incoming_password is not None:
            sealed = {
                "b_id": line_id,
                "b_password": self._seal(new.password, "password", line_id),
                "b_incoming_password": self._seal(new.incoming_password, "incoming_password", line_id),
            }
            self._driver(_SEAL_NEW_LINE, [sealed])
        self._portal_lines_changed(new.portal_id)
        if new.session is not None:
            session = {
                "b_reg_id": self._next("reg_id"),
                "b_line_id": line_id,
                "b_status_result": StatusResult.WAIT.value,
                "b_last_updated": now,
                "b_call_id": new.session.call_id,
                "b_contact_token": new.session.contact_token,
            }
            self._driver(_INSERT_REGISTRATION, [session])
        return self._line(self._driver(_LINE_BY_ID, [{"b_id": line_id}])[0])

    def update_line(self, line_id: int, changes: Mapping[str, object]) -> None:
        self._set_columns(line_id, changes)
        self._lines_changed([line_id])

    def _set_columns(self, line_id: int, changes: Mapping[str, object]) -> None:
        values = {
            column: self._seal(value, column, line_id) if column in SEALED_COLUMNS else value  # type: ignore[arg-type]
            for column, value in changes.items()
        }
        self.conn.execute(sa.update(t.line).where(t.line.c.id == line_id).values(**values))

    def delete_line(self, line_id: int) -> None:
        for statement in _DELETE_LINE_ROWS:
            self._driver(statement, [{"b_id": line_id}])
        for row in self._driver(_DELETE_LINE, [{"b_id": line_id}]):  # last: the portal's row stays locked until commit
            self._portal_lines_changed(row["portal_id"])

    def reseal(self, new_box: SecretBox) -> int:
        count = 0
        for row in self.conn.execute(_SEALED_VALUES).mappings():
            values = {
                name: new_box.seal(self._opened(row[name], name, row["id"]), sealed_cell(name, row["id"]))
                for name in SEALED_COLUMNS
                if row[name] is not None
            }
            if values:
                self.conn.execute(sa.update(t.line).where(t.line.c.id == row["id"]).values(values))
                count += len(values)
        # docs/behaviour.md#event-signature: SqlDeliveries'; docs/behaviour.md#dashboard: SqlDashboard's
        return count + self._reseal_event_secrets(new_box) + self._reseal_kept_webhooks(new_box)

    def sample_secret(self) -> str | None:
        row = self.conn.execute(_SEALED_VALUES.limit(1)).mappings().first()
        if row is None:
            return None
        name = next(name for name in SEALED_COLUMNS if row[name] is not None)
        return self._open(row[name], name, row["id"])
