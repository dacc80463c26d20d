"""Where sipline.sip.trace reads a line's SIP messages (docs/behaviour.md#line-trace).

The messages are kept in the memory of the process that does the line's SIP work
(sip/trace.py). Alone with its store, sipline is one process: the API reads that
memory directly (LocalTraces). With a shared store, the line's messages are in a
`sip` worker (a cloud line's lease holder; for an office line, any worker its PBX
registered with), so the API asks them all on demand and nothing is written
while nobody asks:

    API ─ NOTIFY sipline_trace "<line id> <token>" ─► every sip worker (TraceAnswers)
        worker holding messages of the line ─ INSERT line_trace rows (token) ─► store
    API ─ polls the store for the token's rows, ≤ ASK_TIMEOUT ─► reads and deletes them
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable

from sipline.sip.grammar import is_digits
from sipline.sip.trace import Trace, TracedMessage
from sipline.store.database import Database, Peers, StoreUnavailable
from sipline.store.records import TracedRow

log = logging.getLogger("sipline.server.line_traces")
CHANNEL = "sipline_trace"
ASK_TIMEOUT = 1.0  # docs/behaviour.md#line-trace: seconds an API process waits for the workers' rows
POLL_INTERVAL = 0.05  # seconds between its reads of the store meanwhile
STRAGGLERS = 0.1  # seconds it waits, once rows came, for other workers' (an office line's PBXes may use several)
STALE_ROWS = 60.0  # docs/behaviour.md#line-trace: rows older than this were left by a late worker


class LocalTraces:
    """LineTraces of a process that does its own SIP work, alone with its store."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace

    async def messages(self, line_id: int) -> list[TracedMessage]:
        return self.trace.messages(line_id)


class SharedTraces:
    """LineTraces of an API process on a shared store: the `sip` workers are asked through it."""

    def __init__(self, db: Database, peers: Peers, *, wall: Callable[[], float] = time.time) -> None:
        self.db, self.peers, self.wall = db, peers, wall

    async def messages(self, line_id: int) -> list[TracedMessage]:
        """Raises: StoreUnavailable."""
        token = secrets.token_hex(8)
        stale = self.wall() - STALE_ROWS
        await self.db.write(lambda repo: repo.prune_traces(stale), touches=())
        await self.peers.notify(CHANNEL, f"{line_id} {token}")
        rows: list[TracedRow] = []
        loop = asyncio.get_running_loop()
        give_up = loop.time() + ASK_TIMEOUT
        settle: float | None = None
        while loop.time() < (give_up if settle is None else min(settle, give_up)):
            await asyncio.sleep(POLL_INTERVAL)
            taken = await self.db.write(lambda repo: repo.take_trace(token), touches=())
            if taken and settle is None:
                settle = loop.time() + STRAGGLERS
            rows += taken
        rows.sort(key=lambda row: row.at)  # stable: each worker's rows are in order already
        return [TracedMessage(*row) for row in rows]


class TraceAnswers:
    """A `sip` worker's side: a question about a line whose messages it holds → rows in the store."""

    def __init__(self, db: Database, peers: Peers, trace: Trace, *, wall: Callable[[], float] = time.time) -> None:
        self.db, self.trace, self.wall = db, trace, wall
        self._tasks: set[asyncio.Task[None]] = set()
        peers.subscribe(CHANNEL, self.on_notification)

    def on_notification(self, payload: str) -> None:
        line, _, token = payload.partition(" ")
        if not is_digits(line, 18) or not (0 < len(token) <= 32 and token.isalnum()):
            log.warning("ignoring a malformed trace request %r", payload[:80])
            return
        line_id = int(line)
        if line_id not in self.trace:
            return  # nothing to say: another worker holds the line
        rows = [TracedRow(*message) for message in self.trace.messages(line_id)]
        task = asyncio.get_running_loop().create_task(self._answer(token, line_id, rows))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, token: str, line_id: int, rows: list[TracedRow]) -> None:
        now = self.wall()
        try:
            await self.db.write(lambda repo: repo.add_trace(token, line_id, rows, now), touches=())
        except StoreUnavailable as error:
            log.warning("line %d: trace not handed over (%s)", line_id, error)
