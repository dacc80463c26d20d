"""Each line's history of status changes (HistoryRepository, docs/behaviour.md#line-history).

Entries are written in the transaction of the change they record (the engine's status batch, the
registrar's commit, an update of the line) and the line's older entries are pruned in it, so a
line holds at most HISTORY_KEPT: one indexed DELETE per line written, below the HISTORY_KEPT-th
newest id.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from sipline.store import schema as t
from sipline.store.event_queue_sql import SqlEventQueue
from sipline.store.records import Cause, StatusChange, StatusResult

HISTORY_KEPT = 100  # entries per line (docs/behaviour.md#line-history)

_h = t.line_history
_COLUMNS = ("line_id", "at", "status_result", "status_code", "error_message", "cause", "contact", "source", "transport")


def _insert_where(condition: sa.ColumnElement[bool]) -> sa.Insert:
    """INSERT … SELECT of one entry, written only while `condition` holds (typed casts: the
    SELECT has no table its values' types could come from)."""
    values = sa.select(*[sa.cast(sa.bindparam(name), _h.c[name].type) for name in _COLUMNS]).where(condition)
    return sa.insert(_h).from_select(list(_COLUMNS), values)


# A line deleted meanwhile gets no entry (rather than failing the whole batch on its foreign key).
_INSERT = _insert_where(sa.exists().where(t.line.c.id == sa.bindparam("b_line_id")))
# scale-out: only for lines whose lease the writing worker holds, as save_registrations writes
_INSERT_LEASED = _insert_where(
    sa.exists().where(
        t.registration.c.line_id == sa.bindparam("b_line_id"), t.registration.c.lease_owner == sa.bindparam("b_owner")
    )
)
_NTH_NEWEST = (
    sa.select(_h.c.id)
    .where(_h.c.line_id == sa.bindparam("b_line_id"))
    .order_by(_h.c.id.desc())
    .limit(sa.literal_column("1"))
    .offset(sa.literal_column(str(HISTORY_KEPT - 1)))
    .scalar_subquery()
)
_PRUNE = sa.delete(_h).where(_h.c.line_id == sa.bindparam("b_line_id"), _h.c.id < _NTH_NEWEST)


class SqlHistory(SqlEventQueue):
    def add_history(self, entries: Sequence[tuple[int, StatusChange]], owner: str | None = None) -> None:
        if not entries:
            return
        # docs/behaviour.md#event-delivery: the events they report, in their transaction (before them: the
        # lines' previous statuses are the newest entries now)
        self._queue_events(entries, owner)
        fence = {} if owner is None else {"b_owner": owner}
        self._driver(
            _INSERT if owner is None else _INSERT_LEASED,
            [
                {
                    **fence,
                    "b_line_id": line_id,
                    "line_id": line_id,
                    "at": entry.at,
                    "status_result": entry.result.value,
                    "status_code": entry.code,
                    "error_message": entry.message,
                    "cause": entry.cause.value,
                    "contact": entry.contact,
                    "source": entry.source,
                    "transport": entry.transport,
                }
                for line_id, entry in entries
            ],
        )
        self._driver(_PRUNE, [{"b_line_id": line_id} for line_id in sorted({line_id for line_id, _ in entries})])

    def history(self, line_id: int) -> list[StatusChange]:
        query = sa.select(_h).where(_h.c.line_id == line_id).order_by(_h.c.id.desc()).limit(HISTORY_KEPT)
        return [
            StatusChange(
                at=row["at"],
                result=StatusResult(row["status_result"]),
                code=row["status_code"],
                message=row["error_message"],
                cause=Cause(row["cause"]),
                contact=row["contact"],
                source=row["source"],
                transport=row["transport"],
            )
            for row in self.conn.execute(query).mappings()
        ]
