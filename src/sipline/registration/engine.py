"""Keeps every cloud line registered: the asyncio side of registration/ (sip-behaviour.md A2–A10).

One timer heap holds the deadlines of every line machine, client transaction
and UDP keep-alive, and one loop timer is armed for the earliest of them
(never a task or sleep per line). What is due runs as a plain callback:

    line due ─► breaker? ─► targets (IP literal at once, else a DNS task)
             ─► RegisterAttempt ─► pacing queue ─► transaction ─► transport
    response / Timer F / transport error ─► attempt ─► next request or outcome
    outcome ─► line machine (status, next time) ─► batched store write

Store writes are batched (one statement per FLUSH_INTERVAL) and carry what the
machines hold at flush time, so a later change is never overwritten by an
earlier one. A REGISTER with a Contact the store does not hold yet waits for
the write that stores it (PARKED_FLUSH), so that whoever holds the line after
a crash retires every Contact we may have bound (A9).

Nonces are shared between the lines of one provider (the same Request-URI and
outbound proxy): a line's first REGISTER carries credentials built with the
nonce another line's REGISTER was last accepted with, so a start-up or failover
storm costs one transaction per line instead of two. This extends A4, which
allows preemptive credentials on refreshes. A registrar that binds nonces to a
user or a dialog answers with a fresh challenge, answered as A4 says; when that
happens to a nonce shared less than NONCE_TRUST ago (not one that merely
expired) and the line then succeeds, the provider gets no shared nonces any
more. While no nonce is known for a provider, one line's attempt learns it and
the first REGISTERs of the others wait for that attempt (at most PROBE_WAIT).
"""

from __future__ import annotations

import asyncio
import heapq
import ipaddress
import itertools
import logging
import random
import re
import secrets
import time
from functools import lru_cache
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from sipline.registration.attempt import Nonce, RegisterAttempt, Session, session_contact
from sipline.registration.line import LineRegistration, Status, new_session
from sipline.registration.outcome import DNS_FAIL_TEXT, Outcome, OutcomeKind
from sipline.registration.pacing import Breaker, Pacer, PacingSettings
from sipline.registration.request import Account
from sipline.sip.address import InvalidAddress
from sipline.sip.headers import parse_cseq
from sipline.sip.errors import BadRequest
from sipline.sip.message import Response
from sipline.sip.resolve import ResolutionFailed, Target, default_transport, literal_target
from sipline.sip.serialise import HeaderInjection, serialise
from sipline.sip.transaction import ClientTransaction, ResponseReceived, TimedOut, Timers
from sipline.sip.transports.dns import DnsResolver
from sipline.sip.transports.gate import refusal_text
from sipline.sip.transports.manager import SipTransport, Source
from sipline.sip.transports.stream import FlowKey, TransportError
from sipline.store.database import Database
from sipline.store.records import Line, LineType, Registration, RegistrationUpdate, StatusResult

log = logging.getLogger("sipline.registration")

FLUSH_INTERVAL = 0.2  # seconds a status change may wait to be written with others (a burst of 10 000
# lines spans many intervals; each line is written once per interval it changed in)
PARKED_FLUSH = 0.01  # seconds a REGISTER with a new Contact waits for others to be stored with it
NONCE_TRUST = 30.0  # seconds: a shared nonce refused sooner was bound to its line, not expired
PROBE_WAIT = 1.0  # seconds first REGISTERs wait at most for another line to learn the provider's nonce
CSEQ_BLOCK = 1000  # CSeqs reserved in the store at a time (a restart continues above them)
FIRST_ATTEMPT_JITTER = 5.0  # A9: a new line's first REGISTER within this many seconds
FLOW_RECOVERY_JITTER = 2.0  # A8: re-register 0-2 s after a flow failed
UDP_KEEPALIVE = 25.0  # A8: ±20 %
_BRANCH = re.compile(r";\s*branch\s*=\s*([^;,\s]+)", re.IGNORECASE)
_FAILURE_KINDS = {"transport": OutcomeKind.TRANSPORT, "tls_handshake": OutcomeKind.TLS_HANDSHAKE,
                  "tls_cert": OutcomeKind.TLS_CERT, "forbidden_target": OutcomeKind.FORBIDDEN_TARGET}
_BREAKER_KINDS = {OutcomeKind.DNS_FAIL, OutcomeKind.TIMEOUT, OutcomeKind.TRANSPORT}


@dataclass(frozen=True)
class EngineSettings:
    pacing: PacingSettings = PacingSettings()
    public_address: bool = False  # --sip-public given: never learn our address from Via (A8)
    time_scale: float = 1.0  # multiplies every protocol delay; tests only
    startup_spread: float = 5.0  # A10: first attempts after a start spread over max(this, N / rate) seconds


@dataclass
class _Job:
    """An attempt waiting for, or holding, a pacing slot; `line` is None for an un-REGISTER."""

    line: LineRegistration | None
    attempt: RegisterAttempt
    generation: int
    host: str
    refresh: bool
    borrowed: bool = False  # the first request carried credentials with another line's nonce
    waited: bool = False  # it waited for another line to learn the provider's nonce (no second wait)


@dataclass
class _Txn:
    txn: ClientTransaction
    job: _Job
    target: Target
    branch: str
    failure: str = "transport"

    def next_deadline(self) -> float | None:
        return self.txn.next_deadline()


@dataclass
class _KeepAlive:
    target: Target
    at: float

    def next_deadline(self) -> float:
        return self.at


@dataclass
class _Learning:
    """One line's attempt learns a provider's nonce; the first REGISTERs of others wait for it."""

    provider: str
    learner: _Job
    until: float
    held: list[_Job] = field(default_factory=list)

    def next_deadline(self) -> float:
        return self.until


@dataclass
class _Wake:
    """A heap entry that only re-runs the pacing queue."""

    at: float = field(default=0.0)

    def next_deadline(self) -> float:
        return self.at


class RegistrationEngine:
    def __init__(self, db: Database, transport: SipTransport, resolver: DnsResolver,
                 settings: EngineSettings = EngineSettings(), *, rng: random.Random | None = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.db = db
        self.transport = transport
        self.resolver = resolver
        self.settings = settings
        # tags, branches, cnonces and jitter; seeded from the OS, fast (os.urandom per call costs 7 % of a burst)
        self.rng = rng or random.Random(secrets.randbits(256))
        self.clock = clock
        self.wall = wall
        self.timers = Timers().scaled(settings.time_scale)
        self.pacer = Pacer(settings.pacing, clock())
        self.lines: dict[int, LineRegistration] = {}
        self._reserved: dict[int, int] = {}  # line id → CSeq reserved in the store
        self._outgoing: dict[int, str] = {}  # line id → the Contact its REGISTERs may carry now
        self._stored_contact: dict[int, str | None] = {}  # line id → what the store holds of that
        self._parked: list[tuple[_Job, str]] = []  # jobs waiting until the store holds their Contact
        self._txns: dict[str, _Txn] = {}
        self._heap: list[tuple[float, int, object]] = []
        self._seq = itertools.count()
        self._armed: asyncio.TimerHandle | None = None
        self._armed_at: float | None = None
        self._refreshes: deque[_Job] = deque()
        self._waiting: dict[str, deque[_Job]] = {}  # host → jobs held back by its limits
        self._breakers: dict[str, Breaker] = {}
        self._penalties: dict[Target, float] = {}  # 503 Retry-After (A3)
        self._keepalives: dict[Target, _KeepAlive] = {}
        # Account.provider → (realm → nonce, when it was shared)
        self._shared_nonces: dict[str, tuple[dict[str, Nonce], float]] = {}
        self._unshared: set[str] = set()  # providers that refused a shared nonce
        self._learning: dict[str, _Learning] = {}
        self._dirty: set[int] = set()
        self._flush_handle: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.started_at: float | None = None  # wall clock: when the engine began registering
        self.last_success_at: float | None = None  # wall clock: the latest line to reach `success`
        # Lease fencing (scale-out, registration/leases.py): while this says no, nothing is sent or
        # written for any line; lines that fall due wait in _fenced until fence_lifted().
        self.may_act: Callable[[], bool] = lambda: True
        self.owner: str | None = None  # the worker whose leases fence the store writes
        self._fenced: set[int] = set()
        transport.on_flow_lost = self.flow_lost

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self, resume: bool = True) -> None:
        """Resume every cloud line from the store, first attempts spread out (A9, A10); without
        `resume` the engine starts empty and lines come through adopt() (leases)."""
        self._loop = asyncio.get_running_loop()
        rows = await self.db.read(lambda repo: repo.cloud_registrations()) if resume else []
        now = self.clock()
        window = max(self.settings.startup_spread, len(rows) / self.settings.pacing.rate) * self.settings.time_scale
        for line, registration in rows:
            machine = self._machine(line, registration, now + self.rng.uniform(0, window))
            if machine is not None:
                self._reserve(machine, force=True)
        # CSeqs above what the store knew are used from now on: the new reservations land first
        await self._flush()
        self.started_at = self.wall()
        for machine in self.lines.values():
            self._schedule(machine)
        log.info("registration engine resumed %d cloud lines", len(self.lines))

    async def stop(self) -> None:
        if self._armed is not None:
            self._armed.cancel()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        await self._flush()
        for task in list(self._tasks):
            task.cancel()

    def _machine(self, line: Line, registration: Registration, first_attempt_at: float) -> LineRegistration | None:
        try:
            account = _account(line)
        except InvalidAddress:
            log.warning("line %d has a SERVER the engine cannot use; not registering it", line.id)
            return None
        session = Session(call_id=registration.call_id, token=registration.contact_token,
                          cseq=registration.cseq_reserved, expires=registration.expires_requested,
                          registered_contact=registration.registered_contact,
                          sent_contact=registration.sent_contact)
        result = registration.status_result
        if result is StatusResult.IN_PROGRESS:
            result = StatusResult.WAIT  # the attempt died with the previous process
        status = Status(result, registration.status_code, registration.error_message, registration.last_updated)
        machine = LineRegistration(line.id, registration.reg_id, account, session, status, rng=self.rng,
                                   first_attempt_at=first_attempt_at, public_address=self.settings.public_address,
                                   scale=self.settings.time_scale)
        self.lines[line.id] = machine
        self._reserved[line.id] = registration.cseq_reserved
        self._stored_contact[line.id] = sent = registration.sent_contact
        if sent is None or sent == registration.registered_contact:
            # stored with the line's first write, so its first REGISTER need not wait for one (A9);
            # a Contact whose REGISTER's outcome was never learnt stays stored until it is retired
            transport = default_transport(account.next_hop)
            sent = session_contact(session, transport, self.transport.local_address)
        self._outgoing[line.id] = sent
        return machine

    # -- what the telephony rules tell us ----------------------------------------------------------

    def line_added(self, line: Line) -> None:
        if line.type is LineType.CLOUD:
            self._spawn(self._load(line.id))

    async def _load(self, line_id: int) -> None:
        rows = await self.db.read(lambda repo: repo.cloud_registrations([line_id]))
        for line, registration in rows:
            first = self.clock() + self.rng.uniform(0, FIRST_ATTEMPT_JITTER) * self.settings.time_scale
            machine = self._machine(line, registration, first)
            if machine is not None:
                self._reserve(machine, force=True)
                self._mark(machine)
                self._schedule(machine)

    def line_changed(self, line: Line, reregister: bool) -> None:
        """SERVER, LOGIN or PASSWORD were set (`reregister`), or only the TITLE."""
        machine = self.lines.get(line.id)
        if machine is None or not reregister:
            return
        try:
            account = _account(line)
        except InvalidAddress:
            return
        now, wall = self.clock(), self.wall()
        old = machine.reconfigure(account, now, wall)
        if old is not None:
            self._unregister(*old)
        if machine.session.cseq == 0:
            self._reserved[line.id] = 0
        self._reserve(machine, force=machine.session.cseq == 0)
        self._mark(machine)
        self._schedule(machine)
        self._pump(now)

    def line_deleted(self, line: Line) -> None:
        self.forget(line.id, unregister=True)

    def forget(self, line_id: int, *, unregister: bool) -> None:
        """The line is gone from this engine at once. `unregister` (a deleted line, A9): one
        un-REGISTER of our Contact when a binding may exist; without it (a lease passed to another
        worker) the binding is left for the new owner to refresh."""
        machine = self.lines.pop(line_id, None)
        self._reserved.pop(line_id, None)
        self._outgoing.pop(line_id, None)
        self._stored_contact.pop(line_id, None)
        self._dirty.discard(line_id)
        self._fenced.discard(line_id)
        now = self.clock()
        for breaker in self._breakers.values():
            for held in breaker.forget(line_id):
                self._release(held, now)
        if machine is None:
            return
        machine.generation += 1  # an attempt in flight ends without effect
        for record in [record for record in self._txns.values() if record.job.line is machine]:
            self._end(record)  # and is no longer retransmitted: a late copy could bind a Contact again
        if unregister and (machine.status.result is StatusResult.SUCCESS or machine.attempting):
            self._unregister(machine.account, machine.session, machine.sticky)

    # -- what the lease keeper tells us (scale-out) --------------------------------------------------

    async def adopt(self, line_ids: list[int]) -> None:
        """Take over these lines from the store (Call-ID and CSeq continue), first attempts spread."""
        rows = await self.db.read(lambda repo: repo.cloud_registrations(line_ids))
        window = max(self.settings.startup_spread, len(rows) / self.settings.pacing.rate) * self.settings.time_scale
        now = self.clock()
        for line, registration in rows:
            if line.id in self.lines:
                continue
            machine = self._machine(line, registration, now + self.rng.uniform(0, window))
            if machine is not None:
                self._reserve(machine, force=True)
                self._mark(machine)
                self._schedule(machine)

    def fence_lifted(self) -> None:
        """The leases are good again: lines that fell due meanwhile go now, and what waited to be
        sent goes."""
        fenced, self._fenced = self._fenced, set()
        for line_id in fenced:
            machine = self.lines.get(line_id)
            if machine is not None:
                self._schedule(machine)
        self._pump(self.clock())
        if self._dirty:
            self._flush_within(PARKED_FLUSH if self._parked else FLUSH_INTERVAL)

    def reconcile(self, rows: list[tuple[Line, Registration]], held: set[int]) -> None:
        """The safety net for lost change notifications: `rows` are the store's view of the `held`
        lines; a line missing from it was deleted, one whose account differs was changed."""
        current = {line.id: line for line, _ in rows}
        for line_id in list(self.lines):
            if line_id not in held:
                continue
            line = current.get(line_id)
            if line is None:
                self.forget(line_id, unregister=True)
                continue
            try:
                changed = _account(line) != self.lines[line_id].account
            except InvalidAddress:
                changed = False
            if changed:
                self.line_changed(line, reregister=True)

    def status_counts(self) -> dict[str, int]:
        counts = Counter(machine.status.result for machine in self.lines.values())
        return {result.value: count for result, count in counts.items()}

    def register_now(self, line_id: int) -> None:
        machine = self.lines.get(line_id)
        if machine is not None:
            machine.register_now(self.clock(), self.wall())
            self._mark(machine)
            self._schedule(machine)

    # -- the timer heap ----------------------------------------------------------------------------

    def _push(self, deadline: float | None, entry: object) -> None:
        if deadline is None:
            return
        heapq.heappush(self._heap, (deadline, next(self._seq), entry))
        if self._armed_at is None or deadline < self._armed_at:
            self._arm(deadline)

    def _rearm(self) -> None:
        """Arm for the earliest live deadline; entries that went stale (a transaction answered, a line
        rescheduled) are dropped on the way instead of waking the loop for nothing."""
        heap = self._heap
        while heap and heap[0][2].next_deadline() != heap[0][0]:  # type: ignore[attr-defined]
            heapq.heappop(heap)
        if heap and (self._armed_at is None or heap[0][0] < self._armed_at):
            self._arm(heap[0][0])

    def _arm(self, deadline: float) -> None:
        if self._armed is not None:
            self._armed.cancel()
        self._armed_at = deadline
        self._armed = self._running_loop().call_later(max(0.0, deadline - self.clock()), self._on_timer)

    def _on_timer(self) -> None:
        self._armed = self._armed_at = None
        now = self.clock()
        while self._heap and self._heap[0][0] <= now:
            deadline, _, entry = heapq.heappop(self._heap)
            if getattr(entry, "next_deadline")() == deadline:
                self._fire(entry, now)
        self._pump(now)
        self._rearm()

    def _fire(self, entry: object, now: float) -> None:
        if isinstance(entry, LineRegistration):
            if self.lines.get(entry.line_id) is entry:
                self._line_due(entry, now)
        elif isinstance(entry, _Txn):
            if self._txns.get(entry.branch) is not entry:
                return  # the line was forgotten: its transaction is not retransmitted
            entry.txn.handle_timer(now)
            self._transmit(entry, now)
            self._drain(entry, now)
        elif isinstance(entry, _KeepAlive):
            self._keepalive(entry, now)
        elif isinstance(entry, _Learning):
            if self._learning.get(entry.provider) is entry:
                self._learnt(entry.provider, now)  # the learner is slow, or was dropped

    def _schedule(self, machine: LineRegistration) -> None:
        self._push(machine.next_deadline(), machine)

    # -- starting attempts ---------------------------------------------------------------------------

    def _line_due(self, machine: LineRegistration, now: float) -> None:
        if not self.may_act():
            self._fenced.add(machine.line_id)
            return
        due = machine.handle_timer(now, self.wall())
        if machine.changed:
            self._mark(machine)
        if not due:
            self._schedule(machine)
            return
        host = machine.account.next_hop.host
        if not machine.is_refresh and self._breaker(host).hold(machine.line_id, now):
            machine.next_attempt_at = None  # held until the provider answers again (A10)
            return
        generation = machine.begin()
        address = machine.account.next_hop
        try:
            targets = [literal_target(address)] if _is_ip(address.host) else None
        except ValueError:
            targets = None
        if targets is not None:
            self._attempt(machine, generation, targets, now)
        else:
            self._spawn(self._resolve_and_attempt(machine, generation))

    async def _resolve_and_attempt(self, machine: LineRegistration, generation: int) -> None:
        try:
            targets = await self.resolver.resolve(machine.account.next_hop)
        except ResolutionFailed as failure:
            log.debug("line %d: %s does not resolve (%s)", machine.line_id, machine.account.next_hop.host,
                      failure.reason)
            self._finish(machine, Outcome(OutcomeKind.DNS_FAIL, 502, DNS_FAIL_TEXT), generation, self.clock())
            return
        self._attempt(machine, generation, targets, self.clock())
        self._pump(self.clock())

    def _attempt(self, machine: LineRegistration, generation: int, targets: list[Target], now: float) -> None:
        if generation != machine.generation or self.lines.get(machine.line_id) is not machine:
            return
        allowed = self._allowed(self._order(targets, machine.sticky, now))
        if not allowed:
            outcome = Outcome(OutcomeKind.FORBIDDEN_TARGET, 403, refusal_text(targets[0].address))
            self._finish(machine, outcome, generation, now)
            return
        attempt = RegisterAttempt(machine.account, machine.session, allowed, local=self.transport.local_address,
                                  rng=self.rng)
        self._queue(_Job(machine, attempt, generation, machine.account.next_hop.host, machine.is_refresh), now)

    def _unregister(self, account: Account, session: Session, sticky: Target | None) -> None:
        """A9: Expires 0 for our Contact only (never `*`), ≤ 1 challenge, no retries."""
        if sticky is None:
            try:
                sticky = literal_target(account.next_hop) if _is_ip(account.next_hop.host) else None
            except ValueError:
                sticky = None
        if sticky is None:
            self._spawn(self._resolve_and_unregister(account, session))
            return
        attempt = RegisterAttempt(account, session, [sticky], local=self.transport.local_address, rng=self.rng,
                                  unregister=True)
        self._queue(_Job(None, attempt, 0, account.next_hop.host, False), self.clock())

    async def _resolve_and_unregister(self, account: Account, session: Session) -> None:
        try:
            targets = self._allowed(await self.resolver.resolve(account.next_hop))
        except ResolutionFailed:
            return
        if targets:
            self._unregister(account, session, targets[0])

    def _order(self, targets: list[Target], sticky: Target | None, now: float) -> list[Target]:
        """A3: the sticky target first; targets under a 503 Retry-After last."""
        if len(targets) == 1:
            return targets
        ordered = ([sticky] if sticky in targets else []) + [target for target in targets if target != sticky]
        return sorted(ordered, key=lambda target: self._penalties.get(target, 0) > now)

    def _allowed(self, targets: list[Target]) -> list[Target]:
        """The targets the transport's gate lets us send to (it refuses the others anyway)."""
        return [target for target in targets if self.transport.gate.permits(target.address)]

    # -- pacing and sending ------------------------------------------------------------------------------

    def _queue(self, job: _Job, now: float) -> None:
        line = job.line
        if line is not None:
            contact = job.attempt.next_contact()
            if self._stored_contact.get(line.line_id) != contact:
                self._park(job, contact)
                return
            if _first_without_nonce(job) and not job.waited and self._wait_for_nonce(job, now):
                return
        queue = self._refreshes if job.refresh else self._waiting.setdefault(job.host, deque())
        if job.attempt.branch:
            queue.appendleft(job)  # an attempt under way (a challenge answered, a failover) goes before new ones
        else:
            queue.append(job)
        self._pump(now)

    def _pump(self, now: float) -> None:
        """A10: refreshes first (global bucket only), then every host in turn within its limits."""
        if not self.may_act():
            return  # fence_lifted() pumps again
        while self._refreshes and self.pacer.admit(self._refreshes[0].host, True, now):
            self._send(self._refreshes.popleft(), now)
        progress = True
        while progress and self._waiting:
            progress = False
            for host in list(self._waiting):
                queue = self._waiting[host]
                if self.pacer.admit(host, False, now):
                    self._send(queue.popleft(), now)
                    progress = True
                if not queue:
                    del self._waiting[host]
        # What still waits is short of tokens (wake when they are back) or of slots (a finishing
        # transaction pumps again): only the first needs a timer.
        if not (self._refreshes or self._waiting) or self.pacer.total_in_flight >= self.pacer.settings.in_flight:
            return
        hosts = ([self._refreshes[0].host] if self._refreshes else []) + list(self._waiting)
        ready = [at for at in (self.pacer.ready_at(host, now) for host in hosts) if at > now]
        if ready:
            wake = _Wake(min(ready))
            self._push(wake.at, wake)

    def _send(self, job: _Job, now: float) -> None:
        line = job.line
        if line is not None and (job.generation != line.generation or self.lines.get(line.line_id) is not line):
            self.pacer.done(job.host)  # the line changed or went while this waited
            return
        if line is not None and _first_without_nonce(job):
            job.borrowed = self._borrow_nonces(line)
        item = job.attempt.next_request(now)
        if item is None:
            self.pacer.done(job.host)
            return
        target, request = item
        if line is not None:
            self._reserve(line)
            line.sending(self.wall())
            if line.changed:
                self._mark(line)
        try:
            data = serialise(request)
        except HeaderInjection as error:
            self.pacer.done(job.host)
            if line is not None:
                self._finish(line, Outcome(OutcomeKind.REJECTED, 400, f"Line data refused: {error}"), job.generation, now)
            return
        record = _Txn(ClientTransaction(data, reliable=target.transport != "udp", now=now, timers=self.timers),
                      job, target, job.attempt.branch)
        self._txns[record.branch] = record
        self._transmit(record, now)
        self._push(record.next_deadline(), record)

    def _transmit(self, record: _Txn, now: float) -> None:
        for datagram in record.txn.datagrams_to_send(now):
            self.transport.send(record.target, datagram, lambda error, branch=record.branch: self._running_loop()
                                .call_soon(self._transport_failed, branch, error))

    def _transport_failed(self, branch: str, error: TransportError) -> None:
        record = self._txns.get(branch)
        if record is not None:
            record.failure = error.kind
            record.txn.transport_failed(error.detail, self.clock())
            self._drain(record, self.clock())

    # -- what comes back ------------------------------------------------------------------------------

    def on_response(self, response: Response, source: Source) -> None:
        """A response from the transport; matched by the top Via's branch (§17.1.3)."""
        top = response.headers.get("Via")
        match = _BRANCH.search(top) if top else None
        record = self._txns.get(match.group(1)) if match else None
        if record is None:
            self.transport.stats["unmatched_responses"] += 1
            return
        try:
            if parse_cseq(response.headers.get("CSeq") or "")[1] != "REGISTER":
                return
        except BadRequest:
            self.transport.stats["dropped_malformed"] += 1
            return
        now = self.clock()
        record.txn.receive(response, now)
        self._drain(record, now)

    def _drain(self, record: _Txn, now: float) -> None:
        attempt = record.job.attempt
        while (event := record.txn.next_event()) is not None:
            if isinstance(event, ResponseReceived):
                if event.response.status < 200:
                    continue
                self._end(record)
                attempt.on_response(event.response, now)
            elif isinstance(event, TimedOut):
                self._end(record)
                attempt.on_failure(OutcomeKind.TIMEOUT, "", now)
            else:
                self._end(record)
                attempt.on_failure(_FAILURE_KINDS[record.failure], event.reason, now)
            self._advance(record.job, now)
        if record.branch in self._txns:
            self._push(record.next_deadline(), record)
        else:
            self._pump(now)  # a pacing slot came free

    def _end(self, record: _Txn) -> None:
        if self._txns.pop(record.branch, None) is not None:
            self.pacer.done(record.job.host)

    def _advance(self, job: _Job, now: float) -> None:
        attempt = job.attempt
        for target, seconds in attempt.penalties:
            self._penalties[target] = now + seconds * self.settings.time_scale
        attempt.penalties.clear()
        if attempt.outcome is not None:
            if job.line is not None:
                if attempt.outcome.kind is OutcomeKind.OK:
                    self._share_nonces(job, now)
                learning = self._learning.get(job.line.account.provider)
                if learning is not None and learning.learner is job:
                    self._learnt(learning.provider, now)
                self._finish(job.line, attempt.outcome, job.generation, now)
            else:
                log.debug("un-REGISTER ended with %d %s", attempt.outcome.code, attempt.outcome.message)
        elif attempt.waiting:
            self._queue(job, now)

    # -- nonces shared between the lines of a provider ---------------------------------------------------

    def _wait_for_nonce(self, job: _Job, now: float) -> bool:
        """A first REGISTER to a provider whose nonce no line knows: the first becomes the learner,
        the others wait for its outcome. Returns whether this one waits."""
        assert job.line is not None
        provider = job.line.account.provider
        if provider in self._unshared or provider in self._shared_nonces:
            return False
        learning = self._learning.get(provider)
        if learning is None:
            learning = self._learning[provider] = _Learning(provider, job, now + PROBE_WAIT * self.settings.time_scale)
            self._push(learning.until, learning)
            return False
        job.waited = True
        learning.held.append(job)
        return True

    def _learnt(self, provider: str, now: float) -> None:
        """The learner is done (or late): the waiting REGISTERs go, with its nonce if it worked."""
        learning = self._learning.pop(provider)
        for job in learning.held:
            self._queue(job, now)

    def _borrow_nonces(self, machine: LineRegistration) -> bool:
        shared = self._shared_nonces.get(machine.account.provider)
        if not shared:
            return False
        machine.session.nonces.update(shared[0])  # the same Nonce objects: one nc sequence per nonce (A4)
        return True

    def _share_nonces(self, job: _Job, now: float) -> None:
        """A REGISTER was accepted: the nonce it carried, if the registrar issued it in this attempt,
        is the one other lines of the provider use first; a provider that refused a shared nonce
        from a line whose own challenge then worked gets none any more."""
        assert job.line is not None
        key = job.line.account.provider
        if key in self._unshared:
            return
        shared = self._shared_nonces.get(key)
        if job.borrowed and job.attempt.cached_nonce_refused and shared and now - shared[1] < NONCE_TRUST:
            self._unshared.add(key)
            self._shared_nonces.pop(key, None)
            log.info("%s refused a nonce issued for another line: its lines answer their own challenges",
                     job.line.account.request_uri)
        elif job.attempt.learned_nonce:
            self._shared_nonces[key] = dict(job.line.session.nonces), now

    def _finish(self, machine: LineRegistration, outcome: Outcome, generation: int, now: float) -> None:
        if self.lines.get(machine.line_id) is not machine:
            return
        was_registered = machine.status.result is StatusResult.SUCCESS
        machine.finish(outcome, generation, now, self.wall())
        breaker = self._breaker(machine.account.next_hop.host)
        if outcome.kind is OutcomeKind.OK:
            if not was_registered and machine.status.result is StatusResult.SUCCESS:
                self.last_success_at = machine.status.updated_at
            for line_id in breaker.succeeded():
                self._release(line_id, now)
            self._maybe_keepalive(machine, now)
        elif outcome.kind in _BREAKER_KINDS or outcome.code == 503:
            breaker.failed(machine.line_id, now)
        self._mark(machine)
        self._schedule(machine)

    def _release(self, line_id: int, now: float) -> None:
        """A10: held lines go again, spread over 30 s, once the provider answered."""
        machine = self.lines.get(line_id)
        if machine is not None and not machine.attempting and machine.next_attempt_at is None:
            machine.next_attempt_at = now + self.rng.uniform(0, 30.0) * self.settings.time_scale
            self._schedule(machine)

    def _breaker(self, host: str) -> Breaker:
        breaker = self._breakers.get(host)
        if breaker is None:
            breaker = self._breakers[host] = Breaker()
        return breaker

    # -- flows and keep-alives (A8) ---------------------------------------------------------------------

    def flow_lost(self, key: FlowKey) -> None:
        """A TCP/TLS flow closed or went silent: its lines re-register on a new flow after 0–2 s."""
        now = self.clock()
        for branch, record in list(self._txns.items()):
            target = record.target
            if (target.transport, target.address, target.port) == (key.transport, key.address, key.port):
                self._transport_failed(branch, TransportError("transport", "Connection reset"))
        for machine in self.lines.values():
            sticky = machine.sticky
            if sticky is not None and (sticky.transport, sticky.address, sticky.port) == (key.transport, key.address,
                                                                                          key.port):
                if not machine.attempting:
                    machine.next_attempt_at = now + self.rng.uniform(0, FLOW_RECOVERY_JITTER) * self.settings.time_scale
                    self._schedule(machine)

    def _maybe_keepalive(self, machine: LineRegistration, now: float) -> None:
        target = machine.sticky
        if machine.nat_learned and target is not None and target.transport == "udp" and target not in self._keepalives:
            entry = self._keepalives[target] = _KeepAlive(target, now + self._keepalive_interval())
            self._push(entry.at, entry)

    def _keepalive(self, entry: _KeepAlive, now: float) -> None:
        users = [m for m in self.lines.values() if m.sticky == entry.target and m.nat_learned]
        if not users:
            del self._keepalives[entry.target]
            return
        self.transport.send_keepalive(entry.target)
        entry.at = now + self._keepalive_interval()
        self._push(entry.at, entry)

    def _keepalive_interval(self) -> float:
        return UDP_KEEPALIVE * self.rng.uniform(0.8, 1.2) * self.settings.time_scale

    # -- the store ----------------------------------------------------------------------------------

    def _reserve(self, machine: LineRegistration, force: bool = False) -> None:
        """Keep the stored CSeq reservation half a block ahead of what is sent (A9)."""
        reserved = self._reserved.get(machine.line_id, 0)
        if force or machine.session.cseq + 1 > reserved - CSEQ_BLOCK // 2:
            self._reserved[machine.line_id] = machine.session.cseq + CSEQ_BLOCK
            self._mark(machine)

    def _park(self, job: _Job, contact: str) -> None:
        """A9: the REGISTER waits until the store holds the Contact it carries."""
        line = job.line
        assert line is not None
        self._outgoing[line.line_id] = contact
        self._parked.append((job, contact))
        self._dirty.add(line.line_id)
        self._flush_within(PARKED_FLUSH)

    def _unpark(self) -> None:
        """After a write: jobs whose Contact the store now holds go to pacing; jobs of lines that
        changed or went meanwhile are dropped."""
        parked, self._parked = self._parked, []
        now = self.clock()
        for job, contact in parked:
            line = job.line
            assert line is not None
            if job.generation != line.generation or self.lines.get(line.line_id) is not line:
                continue
            if self._stored_contact.get(line.line_id) == contact:
                self._queue(job, now)
            else:
                self._parked.append((job, contact))

    def _mark(self, machine: LineRegistration) -> None:
        self._dirty.add(machine.line_id)
        if self._flush_handle is None:  # one already armed is due within FLUSH_INTERVAL
            self._flush_within(FLUSH_INTERVAL)

    def _flush_within(self, delay: float) -> None:
        """A flush at most `delay` from now: sooner than the one armed, if that is later."""
        handle, loop = self._flush_handle, self._running_loop()
        if handle is not None:
            if handle.when() <= loop.time() + delay:
                return
            handle.cancel()
        self._flush_handle = loop.call_later(delay, self._flush_soon)

    def _flush_soon(self) -> None:
        self._flush_handle = None
        self._spawn(self._flush())

    async def _flush(self) -> None:
        if not self.may_act():
            return  # fence_lifted() flushes; lines whose lease was lost are forgotten before
        lines, self._dirty = self._dirty, set()
        updates = []
        for line_id in lines:
            machine = self.lines.get(line_id)
            if machine is None:
                continue
            machine.changed = False
            status, session = machine.status, machine.session
            updates.append(RegistrationUpdate(
                reg_id=machine.reg_id, line_id=line_id, status_result=status.result, status_code=status.code,
                error_message=status.message, last_updated=status.updated_at, call_id=session.call_id,
                cseq_reserved=self._reserved.get(line_id, session.cseq), registered_contact=session.registered_contact,
                sent_contact=self._outgoing.get(line_id), expires_requested=session.expires,
                outcome=status.result in (StatusResult.SUCCESS, StatusResult.ERROR),
            ))
        if updates:
            try:
                await self.db.write(lambda repo: repo.save_registrations(updates, self.owner), touches=("lines",))
            except Exception as error:  # the store is down, or lost a race it did not retry: try again
                log.warning("registration status not saved, retrying: %s", str(error).splitlines()[0])
                for update in updates:
                    if update.line_id in self.lines:
                        self._mark(self.lines[update.line_id])
                return
            for update in updates:
                if update.line_id in self.lines:
                    self._stored_contact[update.line_id] = update.sent_contact
            if self._parked:
                self._unpark()

    # -- helpers ----------------------------------------------------------------------------------------

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def _spawn(self, coroutine) -> None:
        task = self._running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _first_without_nonce(job: _Job) -> bool:
    """The attempt's first request, and the line knows no nonce to answer with up front."""
    return not job.attempt.branch and not job.line.session.nonces  # type: ignore[union-attr]


def _account(line: Line) -> Account:
    return Account.from_fields(line.server, line.outbound_proxy, line.login, line.auth_user, line.password)


@lru_cache(maxsize=4096)
def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


__all__ = ["EngineSettings", "RegistrationEngine", "new_session"]
