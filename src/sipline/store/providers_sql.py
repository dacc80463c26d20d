"""Providers (ProviderRepository, docs/behaviour.md#providers): the breakers' states as the `sip`
processes report them, and what the providers view reads of the caller's lines."""

from __future__ import annotations

import time
from collections.abc import Sequence

import sqlalchemy as sa

from sipline.store import schema as t
from sipline.store.records import BreakerState, Cause, Line, ProviderState, Registration, StatusChange, StatusResult
from sipline.store.sql_base import SqlPart

_p, _h = t.provider_state, t.line_history


class SqlProviders(SqlPart):
    def save_provider_states(self, states: Sequence[ProviderState], worker: str = "") -> None:
        now = time.time()
        for state in states:  # rare (a breaker's change): one statement each is fine
            values = {"state": state.state.value, "since": state.since, "updated": now}
            done = self.conn.execute(
                sa.update(_p).where(_p.c.provider == state.provider, _p.c.worker == worker).values(values)
            )
            if done.rowcount == 0:
                self.conn.execute(sa.insert(_p).values(provider=state.provider, worker=worker, **values))

    def clear_provider_states(self, worker: str = "") -> None:
        self.conn.execute(sa.delete(_p).where(_p.c.worker == worker))

    def provider_states(self) -> list[ProviderState]:
        query = sa.select(_p).order_by(_p.c.provider, _p.c.worker)
        return [
            ProviderState(row["provider"], BreakerState(row["state"]), row["since"])
            for row in self.conn.execute(query).mappings()
        ]

    def caller_registrations(self, portal_id: int, app_id: str | None) -> list[tuple[Line, Registration]]:
        query = (
            sa.select(t.line, t.registration)
            .join(t.registration, t.registration.c.line_id == t.line.c.id)
            .where(t.line.c.portal_id == portal_id)
            .order_by(t.line.c.config_id)
        )
        if app_id is not None:
            query = query.where(t.line.c.app_id == app_id)
        return [(self._line(row), self._registration(row)) for row in self.conn.execute(query).mappings()]

    def last_errors(self, line_ids: Sequence[int]) -> dict[int, StatusChange]:
        if not line_ids:
            return {}
        newest = (
            sa.select(sa.func.max(_h.c.id))
            .where(_h.c.line_id.in_(line_ids), _h.c.status_result == StatusResult.ERROR.value)
            .group_by(_h.c.line_id)
        )
        query = sa.select(_h).where(_h.c.id.in_(newest))
        return {
            row["line_id"]: StatusChange(
                at=row["at"],
                result=StatusResult.ERROR,
                code=row["status_code"],
                message=row["error_message"],
                cause=Cause(row["cause"]),
            )
            for row in self.conn.execute(query).mappings()
        }
