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
        query = _LINE_QUERY.where(t.line.c.portal_id == portal_id, t.line.c.config_id == config_id)
        row = self.conn.execute(query).mappings().first()
        return self._line(row) if row else None

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
            self._set_columns(line_id, sealed)
        self._portal_lines_changed(new.portal_id)
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
        self.conn.execute(sa.delete(t.registration).where(t.registration.c.line_id == line_id))
        self.conn.execute(sa.delete(t.binding).where(t.binding.c.line_id == line_id))
        self.conn.execute(sa.delete(t.line_history).where(t.line_history.c.line_id == line_id))
        deleted = self.conn.execute(sa.delete(t.line).where(t.line.c.id == line_id).returning(t.line.c.portal_id))
        for (portal_id,) in deleted:  # last: the portal's row stays locked until commit
            self._portal_lines_changed(portal_id)

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
