"""Line traces handed from `sip` workers to an API process through the store (TraceRepository,
docs/behaviour.md#line-trace): rows under the asker's token, taken (read and deleted) by it."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from sipline.store import schema as t
from sipline.store.records import TracedRow
from sipline.store.sql_base import SqlPart

_t = t.line_trace


class SqlTrace(SqlPart):
    def add_trace(self, token: str, line_id: int, rows: Sequence[TracedRow], now: float) -> None:
        if rows:
            self.conn.execute(
                sa.insert(_t),
                [{"token": token, "line_id": line_id, "created_at": now, **row._asdict()} for row in rows],
            )

    def take_trace(self, token: str) -> list[TracedRow]:
        query = sa.select(*[_t.c[name] for name in TracedRow._fields]).where(_t.c.token == token).order_by(_t.c.id)
        rows = [TracedRow(*row) for row in self.conn.execute(query)]
        if rows:
            self.conn.execute(sa.delete(_t).where(_t.c.token == token))
        return rows

    def prune_traces(self, before: float) -> None:
        self.conn.execute(sa.delete(_t).where(_t.c.created_at < before))
