"""The offline event queue (EventOfflineRepository, docs/behaviour.md#event-offline).

A reader picks unmarked records and marks them with its process id in one transaction; on PostgreSQL
the pick locks what it takes and skips what another reader has locked (SKIP LOCKED), so concurrent
readers get disjoint sets. (Not one UPDATE with the pick as its subquery: PostgreSQL planned that so
that it marked more records than the LIMIT, tests/store/test_events.py.) SQLite runs one writer at a
time, which gives the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from sipline.store import schema as t
from sipline.store.event_records import Comparison, OfflineEvent, OfflineField, OfflineQuery, OfflineTerm
from sipline.store.sql_base import SqlPart

_o = t.event_offline
COLUMNS: dict[OfflineField, sa.Column] = {
    OfflineField.ID: _o.c.id,
    OfflineField.TIMESTAMP_X: _o.c.created_at,
    OfflineField.EVENT_NAME: _o.c.event,
    OfflineField.MESSAGE_ID: _o.c.message_id,
    OfflineField.PROCESS_ID: _o.c.process_id,
    OfflineField.ERROR: _o.c.error,
}


def _condition(term: OfflineTerm) -> sa.ColumnElement[bool]:
    column = COLUMNS[term.field]
    first = term.values[0]
    match term.comparison:
        case Comparison.EQUAL:
            return column == first if len(term.values) == 1 else column.in_(term.values)
        case Comparison.NOT_EQUAL:
            return column != first if len(term.values) == 1 else column.not_in(term.values)
        case Comparison.LESS:
            return column < first
        case Comparison.LESS_OR_EQUAL:
            return column <= first
        case Comparison.GREATER:
            return column > first
        case Comparison.GREATER_OR_EQUAL:
            return column >= first


def _where(query: OfflineQuery) -> list[sa.ColumnElement[bool]]:
    return [_o.c.portal_id == query.portal_id, _o.c.owner == query.owner, *map(_condition, query.terms)]


def _order(query: OfflineQuery) -> list[sa.ColumnElement]:
    keys = [COLUMNS[field].desc() if descending else COLUMNS[field].asc() for field, descending in query.order]
    return [*keys, _o.c.id.asc()]  # ties in a stable order


class SqlEventOffline(SqlPart):
    def insert_offline_event(
        self,
        *,
        portal_id: int,
        owner: str,
        event: str,
        data: str,
        additional: str,
        message_id: str,
        created_at: float,
    ) -> int:
        values = dict(portal_id=portal_id, owner=owner, event=event, data=data, additional=additional)
        values.update(message_id=message_id, created_at=created_at)
        return self.conn.execute(sa.insert(_o).values(values).returning(_o.c.id)).scalar_one()

    def mark_offline_events(self, query: OfflineQuery, *, error: bool, limit: int, process_id: str) -> int:
        picked = (
            sa.select(_o.c.id)
            .where(*_where(query), _o.c.process_id == "", _o.c.error == error)
            .order_by(*_order(query))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = list(self.conn.execute(picked).scalars())  # locked until commit (PostgreSQL)
        if not ids:
            return 0
        return self.conn.execute(sa.update(_o).where(_o.c.id.in_(ids)).values(process_id=process_id)).rowcount

    def offline_events(self, query: OfflineQuery, *, limit: int | None = None, offset: int = 0) -> list[OfflineEvent]:
        select = sa.select(_o).where(*_where(query)).order_by(*_order(query)).offset(offset)
        if limit is not None:
            select = select.limit(limit)
        return [_event(row) for row in self.conn.execute(select).mappings()]

    def count_offline_events(self, query: OfflineQuery) -> int:
        return self.conn.execute(sa.select(sa.func.count()).select_from(_o).where(*_where(query))).scalar_one()

    def delete_offline_events(
        self,
        portal_id: int,
        owner: str,
        process_id: str,
        *,
        ids: Sequence[int] | None = None,
        message_ids: Sequence[str] | None = None,
    ) -> int:
        where = [_o.c.portal_id == portal_id, _o.c.owner == owner, _o.c.process_id == process_id]
        if ids is not None:
            where.append(_o.c.id.in_(ids))
        if message_ids is not None:
            where.append(_o.c.message_id.in_(message_ids))
        return self.conn.execute(sa.delete(_o).where(*where)).rowcount

    def fail_offline_events(self, portal_id: int, owner: str, process_id: str, message_ids: Sequence[str]) -> int:
        where = [_o.c.portal_id == portal_id, _o.c.owner == owner, _o.c.process_id == process_id]
        failing = sa.update(_o).where(*where, _o.c.message_id.in_(message_ids))
        return self.conn.execute(failing.values(error=True, process_id="")).rowcount


def _event(row: RowMapping) -> OfflineEvent:
    return OfflineEvent(
        id=row["id"],
        event=row["event"],
        data=row["data"],
        additional=row["additional"],
        message_id=row["message_id"],
        created_at=row["created_at"],
        process_id=row["process_id"],
        error=bool(row["error"]),
    )
