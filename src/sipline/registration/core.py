"""Keeps every cloud line registered, sans-IO (docs/behaviour.md#cloud-registration), driven by `now` like
aioquic's QuicConnection. The runner (engine.py) feeds it events and the store's rows, and carries
out what it asks: datagrams_to_send(), dns_queries(), store_writes(), next_deadline().

    line due ─► breaker? ─► targets (IP literal at once, else a DNS query)
             ─► RegisterAttempt ─► pacing queue ─► transaction ─► datagrams
    response / Timer F / transport error ─► attempt ─► next request or outcome
    outcome ─► line machine (status, next time) ─► batched store write

Parts, one job each: intake.py (lines coming and going, the base of this class), settings.py
(what the operator sets), timers.py (the deadlines), sending.py (pacing queue, transactions),
nonces.py (nonces shared within a provider), keepalive.py (docs/behaviour.md#reg-keepalive), writes.py (store writes, docs/behaviour.md#reg-lifecycle),
targets.py (docs/behaviour.md#reg-targets), stored.py (machines from rows).
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable

from sipline.registration.attempt import RegisterAttempt, Session
from sipline.registration.breaker import Breaker, Breakers
from sipline.registration.intake import LineIntake
from sipline.registration.keepalive import KeepAlive, KeepAlives
from sipline.registration.line import LineRegistration
from sipline.registration.nonces import Learning, NonceSharing
from sipline.registration.outcome import DNS_FAIL_TEXT, Outcome, OutcomeKind
from sipline.registration.pacing import Pacer
from sipline.registration.request import Account
from sipline.registration.sending import Datagram, DnsQuery, InFlight, Job, SendQueue, Txn, Wake
from sipline.registration.settings import EngineSettings
from sipline.registration.targets import TargetChoice, literal_targets
from sipline.registration.timers import TimerHeap
from sipline.registration.writes import FLUSH_INTERVAL, StoreWrites
from sipline.sip.message import Response
from sipline.sip.resolve import Target
from sipline.sip.serialise import HeaderInjection, serialise
from sipline.sip.trace import Trace
from sipline.sip.transaction import ClientTransaction, ResponseReceived, TimedOut
from sipline.sip.transports.gate import refusal_text
from sipline.sip.transports.manager import Source
from sipline.sip.transports.stream import FlowKey, TransportError
from sipline.store.records import BreakerState, Cause, ProviderState, RegistrationUpdate, StatusResult

log = logging.getLogger("sipline.registration")

FLOW_RECOVERY_JITTER = 2.0  # docs/behaviour.md#reg-keepalive: re-register 0-2 s after a flow failed
_FAILURE_KINDS = {
    "transport": OutcomeKind.TRANSPORT,
    "tls_handshake": OutcomeKind.TLS_HANDSHAKE,
    "tls_cert": OutcomeKind.TLS_CERT,
    "forbidden_target": OutcomeKind.FORBIDDEN_TARGET,
}
# docs/behaviour.md#reg-pacing: outcomes that say the provider is down (and a 503 answer); a refused
# target says nothing of it; every other outcome is its answer
_DOWN_KINDS = {OutcomeKind.DNS_FAIL, OutcomeKind.TIMEOUT, OutcomeKind.TRANSPORT, OutcomeKind.TLS_HANDSHAKE}
_NEUTRAL_KINDS = {OutcomeKind.FORBIDDEN_TARGET}


class RegistrationCore(LineIntake):
    def __init__(
        self,
        settings: EngineSettings,
        *,
        now: float,
        rng: random.Random,
        wall: Callable[[], float],
        local: Callable[[str], tuple[str, int]],
        permits: Callable[[str], bool],
        stats: Counter[str],
        trace: Trace | None = None,
    ) -> None:
        """`wall` gives LAST_UPDATED times, `local` our address per transport, `permits` the
        transport's target gate, `stats` the transport's counters, `trace` keeps each line's messages."""
        self.settings = settings
        self.rng = rng
        self.wall, self.local, self.stats = wall, local, stats
        self.timers = settings.timers
        self.lines: dict[int, LineRegistration] = {}
        self.heap = TimerHeap()
        self.pacer = Pacer(settings.pacing, now)
        self.queue = SendQueue(self.pacer)
        self.nonces = NonceSharing(self.heap)
        self.keepalives = KeepAlives(self.heap, rng, settings.keepalive_interval)
        self.writes = StoreWrites()
        self.in_flight = InFlight()
        self.breakers = Breakers(settings.breaker_release_spread)
        self.targets = TargetChoice(permits)
        self.trace = trace if trace is not None else Trace()  # docs/behaviour.md#line-trace
        self._datagrams: list[Datagram] = []
        self._queries: list[DnsQuery] = []
        self._flush_due = False
        self._provider_batch: list[ProviderState] = []
        self.last_success_at: float | None = None  # wall clock: the latest line to reach `success`
        # Lease fencing (scale-out, registration/leases.py): while this says no, nothing is sent or
        # written for any line; lines that fall due wait in _fenced until fence_lifted().
        self.may_act: Callable[[], bool] = lambda: True
        self._fenced: set[int] = set()

    # -- outputs ------------------------------------------------------------------------------------

    def datagrams_to_send(self) -> list[Datagram]:
        datagrams, self._datagrams = self._datagrams, []
        return datagrams

    def dns_queries(self) -> list[DnsQuery]:
        queries, self._queries = self._queries, []
        return queries

    def store_writes(self, everything: bool = False) -> list[RegistrationUpdate]:
        """The batch to write now (empty when none is due; `everything`: what is marked, due or not).
        Nothing while fenced: fence_lifted() asks for a batch again."""
        if not (everything or self._flush_due):
            return []
        self._flush_due = False
        if not self.may_act():
            return []
        self._provider_batch += self.breakers.take()
        return self.writes.batch(self.lines)

    def provider_writes(self) -> list[ProviderState]:
        """The breakers' changes taken with the last store_writes() batch (docs/behaviour.md#providers);
        provider_writes_failed() them when they are not written."""
        states, self._provider_batch = self._provider_batch, []
        return states

    def provider_writes_failed(self, states: list[ProviderState], now: float) -> None:
        self.breakers.put_back(states)
        self.writes.flush_within(FLUSH_INTERVAL, now)

    def breaker_states(self) -> dict[str, BreakerState]:
        return self.breakers.states()

    def next_deadline(self) -> float | None:
        deadlines = [at for at in (self.heap.next_deadline(), self.writes.next_deadline()) if at is not None]
        return min(deadlines) if deadlines else None

    # -- time -------------------------------------------------------------------------------------

    def handle_timer(self, now: float) -> None:
        """Everything due by `now`: line attempts, retransmissions and Timer F, keep-alives, nonce
        waits, pacing wake-ups, the store batch."""
        if self.writes.is_due(now):
            self._flush_due = True
        for entry in self.heap.due(now):
            self._fire(entry, now)
        self._pump(now)

    def _fire(self, entry: object, now: float) -> None:
        if isinstance(entry, LineRegistration):
            if self.lines.get(entry.line_id) is entry:
                self._line_due(entry, now)
        elif isinstance(entry, Txn):
            if self.in_flight.get(entry.branch) is not entry:
                return  # the line was forgotten: its transaction is not retransmitted
            entry.txn.handle_timer(now)
            self._transmit(entry, now)
            self._drain(entry, now)
        elif isinstance(entry, KeepAlive):
            if self.keepalives.due(entry, self.lines.values(), now):
                self._datagrams.append(Datagram(entry.target, b"", None))
        elif isinstance(entry, Learning):
            for job in self.nonces.expired(entry):
                self._queue(job, now)
        elif isinstance(entry, Breaker) and entry.handle_timer(now, self.wall()):
            self._breaker_changed(entry, now)

    # -- starting attempts ---------------------------------------------------------------------------

    def _line_due(self, machine: LineRegistration, now: float) -> None:
        if not self.may_act():
            self._fenced.add(machine.line_id)
            return
        due = machine.handle_timer(now, self.wall())
        if machine.changed:
            self.writes.mark(machine.line_id, now)
        if not due:
            self._schedule(machine)
            return
        if not machine.is_refresh and self._breaker(machine).hold(machine.line_id):
            machine.next_attempt_at = None  # held until the provider answers again (docs/behaviour.md#reg-pacing)
            machine.breaker_note = Cause.PROVIDER_DOWN
            self._schedule(machine)  # a live binding still ends on time (docs/behaviour.md#reg-status)
            return
        generation = machine.begin()
        targets = literal_targets(machine.account.next_hop)
        if targets is not None:
            self._attempt(machine, generation, targets, now)
        else:
            self._queries.append(DnsQuery(machine.account.next_hop, machine, generation))

    def resolved(self, query: DnsQuery, targets: list[Target], now: float) -> None:
        if query.line is not None:
            self._attempt(query.line, query.generation, targets, now)
            self._pump(now)
            return
        allowed = self.targets.allowed(targets)
        if allowed:
            self._unregister(query.account, query.session, allowed[0], now)  # type: ignore[arg-type]

    def resolve_failed(self, query: DnsQuery, reason: str, now: float) -> None:
        if query.line is not None:
            log.debug("line %d: %s does not resolve (%s)", query.line.line_id, query.address.host, reason)
            self._finish(query.line, Outcome(OutcomeKind.DNS_FAIL, 502, DNS_FAIL_TEXT), query.generation, now)

    def _attempt(self, machine: LineRegistration, generation: int, targets: list[Target], now: float) -> None:
        if generation != machine.generation or self.lines.get(machine.line_id) is not machine:
            return
        allowed = self.targets.allowed(self.targets.order(targets, machine.sticky, now))
        if not allowed:
            outcome = Outcome(OutcomeKind.FORBIDDEN_TARGET, 403, refusal_text(targets[0].address))
            self._finish(machine, outcome, generation, now)
            return
        attempt = RegisterAttempt(machine.account, machine.session, allowed, local=self.local, rng=self.rng)
        self._queue(Job(machine, attempt, generation, machine.account.next_hop.host, machine.is_refresh), now)

    def _unregister(self, account: Account, session: Session, sticky: Target | None, now: float) -> None:
        """docs/behaviour.md#reg-lifecycle: Expires 0 for our Contact only (never `*`), ≤ 1 challenge, no retries."""
        if sticky is None:
            targets = literal_targets(account.next_hop)
            if targets is None:
                self._queries.append(DnsQuery(account.next_hop, None, account=account, session=session))
                return
            sticky = targets[0]
        attempt = RegisterAttempt(account, session, [sticky], local=self.local, rng=self.rng, unregister=True)
        self._queue(Job(None, attempt, 0, account.next_hop.host, False), now)

    # -- pacing and sending ------------------------------------------------------------------------------

    def _queue(self, job: Job, now: float) -> None:
        line = job.line
        if line is not None:
            contact = job.attempt.next_contact()
            if self.writes.must_park(job, contact):
                self.writes.park(job, contact, now)
                return
            if job.first_without_nonce() and not job.waited and self.nonces.wait_for_nonce(job, now):
                return
        self.queue.add(job)
        self._pump(now)

    def _pump(self, now: float) -> None:
        """docs/behaviour.md#reg-pacing: send what the pacing admits; wake when tokens are back for what still waits."""
        if not self.may_act():
            return  # fence_lifted() pumps again
        for job in self.queue.admitted(now):
            self._send(job, now)
        wake_at = self.queue.wake_at(now)
        if wake_at is not None:
            wake = Wake(wake_at)
            self.heap.push(wake.at, wake)

    def _send(self, job: Job, now: float) -> None:
        line = job.line
        if not job.is_current(self.lines):
            self.pacer.done(job.host)  # the line changed or went while this waited
            return
        if line is not None and job.first_without_nonce():
            job.borrowed = self.nonces.borrow(line)
        item = job.attempt.next_request(now)
        if item is None:
            self.pacer.done(job.host)
            return
        target, request = item
        if line is not None:
            self._reserve(line, now)
            line.sending(self.wall())
            if line.changed:
                self.writes.mark(line.line_id, now)
        try:
            data = serialise(request)
        except HeaderInjection as error:
            self.pacer.done(job.host)
            if line is not None:
                self._finish(
                    line, Outcome(OutcomeKind.REJECTED, 400, f"Line data refused: {error}"), job.generation, now
                )
            return
        record = Txn(
            ClientTransaction(data, reliable=target.transport != "udp", now=now, timers=self.timers),
            job,
            target,
            job.attempt.branch,
        )
        self.in_flight.add(record)
        self._transmit(record, now)
        self.heap.push(record.next_deadline(), record)

    def _transmit(self, record: Txn, now: float) -> None:
        line, target = record.job.line, record.target
        for datagram in record.txn.datagrams_to_send(now):
            self._datagrams.append(Datagram(target, datagram, record.branch))
            if line is not None:  # docs/behaviour.md#line-trace: as sent, retransmissions too
                remote = (target.address, target.port)
                entry = (self.wall(), True, target.transport, self.local(target.transport), remote, datagram)
                self.trace.record(line.line_id, record.branch, entry)

    def transport_failed(self, branch: str, error: TransportError, now: float) -> None:
        """The transport could not send a datagram of this transaction."""
        record = self.in_flight.get(branch)
        if record is not None:
            record.failure = error.kind
            record.txn.transport_failed(error.detail, now)
            self._drain(record, now)

    # -- what comes back ------------------------------------------------------------------------------

    def receive(self, response: Response, source: Source | None, now: float) -> None:
        """A response from the transport, to the transaction its top Via's branch names (§17.1.3)."""
        record = self.in_flight.match(response, self.stats)
        if record is not None:
            if record.job.line is not None:
                self._traced(record, response, source)
            record.txn.receive(response, now)
            self._drain(record, now)

    def _traced(self, record: Txn, response: Response, source: Source | None) -> None:
        """docs/behaviour.md#line-trace: the response as it came, with its request's transaction."""
        target = record.target
        if source is None:  # a response handed in without its transport (tests, benches)
            local, remote = self.local(target.transport), (target.address, target.port)
        else:
            local, remote = source.local, (source.address, source.port)
        entry = (self.wall(), False, target.transport, local, remote, response.wire)
        self.trace.record(record.job.line.line_id, record.branch, entry)  # type: ignore[union-attr]

    def _drain(self, record: Txn, now: float) -> None:
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
        if record.branch in self.in_flight:
            self.heap.push(record.next_deadline(), record)
        else:
            self._pump(now)  # a pacing slot came free

    def _end(self, record: Txn) -> None:
        if self.in_flight.end(record):
            self.pacer.done(record.job.host)

    def _advance(self, job: Job, now: float) -> None:
        attempt = job.attempt
        self.targets.penalise(attempt.penalties, now)
        attempt.penalties.clear()
        if attempt.outcome is not None:
            if job.line is not None:
                if attempt.outcome.kind is OutcomeKind.OK:
                    self.nonces.share(job, now)
                for held in self.nonces.ended(job):
                    self._queue(held, now)
                self._finish(job.line, attempt.outcome, job.generation, now)
            else:
                log.debug("un-REGISTER ended with %d %s", attempt.outcome.code, attempt.outcome.message)
        elif attempt.waiting:
            self._queue(job, now)

    def _finish(self, machine: LineRegistration, outcome: Outcome, generation: int, now: float) -> None:
        if self.lines.get(machine.line_id) is not machine:
            return
        was_registered = machine.status.result is StatusResult.SUCCESS
        machine.finish(outcome, generation, now, self.wall())
        if outcome.kind is OutcomeKind.OK:
            if not was_registered and machine.status.result is StatusResult.SUCCESS:
                self.last_success_at = machine.status.updated_at
            self.keepalives.registered(machine, now)
        self._tell_breaker(machine, outcome, now)
        self.writes.mark(machine.line_id, now)
        self._schedule(machine)

    # -- the providers' breakers (docs/behaviour.md#reg-pacing) -------------------------------------------

    def _breaker(self, machine: LineRegistration) -> Breaker:
        return self.breakers.for_provider(machine.account.hop_name, self.wall())

    def _tell_breaker(self, machine: LineRegistration, outcome: Outcome, now: float) -> None:
        if outcome.kind in _NEUTRAL_KINDS:
            return
        breaker = self._breaker(machine)
        before = breaker.state
        if outcome.kind in _DOWN_KINDS or (outcome.kind is OutcomeKind.SERVER and outcome.code == 503):
            breaker.failed(machine.line_id, now, self.wall())
        else:
            for line_id in breaker.answered(machine.line_id, now, self.wall()):
                self._release(line_id, now)
        if breaker.state is not before:
            self._breaker_changed(breaker, now)

    def _breaker_changed(self, breaker: Breaker, now: float) -> None:
        """Logged, stored with the next batch (docs/behaviour.md#providers), and woken to close after a release."""
        log.info("provider %s: breaker %s", breaker.provider, breaker.state.value, extra={"provider": breaker.provider})
        self.breakers.changed(breaker)
        self.writes.flush_within(FLUSH_INTERVAL, now)
        self.heap.push(breaker.next_deadline(), breaker)

    def _release(self, line_id: int, now: float) -> None:
        """docs/behaviour.md#reg-pacing: held lines go again, spread over the release spread, once the provider answered."""
        machine = self.lines.get(line_id)
        if machine is not None and not machine.attempting and machine.next_attempt_at is None:
            machine.next_attempt_at = now + self.rng.uniform(0, self.breakers.release_spread)
            machine.breaker_note = Cause.PROVIDER_RECOVERED  # docs/behaviour.md#line-history
            self._schedule(machine)

    # -- flows (docs/behaviour.md#reg-keepalive) ---------------------------------------------------------------------------------------

    def flow_lost(self, key: FlowKey, now: float) -> None:
        """A TCP/TLS flow closed or went silent: its lines re-register on a new flow after 0–2 s."""
        lost = (key.transport, key.address, key.port)
        for branch, record in list(self.in_flight.items()):
            if (record.target.transport, record.target.address, record.target.port) == lost:
                self.transport_failed(branch, TransportError("transport", "Connection reset"), now)
        for machine in self.lines.values():
            sticky = machine.sticky
            if (
                sticky is not None
                and (sticky.transport, sticky.address, sticky.port) == lost
                and not machine.attempting
            ):
                machine.next_attempt_at = now + self.rng.uniform(0, FLOW_RECOVERY_JITTER)
                self._schedule(machine)

    # -- the store ----------------------------------------------------------------------------------------

    def writes_stored(self, updates: list[RegistrationUpdate], now: float) -> None:
        """A batch from store_writes() is in the store: REGISTERs that waited for it go."""
        for job in self.writes.stored(updates, self.lines):
            self._queue(job, now)

    def writes_failed(self, updates: list[RegistrationUpdate], now: float) -> None:
        """A batch was not written: its lines are written again with the next one."""
        self.writes.failed(updates, self.lines, now)
