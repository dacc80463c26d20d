"""What the engine writes to the store, and when (docs/behaviour.md#reg-lifecycle), sans-IO.

Status writes are batched (one statement per FLUSH_INTERVAL) and carry what the
machines hold at flush time, so a later change is never overwritten by an
earlier one. CSeqs are reserved in the store a block at a time, so a restart
continues above any CSeq sent. A REGISTER with a Contact the store does not hold
yet waits for the write that stores it (PARKED_FLUSH), so that whoever holds the
line after a crash retires every Contact we may have bound.

The runner takes a batch (`batch`), writes it, and reports back (`stored`, or
the lines are marked again when the write failed).
"""

from __future__ import annotations

from sipline.registration.line import LineRegistration
from sipline.registration.sending import Job
from sipline.store.records import RegistrationUpdate, StatusResult

FLUSH_INTERVAL = 0.2  # seconds a status change may wait to be written with others (a burst of 10 000
# lines spans many intervals; each line is written once per interval it changed in)
PARKED_FLUSH = 0.01  # seconds a REGISTER with a new Contact waits for others to be stored with it
CSEQ_BLOCK = 1000  # CSeqs reserved in the store at a time (a restart continues above them)


class StoreWrites:
    def __init__(self) -> None:
        self.reserved: dict[int, int] = {}  # line id → CSeq reserved in the store
        self.outgoing: dict[int, str] = {}  # line id → the Contact its REGISTERs may carry now
        self.stored_contact: dict[int, str | None] = {}  # line id → what the store holds of that
        self.parked: list[tuple[Job, str]] = []  # jobs waiting until the store holds their Contact
        self.dirty: set[int] = set()
        self.due_at: float | None = None  # when the next batch is due

    def next_deadline(self) -> float | None:
        return self.due_at

    def is_due(self, now: float) -> bool:
        """Whether a batch is due now; the deadline is consumed."""
        if self.due_at is None or self.due_at > now:
            return False
        self.due_at = None
        return True

    def mark(self, line_id: int, now: float) -> None:
        self.dirty.add(line_id)
        if self.due_at is None:  # one already due is within FLUSH_INTERVAL
            self.due_at = now + FLUSH_INTERVAL

    def flush_within(self, delay: float, now: float) -> None:
        """A batch at most `delay` from now: sooner than the one due, if that is later."""
        if self.due_at is None or self.due_at > now + delay:
            self.due_at = now + delay

    def forget(self, line_id: int) -> None:
        self.reserved.pop(line_id, None)
        self.outgoing.pop(line_id, None)
        self.stored_contact.pop(line_id, None)
        self.dirty.discard(line_id)

    # -- CSeq reservation -----------------------------------------------------------------------------

    def reserve(self, machine: LineRegistration, force: bool = False) -> bool:
        """Keep the stored CSeq reservation half a block ahead of what is sent (docs/behaviour.md#reg-lifecycle). Returns whether
        it moved (the line must be written)."""
        reserved = self.reserved.get(machine.line_id, 0)
        if force or machine.session.cseq + 1 > reserved - CSEQ_BLOCK // 2:
            self.reserved[machine.line_id] = machine.session.cseq + CSEQ_BLOCK
            return True
        return False

    # -- Contacts the store must hold before they are sent ------------------------------------------------

    def must_park(self, job: Job, contact: str) -> bool:
        assert job.line is not None
        return self.stored_contact.get(job.line.line_id) != contact

    def park(self, job: Job, contact: str, now: float) -> None:
        """docs/behaviour.md#reg-lifecycle: the REGISTER waits until the store holds the Contact it carries."""
        assert job.line is not None
        self.outgoing[job.line.line_id] = contact
        self.parked.append((job, contact))
        self.dirty.add(job.line.line_id)
        self.flush_within(PARKED_FLUSH, now)

    def unpark(self, lines: dict[int, LineRegistration]) -> list[Job]:
        """After a write: jobs whose Contact the store now holds go on; jobs of lines that changed
        or went meanwhile are dropped."""
        parked, self.parked = self.parked, []
        ready = []
        for job, contact in parked:
            if not job.is_current(lines):
                continue
            if self.stored_contact.get(job.line.line_id) == contact:  # type: ignore[union-attr]
                ready.append(job)
            else:
                self.parked.append((job, contact))
        return ready

    # -- batches ----------------------------------------------------------------------------------------

    def batch(self, lines: dict[int, LineRegistration]) -> list[RegistrationUpdate]:
        """What the marked lines hold now, to be written together."""
        marked, self.dirty = self.dirty, set()
        updates = []
        for line_id in marked:
            machine = lines.get(line_id)
            if machine is None:
                continue
            machine.changed = False
            status, session = machine.status, machine.session
            updates.append(
                RegistrationUpdate(
                    reg_id=machine.reg_id,
                    line_id=line_id,
                    status_result=status.result,
                    status_code=status.code,
                    error_message=status.message,
                    last_updated=status.updated_at,
                    call_id=session.call_id,
                    cseq_reserved=self.reserved.get(line_id, session.cseq),
                    registered_contact=session.registered_contact,
                    sent_contact=self.outgoing.get(line_id),
                    expires_requested=session.expires,
                    outcome=status.result in (StatusResult.SUCCESS, StatusResult.ERROR),
                    history=machine.history.take(),  # docs/behaviour.md#line-history: with the status
                )
            )
        return updates

    def failed(self, updates: list[RegistrationUpdate], lines: dict[int, LineRegistration], now: float) -> None:
        """A batch was not written: its lines are written again with the next one, history included."""
        for update in updates:
            machine = lines.get(update.line_id)
            if machine is not None:
                machine.history.put_back(update.history)
                self.mark(update.line_id, now)

    def stored(self, updates: list[RegistrationUpdate], lines: dict[int, LineRegistration]) -> list[Job]:
        """A batch is in the store: returns the parked jobs that may go now."""
        for update in updates:
            if update.line_id in lines:
                self.stored_contact[update.line_id] = update.sent_contact
        return self.unpark(lines) if self.parked else []
