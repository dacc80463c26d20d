"""Keeps every cloud line registered: the asyncio runner of the sans-IO core (core.py).

The runner owns what the core must not: the event loop's one timer (armed for
the core's next deadline, never a task or sleep per line), the transport, DNS
lookups (one task each) and the store (reads of lines, batched writes). Every
input goes to the core with `now`; after it, `_service()` carries out what the
core asks, as aioquic's asyncio protocol does with `transmit()`:

    transport ─► receive / transport_failed / flow_lost ─┐
    loop timer ─► handle_timer(now) ─────────────────────┤
    DNS task ─► resolved / resolve_failed ───────────────┼─► core ─► datagrams ─► transport
    store write ─► writes_stored / writes_failed ────────┘        ─► DNS queries ─► tasks
                                                                  ─► store_writes ─► write task
                                                                  ─► next_deadline ─► loop timer
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections.abc import Callable, Coroutine
from typing import Any

from sipline.registration.core import RegistrationCore
from sipline.registration.line import LineRegistration
from sipline.registration.sending import Datagram, DnsQuery
from sipline.registration.settings import EngineSettings
from sipline.sip.message import Response
from sipline.sip.resolve import ResolutionFailed
from sipline.sip.trace import Trace
from sipline.sip.transports.dns import DnsResolver
from sipline.sip.transports.manager import SipTransport, Source
from sipline.sip.transports.stream import FlowKey, TransportError
from sipline.store.database import Database
from sipline.store.records import BreakerState, Line, LineType, ProviderState, Registration, RegistrationUpdate
from sipline.store.repository import Repository
from sipline.store.topics import LINES

log = logging.getLogger("sipline.registration")


class RegistrationEngine:
    def __init__(
        self,
        db: Database,
        transport: SipTransport,
        resolver: DnsResolver,
        settings: EngineSettings = EngineSettings(),
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        trace: Trace | None = None,
    ) -> None:
        self.db = db
        self.transport = transport
        self.resolver = resolver
        self.settings = settings
        self.clock = clock
        self.wall = wall
        # tags, branches, cnonces and jitter; seeded from the OS, fast (os.urandom per call costs 7 % of a burst)
        self.core = RegistrationCore(
            settings,
            now=clock(),
            rng=rng or random.Random(secrets.randbits(256)),
            wall=wall,
            local=transport.local_address,
            permits=transport.gate.permits,
            stats=transport.stats,
            trace=trace,
        )
        self.owner: str | None = None  # the worker whose leases fence the store writes
        self.started_at: float | None = None  # wall clock: when the engine began registering
        self._armed: asyncio.TimerHandle | None = None
        self._armed_at: float | None = None
        self._tasks: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False
        transport.on_flow_lost = self.flow_lost

    @property
    def lines(self) -> dict[int, LineRegistration]:
        return self.core.lines

    @property
    def may_act(self) -> Callable[[], bool]:
        """Lease fencing (registration/leases.py): while this says no, nothing is sent or written."""
        return self.core.may_act

    @may_act.setter
    def may_act(self, check: Callable[[], bool]) -> None:
        self.core.may_act = check

    @property
    def last_success_at(self) -> float | None:
        return self.core.last_success_at

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self, resume: bool = True) -> None:
        """Resume every cloud line from the store, first attempts spread out (docs/behaviour.md#reg-lifecycle, docs/behaviour.md#reg-pacing); without
        `resume` the engine starts empty and lines come through adopt() (leases)."""
        self._loop = asyncio.get_running_loop()
        rows = await self.db.read(lambda repo: repo.cloud_registrations()) if resume else []
        # docs/behaviour.md#providers: breakers start closed; what an earlier run of this process reported is gone
        worker = self.owner or ""
        await self.db.write(lambda repo: repo.clear_provider_states(worker), touches=())
        self.core.resume(rows, self.clock())
        # CSeqs above what the store knew are used from now on: the new reservations land first
        await self._write(self.core.store_writes(everything=True))
        self.started_at = self.wall()
        self.core.schedule_all()
        self._service()
        log.info("registration engine resumed %d cloud lines", len(self.lines))

    async def stop(self) -> None:
        self._stopped = True
        if self._armed is not None:
            self._armed.cancel()
        await self._write(self.core.store_writes(everything=True), self.core.provider_writes())
        for task in list(self._tasks):
            task.cancel()

    # -- inputs, each followed by what the core asks ------------------------------------------------

    def line_added(self, line: Line) -> None:
        if line.type is LineType.CLOUD:
            self._spawn(self._load(line.id))

    async def _load(self, line_id: int) -> None:
        rows = await self.db.read(lambda repo: repo.cloud_registrations([line_id]))
        self.core.add_lines(rows, self.clock())
        self._service()

    def line_changed(self, line: Line, reregister: bool) -> None:
        """SERVER, LOGIN or PASSWORD were set (`reregister`), or only the TITLE."""
        self.core.line_changed(line, reregister, self.clock())
        self._service()

    def line_deleted(self, line: Line) -> None:
        self.forget(line.id, unregister=True)

    def forget(self, line_id: int, *, unregister: bool) -> None:
        """See RegistrationCore.forget."""
        self.core.forget(line_id, self.clock(), unregister=unregister)
        self._service()

    async def adopt(self, line_ids: list[int]) -> None:
        """Take over these lines from the store (Call-ID and CSeq continue), first attempts spread."""
        rows = await self.db.read(lambda repo: repo.cloud_registrations(line_ids))
        self.core.adopt(rows, self.clock())
        self._service()

    def fence_lifted(self) -> None:
        self.core.fence_lifted(self.clock())
        self._service()

    def reconcile(self, rows: list[tuple[Line, Registration]], held: set[int]) -> None:
        self.core.reconcile(rows, held, self.clock())
        self._service()

    def status_counts(self) -> dict[str, int]:
        return self.core.status_counts()

    def breaker_states(self) -> dict[str, BreakerState]:
        return self.core.breaker_states()

    def register_now(self, line: Line) -> None:
        self.register_line_now(line.id)

    def register_line_now(self, line_id: int) -> None:
        """The operator's "register now" (docs/behaviour.md#dashboard), for a line this engine holds."""
        self.core.register_now(line_id, self.clock())
        self._service()

    def flow_lost(self, key: FlowKey) -> None:
        self.core.flow_lost(key, self.clock())
        self._service()

    def on_response(self, response: Response, source: Source) -> None:
        self.core.receive(response, source, self.clock())
        self._service()

    def _transport_failed(self, branch: str, error: TransportError) -> None:
        self.core.transport_failed(branch, error, self.clock())
        self._service()

    def _on_timer(self) -> None:
        self._armed = self._armed_at = None
        self.core.handle_timer(self.clock())
        self._service()

    # -- carrying out what the core asks ----------------------------------------------------------

    def _service(self) -> None:
        for datagram in self.core.datagrams_to_send():
            self._send(datagram)
        for query in self.core.dns_queries():
            self._spawn(self._resolve(query))
        updates = self.core.store_writes()
        states = self.core.provider_writes()
        if updates or states:
            self._spawn(self._write(updates, states))
        self._arm(self.core.next_deadline())

    def _send(self, datagram: Datagram) -> None:
        if datagram.branch is None:
            self.transport.send_keepalive(datagram.target)
            return
        branch = datagram.branch

        def failed(error: TransportError) -> None:  # reported from inside send(): handled after it
            self._running_loop().call_soon(self._transport_failed, branch, error)

        self.transport.send(datagram.target, datagram.data, failed)

    def _arm(self, deadline: float | None) -> None:
        """The one loop timer, for the earliest deadline (moved only when one comes sooner, or
        after it fired)."""
        if self._stopped or deadline is None or (self._armed_at is not None and self._armed_at <= deadline):
            return
        if self._armed is not None:
            self._armed.cancel()
        self._armed_at = deadline
        self._armed = self._running_loop().call_later(max(0.0, deadline - self.clock()), self._on_timer)

    async def _resolve(self, query: DnsQuery) -> None:
        try:
            targets = await self.resolver.resolve(query.address)
        except ResolutionFailed as failure:
            self.core.resolve_failed(query, failure.reason, self.clock())
        else:
            self.core.resolved(query, targets, self.clock())
        self._service()

    async def _write(self, updates: list[RegistrationUpdate], states: list[ProviderState] | None = None) -> None:
        if not (updates or states):
            return

        def work(repo: Repository) -> None:
            repo.save_registrations(updates, self.owner)
            if states:  # docs/behaviour.md#providers
                repo.save_provider_states(states, self.owner or "")

        try:
            await self.db.write(work, touches=(LINES,))
        except Exception as error:  # the store is down, or lost a race it did not retry: try again
            log.warning("registration status not saved, retrying: %s", str(error).splitlines()[0])
            self.core.writes_failed(updates, self.clock())
            if states:
                self.core.provider_writes_failed(states, self.clock())
        else:
            self.core.writes_stored(updates, self.clock())
        self._service()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = self._running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


__all__ = ["RegistrationEngine"]
