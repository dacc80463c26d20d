"""Which `sip` worker registers which cloud line, when many share one PostgreSQL (docs/behaviour.md#scale-leases).

Every line is registered by exactly one live worker, decided in the store: a line
belongs to `registration.lease_owner`, and that lease holds while the owner's
heartbeat (`sip_worker.heartbeat_at`, in the database's clock) is younger than
lease_time. Renewing all of a worker's leases is therefore one row, however many
lines it holds. Each worker runs a lease round every lease_time / 3 (store/registrations_sql.py
lease_round): heartbeat, take lines that are free or whose owner's heartbeat is
stale up to its share (ceil(lines / live workers)), give up what is above its share.
A worker that dies stops beating; one lease period later the others count one
worker less, their share grows, and they take its lines on their next round: all
within two lease periods. The new owner continues the line's Call-ID and CSeq from
the store (the engine reserves CSeqs in blocks there) and retires, in the same
REGISTER, every Contact the store says may be bound: the last registered, and the
last sent (stored before it left), so the registrar never keeps two of ours for
one line.

Fencing, so that two workers never register one line: a worker trusts its leases
only until (start of its last successful round + lease_time - margin) on its own
monotonic clock, which ends before its heartbeat goes stale in the database's.
Past that the engine sends and writes nothing (engine.may_act) until a round
succeeds again; nor while a round runs, so a line given up in it gets no REGISTER
from us once its new owner may have it (a forgotten line's transactions stop
retransmitting). The engine's store writes hold only for lines whose lease it
still has (save_registrations' owner): a write already under way when a line moved
does not overwrite what the new owner stored. A worker whose heartbeat did go
stale (SIGSTOP, a long network cut) finds out on its next round, gives up every
line it still had, and starts over as a new worker: the lines the others took
are forgotten without an un-REGISTER (their new owner refreshes the binding).

Line changes reach the owner through the `sipline_lines` notifications
(line_events.py); every reconcile_interval, and after a lost notification
connection, the worker also compares the lines it holds with the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from sipline.registration.engine import RegistrationEngine
from sipline.store.database import Database, StoreUnavailable

log = logging.getLogger("sipline.leases")

MARGIN = 0.1  # of lease_time: how much earlier than the store a worker stops trusting its leases
MAX_MOVES = 500  # lines a worker gives up per round when above its share (rebalancing, not a storm)


@dataclass(frozen=True)
class LeaseSettings:
    lease_time: float = 10.0  # seconds
    reconcile_interval: float = 30.0  # seconds between full comparisons with the store


def worker_name() -> str:
    return f"{socket.gethostname()}-{secrets.token_hex(4)}"[:64]


class LeaseKeeper:
    def __init__(
        self,
        db: Database,
        engine: RegistrationEngine,
        settings: LeaseSettings = LeaseSettings(),
        *,
        worker: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.engine = engine
        self.settings = settings
        self.worker = worker or worker_name()
        self.clock = clock
        self.held: set[int] = set()
        self.workers = 0
        self._valid_until = float("-inf")
        self._in_round = False
        self._poked = asyncio.Event()
        self._reconcile_at = float("inf")
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def valid(self) -> bool:
        """Whether the engine may send and write: the leases are live, and no round is deciding
        which lines change hands (a line given up must get nothing from us once its new owner may
        have it)."""
        return not self._in_round and self.clock() < self._valid_until

    def poke(self) -> None:
        """Run a round now (a line was added: it should be registered within a second)."""
        self._poked.set()

    def reconcile_soon(self) -> None:
        self._reconcile_at = self.clock()

    async def start(self) -> None:
        """Announce this worker first and take lines one round later: workers started together see
        each other before taking their shares, instead of the first taking all and giving back."""
        self.engine.may_act = self.valid
        self.engine.owner = self.worker
        self._reconcile_at = self.clock() + self.settings.reconcile_interval
        await self.round(acquire=False)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Give the leases back, so the other workers take the lines at once."""
        if self._task is not None:
            self._task.cancel()
        self._valid_until = float("-inf")
        with contextlib.suppress(StoreUnavailable):  # then they run out by themselves
            await self.db.write(lambda repo: repo.release_leases(self.worker), touches=())

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poked.wait(), timeout=self.settings.lease_time / 3)
            self._poked.clear()
            try:
                await self.round()
            except Exception:
                log.exception("lease round failed")

    async def round(self, acquire: bool = True) -> None:
        began = self.clock()
        self._in_round = True
        try:
            found = await self.db.write(
                lambda repo: repo.lease_round(self.worker, self.settings.lease_time, MAX_MOVES, acquire), touches=()
            )
            ours = set(found.held) | set(found.acquired)
            lost = [line_id for line_id in self.engine.lines if line_id not in ours]
            for line_id in lost:
                self.engine.forget(line_id, unregister=False)
        except StoreUnavailable as error:
            self._in_round = False
            if not self._failing:
                log.warning(
                    "lease round failed (%s); %s",
                    error,
                    "registrations pause when the leases run out" if self.valid() else "paused",
                )
                self._failing = True
            if self.valid():
                self.engine.fence_lifted()  # what waited for this round goes while the leases last
            return
        finally:
            self._in_round = False  # also when the round failed otherwise (logged by _run)
        if self._failing:
            log.info("lease rounds work again")
            self._failing = False
        if lost:
            log.info(
                "worker %s no longer holds %d lines (%d given up for balance)",
                self.worker,
                len(lost),
                len(found.released),
            )
        self.held, self.workers = ours, found.workers
        self._valid_until = began + self.settings.lease_time * (1 - MARGIN)
        missing = [line_id for line_id in ours if line_id not in self.engine.lines]
        if missing:
            await self.engine.adopt(missing)
            # adopt() skips lines the engine cannot use (a SERVER it refuses): they stay ours, unregistered
        self.engine.fence_lifted()
        if self.clock() >= self._reconcile_at:
            self._reconcile_at = self.clock() + self.settings.reconcile_interval
            held = set(self.held)
            rows = await self.db.read(lambda repo: repo.cloud_registrations(sorted(held)))
            self.engine.reconcile(rows, held)
