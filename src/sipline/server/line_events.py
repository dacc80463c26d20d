"""Line changes between processes (scale-out): the API publishes them, the SIP workers follow.

Within one process the telephony rules tell the registration engine directly
(telephony/lines.py LineEvents). With a shared store, a line added, changed or
deleted through any `api` process must reach the `sip` worker that holds its
lease: each committed change is published as a PostgreSQL NOTIFY on
`sipline_lines` ("added 12", "changed 12 1", "deleted 12", "registernow 12"), and every `sip`
worker acts on those of lines it holds (an added line: a lease round at once).
A notification lost to a broken connection is caught by the lease keeper's
reconcile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sipline.registration.engine import RegistrationEngine
from sipline.registration.leases import LeaseKeeper
from sipline.sip.grammar import is_digits
from sipline.store.database import Database, Peers, StoreUnavailable
from sipline.store.records import Line, LineType

log = logging.getLogger("sipline.server.line_events")
CHANNEL = "sipline_lines"
KINDS = ("added", "changed", "deleted", "registernow")
Counted = Callable[[str, str], None]  # (direction, kind): server/metrics.py counts each event


class PublishedEvents:
    """LineEvents for a shared store: each change goes out as a notification."""

    def __init__(self, peers: Peers, counted: Counted) -> None:
        self.peers, self.counted = peers, counted
        self._tasks: set[asyncio.Task[None]] = set()

    def line_added(self, line: Line) -> None:
        if line.type is LineType.CLOUD:
            self._publish(f"added {line.id}")

    def line_changed(self, line: Line, reregister: bool) -> None:
        if line.type is LineType.CLOUD and reregister:
            self._publish(f"changed {line.id}")

    def line_deleted(self, line: Line) -> None:
        if line.type is LineType.CLOUD:
            self._publish(f"deleted {line.id}")

    def register_now(self, line: Line) -> None:
        if line.type is LineType.CLOUD:
            self._publish(f"registernow {line.id}")

    def _publish(self, payload: str) -> None:
        task = asyncio.get_running_loop().create_task(self._send(payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, payload: str) -> None:
        kind = payload.partition(" ")[0]
        try:
            await self.peers.notify(CHANNEL, payload)
        except StoreUnavailable as error:
            self.counted("unpublished", kind)
            log.warning("line change not published (%s): the owner's reconcile will find it", error)
        else:
            self.counted("published", kind)


class Follower:
    """A `sip` worker's side: notifications → its engine and lease keeper."""

    def __init__(
        self, db: Database, peers: Peers, engine: RegistrationEngine, keeper: LeaseKeeper, counted: Counted
    ) -> None:
        self.db, self.engine, self.keeper, self.counted = db, engine, keeper, counted
        self._tasks: set[asyncio.Task[None]] = set()
        peers.subscribe(CHANNEL, self.on_notification)
        peers.on_reconnect(keeper.reconcile_soon)

    def on_notification(self, payload: str) -> None:
        kind, _, rest = payload.partition(" ")
        if kind not in KINDS or not is_digits(rest, 18):
            self.counted("received", "malformed")
            log.warning("ignoring a malformed line notification %r", payload[:80])
            return
        self.counted("received", kind)
        line_id = int(rest)
        if kind == "added":
            self.keeper.poke()
        elif kind == "deleted":
            self.engine.forget(line_id, unregister=True)
        elif kind == "registernow" and line_id in self.engine.lines:
            self.engine.register_line_now(line_id)
        elif kind == "changed" and line_id in self.engine.lines:
            task = asyncio.get_running_loop().create_task(self._changed(line_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _changed(self, line_id: int) -> None:
        try:
            rows = await self.db.read(lambda repo: repo.cloud_registrations([line_id]))
        except StoreUnavailable:
            self.keeper.reconcile_soon()
            return
        for line, _ in rows:
            if line.id in self.engine.lines:
                self.engine.line_changed(line, reregister=True)
