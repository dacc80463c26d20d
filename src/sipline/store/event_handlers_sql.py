"""Handlers bound with event.bind (EventHandlerRepository, docs/behaviour.md#event-bind)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from sipline.store import schema as t
from sipline.store.event_records import EventHandler, HandlerMatch, NewEventHandler
from sipline.store.sql_base import SqlPart

_e = t.event_handler


class SqlEventHandlers(SqlPart):
    def insert_event_handler(self, new: NewEventHandler) -> EventHandler | None:
        same = sa.select(_e.c.id).where(
            _e.c.portal_id == new.portal_id,
            _e.c.owner == new.owner,
            _e.c.event == new.event,
            _e.c.handler == new.handler,
            _e.c.auth_type == new.auth_type,
        )
        if self.conn.execute(same).first() is not None:
            return None
        values = {name: getattr(new, name) for name in NewEventHandler.__dataclass_fields__}
        handler_id = self.conn.execute(sa.insert(_e).values(values).returning(_e.c.id)).scalar_one()
        return self.event_handler(handler_id)

    def event_handler(self, handler_id: int) -> EventHandler | None:
        row = self.conn.execute(sa.select(_e).where(_e.c.id == handler_id)).mappings().first()
        return None if row is None else _handler(row)

    def event_handlers(self, portal_id: int, owner: str, auth_type: int | None = None) -> list[EventHandler]:
        query = sa.select(_e).where(_e.c.portal_id == portal_id, _e.c.owner == owner)
        if auth_type is not None:
            query = query.where(_e.c.auth_type == auth_type)
        return [_handler(row) for row in self.conn.execute(query.order_by(_e.c.id)).mappings()]

    def delete_event_handlers(self, match: HandlerMatch) -> int:
        query = sa.select(_e.c.id).where(
            _e.c.portal_id == match.portal_id,
            _e.c.owner == match.owner,
            _e.c.event == match.event,
            _e.c.handler == match.handler,
        )
        if match.auth_type is not None:
            query = query.where(_e.c.auth_type == match.auth_type)
        ids = list(self.conn.execute(query).scalars())
        if ids:
            self.conn.execute(sa.delete(t.event_delivery).where(t.event_delivery.c.handler_id.in_(ids)))
            self.conn.execute(sa.delete(_e).where(_e.c.id.in_(ids)))
        return len(ids)


def _handler(row: RowMapping) -> EventHandler:
    return EventHandler(**{name: row[name] for name in EventHandler.__dataclass_fields__})
