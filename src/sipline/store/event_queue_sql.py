"""Events queued in the transaction of the change they report (docs/behaviour.md#event-delivery).

add_history (history_sql.py) calls `_queue_events` with the batch's entries before writing them. The
cost for a store where no handler hears a line's events is one query on the small event_handler
table per batch; otherwise one query finds the handlers of the batch's lines (same portal, the
handler's owner the line's app_id, as voximplant.sip.get shows a caller its lines), one the lines'
last status (cloud) or live bindings (office), and the rows go in: an event_delivery row per
online handler, an event_offline row per owner with an offline binding.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence

import orjson
import sqlalchemy as sa

from sipline.store import schema as t
from sipline.store.event_data import NEW_LINE_STATUS, binding_data, registration_data
from sipline.store.records import EventName, LineType, StatusChange
from sipline.store.sql_base import SqlPart

CHUNK = 500  # line ids per IN list (SQLite's older builds take 999 parameters)
LINE_EVENTS = (EventName.REGISTRATION_CHANGE.value, EventName.BINDING_CHANGE.value)
_ANY_HANDLER = sa.select(t.event_handler.c.id).where(t.event_handler.c.event.in_(LINE_EVENTS)).limit(1)

_h, _l = t.event_handler, t.line
_HEARING = (
    sa.select(
        _l.c.id.label("line_id"),
        _l.c.config_id,
        _l.c.type,
        t.registration.c.reg_id,
        _h.c.id,
        _h.c.portal_id,
        _h.c.owner,
        _h.c.app_id,
        _h.c.event,
        _h.c.handler,
    )
    .select_from(
        _l.join(_h, sa.and_(_h.c.portal_id == _l.c.portal_id, _h.c.owner == _l.c.app_id)).outerjoin(
            t.registration, t.registration.c.line_id == _l.c.id
        )
    )
    .where(_h.c.event.in_(LINE_EVENTS))
    .order_by(_h.c.id)
)


class SqlEventQueue(SqlPart):
    binding_counts: Callable[[list[int], float], dict[int, tuple[int, int]]]  # SqlBindings', in the repository

    def _queue_events(self, entries: Sequence[tuple[int, StatusChange]], owner: str | None) -> None:
        if self.conn.execute(_ANY_HANDLER).first() is None:
            return
        handlers = self._hearing(sorted({line_id for line_id, _ in entries}), owner)
        if not handlers:
            return
        lines = {line_id: rows[0] for line_id, rows in handlers.items()}
        cloud = [line_id for line_id, row in lines.items() if row["type"] == LineType.CLOUD.value]
        office = [line_id for line_id, row in lines.items() if row["type"] == LineType.OFFICE.value]
        previous = self._last_statuses(cloud)
        at = max(entry.at for _, entry in entries)
        live = {line_id: count for line_id, (_, count) in self.binding_counts(office, at).items()}
        online: list[dict[str, object]] = []
        offline: dict[tuple[int, str, str, int], dict[str, object]] = {}
        for index, (line_id, entry) in enumerate(entries):
            rows = handlers.get(line_id)
            if rows is None:
                continue
            line = lines[line_id]
            if line["type"] == LineType.CLOUD.value:
                before = previous.get(line_id, NEW_LINE_STATUS)
                previous[line_id] = (entry.result.value, entry.code)
                if (
                    before == previous[line_id]
                ):  # docs/behaviour.md#event-payload: a change of STATUS_RESULT or STATUS_CODE only
                    continue
                event = EventName.REGISTRATION_CHANGE.value
                data = registration_data(line["config_id"], line["reg_id"], entry, before[0])
            else:
                event = EventName.BINDING_CHANGE.value
                found = binding_data(line["config_id"], live.get(line_id, 0), entry)
                if found is None:
                    continue
                data = found
            text = orjson.dumps(data).decode()
            for row in rows:
                if row["event"] != event:
                    continue
                if row["handler"]:
                    online.append(_delivery(row, line_id, event, text, entry.at))
                else:  # one offline event per owner, however many offline bindings it has
                    offline[(index, row["owner"], event, row["portal_id"])] = _offline(row, event, text, entry.at)
        if online:
            self.conn.execute(sa.insert(t.event_delivery), online)
        if offline:
            self.conn.execute(sa.insert(t.event_offline), list(offline.values()))

    def _hearing(self, line_ids: list[int], owner: str | None) -> dict[int, list[sa.RowMapping]]:
        """The handlers that hear each of these lines, by line id; `owner` set: of the lines whose
        lease it holds (as the history entries are written)."""
        found: dict[int, list[sa.RowMapping]] = {}
        for start in range(0, len(line_ids), CHUNK):
            query = _HEARING.where(_l.c.id.in_(line_ids[start : start + CHUNK]))
            if owner is not None:
                query = query.where(t.registration.c.lease_owner == owner)
            for row in self.conn.execute(query).mappings():
                found.setdefault(row["line_id"], []).append(row)
        return found

    def _last_statuses(self, line_ids: list[int]) -> dict[int, tuple[str, int]]:
        """(STATUS_RESULT, STATUS_CODE) of each line's newest history entry, before this batch's."""
        statuses: dict[int, tuple[str, int]] = {}
        history = t.line_history
        for start in range(0, len(line_ids), CHUNK):
            newest = (
                sa.select(sa.func.max(history.c.id))
                .where(history.c.line_id.in_(line_ids[start : start + CHUNK]))
                .group_by(history.c.line_id)
            )
            query = sa.select(history.c.line_id, history.c.status_result, history.c.status_code).where(
                history.c.id.in_(newest)
            )
            statuses |= {line_id: (result, code) for line_id, result, code in self.conn.execute(query)}
        return statuses


def _delivery(handler: sa.RowMapping, line_id: int, event: str, data: str, at: float) -> dict[str, object]:
    return {
        "handler_id": handler["id"],
        "portal_id": handler["portal_id"],
        "app_id": handler["app_id"],
        "line_id": line_id,
        "event": event,
        "data": data,
        "created_at": at,
        "next_at": at,
        "attempts": 0,
    }


def _offline(handler: sa.RowMapping, event: str, data: str, at: float) -> dict[str, object]:
    return {
        "portal_id": handler["portal_id"],
        "owner": handler["owner"],
        "event": event,
        "data": data,
        "additional": "{}",
        "message_id": secrets.token_hex(16),
        "created_at": at,
    }
