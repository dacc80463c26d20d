"""Cloud lines' registrations: status and session written by the engine, and the leases of `sip`
workers that decide which worker registers which line (RegistrationRepository)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import sqlalchemy as sa

from sipline.store import schema as t
from sipline.store.history_sql import SqlHistory
from sipline.store.records import LeaseRound, Line, Registration, RegistrationUpdate, StatusResult

_SAVE_REGISTRATION = (
    sa.update(t.registration)
    .where(t.registration.c.reg_id == sa.bindparam("b_reg_id"))
    .values(
        {
            name: sa.bindparam(name)
            for name in (
                "status_result",
                "status_code",
                "error_message",
                "last_updated",
                "call_id",
                "cseq_reserved",
                "registered_contact",
                "sent_contact",
                "expires_requested",
            )
        }
    )
)
_SAVE_LINE_STATUS = (
    sa.update(t.line)
    .where(t.line.c.id == sa.bindparam("b_line_id"))
    .values(registration_status_code=sa.bindparam("code"), registration_error_message=sa.bindparam("message"))
)
# scale-out: a worker writes only the lines whose lease it holds (a late write of one that lost a
# line would overwrite the Contacts its new owner stored)
_SAVE_REGISTRATION_LEASED = _SAVE_REGISTRATION.where(t.registration.c.lease_owner == sa.bindparam("b_owner"))
_SAVE_LINE_STATUS_LEASED = _SAVE_LINE_STATUS.where(
    sa.exists().where(t.registration.c.line_id == t.line.c.id, t.registration.c.lease_owner == sa.bindparam("b_owner"))
)


class SqlRegistrations(SqlHistory):
    def registration(self, portal_id: int, app_id: str | None, reg_id: int) -> Registration | None:
        query = (
            sa.select(t.registration)
            .join(t.line, t.line.c.id == t.registration.c.line_id)
            .where(t.registration.c.reg_id == reg_id, t.line.c.portal_id == portal_id)
        )
        if app_id is not None:
            query = query.where(t.line.c.app_id == app_id)
        row = self.conn.execute(query).mappings().first()
        return None if row is None else self._registration(row)

    def cloud_registrations(self, line_ids: Sequence[int] | None = None) -> list[tuple[Line, Registration]]:
        query = (
            sa.select(t.line, t.registration, t.portal.c.domain.label("portal_domain"))
            .join(t.registration, t.registration.c.line_id == t.line.c.id)
            .join(t.portal, t.portal.c.id == t.line.c.portal_id)
            .order_by(t.line.c.id)
        )
        if line_ids is not None:
            query = query.where(t.line.c.id.in_(line_ids))
        return [(self._line(row), self._registration(row)) for row in self.conn.execute(query).mappings()]

    def reset_registration(self, reg_id: int, now: float) -> None:
        self.conn.execute(
            sa.update(t.registration)
            .where(t.registration.c.reg_id == reg_id)
            .values(status_result=StatusResult.WAIT.value, status_code=0, error_message="", last_updated=now)
        )

    def save_registrations(self, updates: list[RegistrationUpdate], owner: str | None = None) -> None:
        if not updates:
            return
        updates = sorted(updates, key=lambda update: update.reg_id)  # one lock order for every writer
        fence = {} if owner is None else {"b_owner": owner}
        self._driver(
            _SAVE_REGISTRATION if owner is None else _SAVE_REGISTRATION_LEASED,
            [
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
            ],
        )
        outcomes = [update for update in updates if update.outcome]
        if (
            outcomes
        ):  # docs/behaviour.md#reg-status: REGISTRATION_STATUS_CODE / _ERROR_MESSAGE of the line follow outcomes
            self._driver(
                _SAVE_LINE_STATUS if owner is None else _SAVE_LINE_STATUS_LEASED,
                [
                    {**fence, "b_line_id": u.line_id, "code": u.status_code, "message": u.error_message}
                    for u in outcomes
                ],
            )
            self._lines_changed([update.line_id for update in outcomes])  # one bump per portal per batch
        # docs/behaviour.md#line-history: in the same transaction and under the same fence as the status
        self.add_history([(update.line_id, entry) for update in updates for entry in update.history], owner)

    # -- scale-out: leases of `sip` workers (PostgreSQL) -------------------------------------------

    def lease_round(self, worker: str, lease_time: float, max_moves: int, acquire: bool = True) -> LeaseRound:
        reg, workers_table, now = t.registration, t.sip_worker, self._db_now()
        # a line's lease is its owner's heartbeat: renewing every lease is one row, whatever the lines
        renewed = self.conn.execute(
            sa.update(workers_table)
            .where(workers_table.c.id == worker, workers_table.c.heartbeat_at >= now - lease_time)
            .values(heartbeat_at=now)
        )
        if renewed.rowcount == 0:  # new, or back after its heartbeat went stale: what it held may be taken
            self.conn.execute(sa.update(reg).where(reg.c.lease_owner == worker).values(lease_owner=None))
            self.conn.execute(sa.delete(workers_table).where(workers_table.c.id == worker))
            self.conn.execute(sa.insert(workers_table).values(id=worker, heartbeat_at=now))
        self.conn.execute(sa.delete(workers_table).where(workers_table.c.heartbeat_at < now - 2 * lease_time))
        # docs/behaviour.md#providers: what workers gone for good reported of their breakers
        gone = sa.and_(t.provider_state.c.worker != "", t.provider_state.c.worker.not_in(sa.select(workers_table.c.id)))
        self.conn.execute(sa.delete(t.provider_state).where(gone))
        held = sorted(self.conn.execute(sa.select(reg.c.line_id).where(reg.c.lease_owner == worker)).scalars())
        workers = self.conn.execute(
            sa.select(sa.func.count())
            .select_from(workers_table)
            .where(workers_table.c.heartbeat_at >= now - lease_time)
        ).scalar_one()
        lines = self.conn.execute(sa.select(sa.func.count()).select_from(reg)).scalar_one()
        share = math.ceil(lines / max(1, workers))
        acquired: list[int] = []
        released: list[int] = []
        if acquire and len(held) < share:
            live = sa.select(workers_table.c.id).where(workers_table.c.heartbeat_at >= now - lease_time)
            free = (
                sa.select(reg.c.line_id)
                .where(sa.or_(reg.c.lease_owner.is_(None), reg.c.lease_owner.not_in(live.scalar_subquery())))
                .order_by(reg.c.line_id)
                .limit(share - len(held))
                .with_for_update(skip_locked=True)
            )
            acquired = list(self.conn.execute(free).scalars())
            if acquired:
                self.conn.execute(sa.update(reg).where(reg.c.line_id.in_(acquired)).values(lease_owner=worker))
        elif len(held) > share:
            released = held[share:][:max_moves]
            self.conn.execute(
                sa.update(reg).where(reg.c.line_id.in_(released), reg.c.lease_owner == worker).values(lease_owner=None)
            )
            held = [line_id for line_id in held if line_id not in set(released)]
        return LeaseRound(held=held, acquired=acquired, released=released, workers=workers)

    def release_leases(self, worker: str) -> None:
        self.conn.execute(
            sa.update(t.registration).where(t.registration.c.lease_owner == worker).values(lease_owner=None)
        )
        self.conn.execute(sa.delete(t.sip_worker).where(t.sip_worker.c.id == worker))

    def _db_now(self) -> float:
        if self.conn.dialect.name == "postgresql":
            return float(self.conn.execute(sa.select(sa.func.extract("epoch", sa.func.clock_timestamp()))).scalar_one())
        return time.time()
