"""Cloud lines coming into the registration core and leaving it (docs/behaviour.md#reg-lifecycle), sans-IO.

The runner (engine.py) hands over the store's rows and the API's changes, each with `now`:

    resume / add_lines / adopt ─► a line machine, CSeqs reserved, its first attempt spread
    line_changed / register_now ─► the machine restarts (the old binding un-REGISTERed)
    forget / reconcile ─► the machine goes, its work in flight with it
    fence_lifted ─► what fell due while the leases were in doubt goes now

RegistrationCore (core.py) is a LineIntake: this part decides which machines exist and when they
first fall due; the core drives them (attempts, pacing, transactions, outcomes), and gives this part
the four steps it needs of it (the abstract methods below).
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable

from sipline.registration.attempt import Session
from sipline.registration.breaker import Breakers
from sipline.registration.line import LineRegistration
from sipline.registration.request import Account
from sipline.registration.sending import InFlight, Txn
from sipline.registration.settings import EngineSettings
from sipline.registration.stored import first_contact, line_account, machine_from_store
from sipline.registration.timers import TimerHeap
from sipline.registration.writes import FLUSH_INTERVAL, PARKED_FLUSH, StoreWrites
from sipline.sip.address import InvalidAddress
from sipline.sip.resolve import Target
from sipline.sip.trace import Trace
from sipline.store.records import Line, Registration, StatusResult

Rows = list[tuple[Line, Registration]]


class LineIntake(ABC):
    # what the core holds (core.py sets them)
    settings: EngineSettings
    rng: random.Random
    wall: Callable[[], float]
    local: Callable[[str], tuple[str, int]]
    lines: dict[int, LineRegistration]
    heap: TimerHeap
    writes: StoreWrites
    breakers: Breakers
    in_flight: InFlight
    trace: Trace
    _fenced: set[int]  # lines that fell due while the leases said no (core.py, may_act)

    # -- the core's steps ------------------------------------------------------------------------

    @abstractmethod
    def _unregister(self, account: Account, session: Session, sticky: Target | None, now: float) -> None:
        """docs/behaviour.md#reg-lifecycle: one un-REGISTER of our Contact."""

    @abstractmethod
    def _pump(self, now: float) -> None:
        """Send what the pacing admits."""

    @abstractmethod
    def _release(self, line_id: int, now: float) -> None:
        """A line a breaker held goes again."""

    @abstractmethod
    def _end(self, record: Txn) -> None:
        """A transaction is no longer in flight."""

    # -- lines from the store ----------------------------------------------------------------------

    def resume(self, rows: Rows, now: float) -> None:
        """Lines to resume after a start (docs/behaviour.md#reg-lifecycle, docs/behaviour.md#reg-pacing): first attempts spread, CSeqs reserved; the
        runner writes the reservations, then calls schedule_all()."""
        window = self._spread(len(rows))
        for line, registration in rows:
            machine = self._machine(line, registration, now + self.rng.uniform(0, window))
            if machine is not None:
                self._reserve(machine, now, force=True)

    def schedule_all(self) -> None:
        for machine in self.lines.values():
            self._schedule(machine)

    def add_lines(self, rows: Rows, now: float) -> None:
        """New lines: each registers within the new-line spread (docs/behaviour.md#reg-lifecycle)."""
        for line, registration in rows:
            first = now + self.rng.uniform(0, self.settings.new_line_spread)
            self._start(self._machine(line, registration, first), now)

    def adopt(self, rows: Rows, now: float) -> None:
        """Lines taken over from another worker (Call-ID and CSeq continue), first attempts spread."""
        window = self._spread(len(rows))
        for line, registration in rows:
            if line.id not in self.lines:
                self._start(self._machine(line, registration, now + self.rng.uniform(0, window), moved=True), now)

    def _spread(self, count: int) -> float:
        return max(self.settings.startup_spread, count / self.settings.pacing.rate)

    def _start(self, machine: LineRegistration | None, now: float) -> None:
        if machine is not None:
            self._reserve(machine, now, force=True)
            self.writes.mark(machine.line_id, now)
            self._schedule(machine)

    def _machine(
        self, line: Line, registration: Registration, first_attempt_at: float, moved: bool = False
    ) -> LineRegistration | None:
        machine = machine_from_store(
            line,
            registration,
            first_attempt_at,
            rng=self.rng,
            public_address=self.settings.public_address,
            retries=self.settings.retries,
            wall=self.wall(),
            moved=moved,
        )
        if machine is not None:
            self.lines[line.id] = machine
            self.writes.reserved[line.id] = registration.cseq_reserved
            self.writes.stored_contact[line.id] = registration.sent_contact
            self.writes.outgoing[line.id] = first_contact(machine, registration, self.local)
        return machine

    def _schedule(self, machine: LineRegistration) -> None:
        self.heap.push(machine.next_deadline(), machine)

    def _reserve(self, machine: LineRegistration, now: float, force: bool = False) -> None:
        if self.writes.reserve(machine, force):
            self.writes.mark(machine.line_id, now)

    # -- what the telephony rules tell us ----------------------------------------------------------

    def line_changed(self, line: Line, reregister: bool, now: float) -> None:
        """SERVER, LOGIN or PASSWORD were set (`reregister`), or only the TITLE."""
        machine = self.lines.get(line.id)
        if machine is None or not reregister:
            return
        try:
            account = line_account(line)
        except InvalidAddress:
            return
        old = machine.reconfigure(account, now, self.wall())
        if old is not None:
            self._unregister(*old, now)
        if machine.session.cseq == 0:
            self.writes.reserved[line.id] = 0
        self._reserve(machine, now, force=machine.session.cseq == 0)
        self.writes.mark(machine.line_id, now)
        self._schedule(machine)
        self._pump(now)

    def forget(self, line_id: int, now: float, *, unregister: bool) -> None:
        """The line is gone from this engine at once. `unregister` (a deleted line, docs/behaviour.md#reg-lifecycle): one
        un-REGISTER of our Contact when a binding may exist; without it (a lease passed to another
        worker) the binding is left for the new owner to refresh."""
        machine = self.lines.pop(line_id, None)
        self.writes.forget(line_id)
        self.trace.forget(line_id)  # docs/behaviour.md#line-trace: kept by the process that holds the line
        self._fenced.discard(line_id)
        for held in self.breakers.forget(line_id):
            self._release(held, now)
        if machine is None:
            return
        machine.generation += 1  # an attempt in flight ends without effect
        for record in [record for record in self.in_flight.values() if record.job.line is machine]:
            self._end(record)  # and is no longer retransmitted: a late copy could bind a Contact again
        if unregister and (machine.status.result is StatusResult.SUCCESS or machine.attempting):
            self._unregister(machine.account, machine.session, machine.sticky, now)

    def fence_lifted(self, now: float) -> None:
        """The leases are good again: lines that fell due meanwhile go now, and what waited to be
        sent or written goes."""
        fenced, self._fenced = self._fenced, set()
        for line_id in fenced:
            machine = self.lines.get(line_id)
            if machine is not None:
                self._schedule(machine)
        self._pump(now)
        if self.writes.dirty:
            self.writes.flush_within(PARKED_FLUSH if self.writes.parked else FLUSH_INTERVAL, now)

    def reconcile(self, rows: Rows, held: set[int], now: float) -> None:
        """The safety net for lost change notifications: `rows` are the store's view of the `held`
        lines; a line missing from it was deleted, one whose account differs was changed."""
        current = {line.id: line for line, _ in rows}
        for line_id in [line_id for line_id in self.lines if line_id in held]:
            line = current.get(line_id)
            if line is None:
                self.forget(line_id, now, unregister=True)
                continue
            try:
                changed = line_account(line) != self.lines[line_id].account
            except InvalidAddress:
                changed = False
            if changed:
                self.line_changed(line, True, now)

    def status_counts(self) -> dict[str, int]:
        counts = Counter(machine.status.result for machine in self.lines.values())
        return {result.value: count for result, count in counts.items()}

    def register_now(self, line_id: int, now: float) -> None:
        machine = self.lines.get(line_id)
        if machine is not None:
            machine.register_now(now, self.wall())
            self.writes.mark(machine.line_id, now)
            self._schedule(machine)
