"""Portals' lines versions read from PostgreSQL for the lines a process keeps (store/postgres.py).

A read wants a version read by a statement that begins after the read was asked for: then every
change committed before it (through any process) is counted, which is what lets a kept list be
served without a notification having to arrive first. Reads that arrive together share one
statement: one runs at a time, on a connection of its own on the event loop (no thread, no
transaction, a prepared statement), and those asked while it runs wait for the next one, which
reads every portal they want at once. At 64 concurrent requests that is one round trip for many,
where a transaction of its own per request costs three round trips and a thread hop.

While the connection is down a read gets None at once (the caller reads through the pool, which
fails as the store does); the connection is made again after RECONNECT_DELAY.
"""

from __future__ import annotations

import asyncio
import logging

import psycopg

log = logging.getLogger("sipline.store")

_VERSIONS = "SELECT portal_id, version FROM lines_version WHERE portal_id = ANY(%s)"
TIMEOUT = 5.0  # seconds a version read may take before the connection is given up
RECONNECT_DELAY = 0.5


class LinesVersions:
    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._wanted: dict[int, list[asyncio.Future[int | None]]] = {}
        self._asked = asyncio.Event()
        self._up = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._serve())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def version(self, portal_id: int) -> int | None:
        """The portal's lines_version as of a statement begun after this call, None when it cannot be
        read now (no connection, no such portal)."""
        if not self._up:
            return None
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._wanted.setdefault(portal_id, []).append(future)
        self._asked.set()
        return await future

    async def _serve(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, application_name="sipline lines versions"
                ) as conn:
                    self._up = True
                    while True:
                        await self._asked.wait()
                        self._asked.clear()
                        wanted, self._wanted = self._wanted, {}
                        if not wanted:
                            continue
                        try:
                            cursor = await asyncio.wait_for(conn.execute(_VERSIONS, (list(wanted),)), TIMEOUT)
                            found: dict[int, int] = dict(await cursor.fetchall())
                        except BaseException:
                            _answer(wanted, {})
                            raise
                        _answer(wanted, found)
            except (psycopg.Error, OSError, TimeoutError) as error:
                if self._up:
                    log.warning(
                        "lines versions unreadable (%s): reading lines through", str(error).strip() or "timeout"
                    )
                self._up = False
                _answer(self._wanted, {})
                self._wanted = {}
                await asyncio.sleep(RECONNECT_DELAY)


def _answer(wanted: dict[int, list[asyncio.Future[int | None]]], found: dict[int, int]) -> None:
    for portal_id, futures in wanted.items():
        for future in futures:
            if not future.done():
                future.set_result(found.get(portal_id))
