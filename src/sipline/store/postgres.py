"""The shared engine: PostgreSQL, for many sipline processes on many hosts.

Repository work is the same synchronous SQLAlchemy Core as on SQLite, run on a
small pool of threads with one pooled connection each, so the event loop never
waits on the network. Transactions are READ COMMITTED; rules that must not race
lock what they depend on (a portal row FOR UPDATE, office lines FOR UPDATE, an
advisory lock for bootstrap), and a transaction that loses a deadlock or a
serialisation check is run again (the work functions have no effects outside
the transaction).

Other processes' writes: a write that touches cached topics (store/topics.py: those it
names and those its repository adds) sends `NOTIFY sipline_cache, '<topics>'` in its
transaction, so the notification leaves exactly when the data is committed (a portal's
lines are not kept that way, see below). One LISTEN connection per process receives
them and forgets those cache entries. While that connection is down nothing is
served from the cache (every read goes to the database), and on reconnect the
whole cache is dropped, since notifications may have been missed. The same
connection carries other channels (line changes for the SIP workers), and holds the
store lock again after a cut (store/lock.py).

A portal's lines (VERSIONED: voximplant.sip.get's list, secrets opened) must be seen by the next call
to any process once a change is acknowledged, which a notification, arriving some time after the
commit, cannot promise. They are kept by version instead: every change sip.get shows of a portal's
lines (add, update, delete, a batch of registration outcomes, the portal's INCOMING_SERVER) bumps the
portal's row in `lines_version` in its own transaction (store/sql_base.py), once per statement, not per
line. A call reads the version first (lines_versions.py: one round trip, on a connection of its own,
shared by the calls waiting at that moment) and serves the kept list when it was read at that version;
otherwise it reads the lines (and opens their secrets) once for every call at that version. Reading the
version before the lines keeps an entry never older than its version. Measured (docs/benchmarks.md,
issue 21): sip.get of 50 lines with 2 api processes went from 0.09 to 0.76 of the embedded process.

A lost connection (PostgreSQL restarting, a network cut) fails only the
transactions that were using it (StoreUnavailable); the pool checks connections
before use, so the next transaction reconnects without a restart.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import psycopg
import sqlalchemy as sa

from sipline.store.crypto import KeyMaterialError, SecretBox
from sipline.store.database import MISSING, Cache, Database, Peers, StoreUnavailable
from sipline.store.lines_versions import LinesVersions
from sipline.store.lock import USERS_LOCK, NoLock, StoreLock
from sipline.store.migrate import upgrade
from sipline.store.repository import Repository
from sipline.store.sql import SqlRepository
from sipline.store.topics import LINES
from sipline.store.urls import libpq_url

T = TypeVar("T")
log = logging.getLogger("sipline.store")

POOL_SIZE = 8  # threads and connections per process
CACHE_CHANNEL = "sipline_cache"
MAX_ATTEMPTS = 5  # a transaction that lost a deadlock or serialisation check runs again
_RETRYABLE = {"40001", "40P01"}  # serialization_failure, deadlock_detected
RECONNECT_DELAY = 0.5  # seconds between LISTEN reconnection attempts
_MIGRATION_LOCK = 0x5_1911E  # advisory lock key: one process migrates at a time
_NOTIFY = sa.text("SELECT pg_notify(:channel, :payload)")
# Kept by version, not by notification: a client that adds a line through one api process and lists
# through another right after must see it, without waiting for a notification (auth lookups may lag by
# milliseconds). Keys are (topic, portal id, ...); see the module docstring.
VERSIONED = frozenset({LINES})


def _retryable(error: BaseException | None) -> bool:
    """A deadlock or serialisation loss, also when psycopg reports it as the pipeline it aborted
    (executemany runs in pipeline mode)."""
    while error is not None:
        if getattr(error, "sqlstate", None) in _RETRYABLE or isinstance(error, psycopg.errors.PipelineAborted):
            return True
        error = error.__cause__ or error.__context__
    return False


def _notified(touches: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """The topics a write tells other processes of: versioned ones keep themselves."""
    return touches if touches is None else tuple(topic for topic in touches if topic not in VERSIONED)


def driver_url(url: str) -> str:
    """SQLAlchemy's URL for psycopg 3, from `postgresql://…` as operators write it."""
    parsed = sa.engine.make_url(url)
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def holds_postgres_store(url: str) -> bool:
    """The database has sipline's schema (Alembic's version table)."""
    with psycopg.connect(libpq_url(url), autocommit=True, application_name="sipline store check") as conn:
        row = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
        return row is not None and bool(row[0])


class PostgresDatabase(Database):
    def __init__(self, url: str, box: SecretBox) -> None:
        self.peers: Peers | None = self
        self.box = box
        self.lock: StoreLock = NoLock()
        self.engine = sa.create_engine(
            driver_url(url), pool_size=POOL_SIZE, max_overflow=0, pool_pre_ping=True, pool_timeout=10
        )
        self._conninfo = libpq_url(url)
        self._threads = ThreadPoolExecutor(POOL_SIZE, thread_name_prefix="sipline-db")
        self._cache = Cache()
        self._versions = LinesVersions(self._conninfo)
        self._loading: dict[Hashable, tuple[int, asyncio.Future[object]]] = {}  # versioned reads under way
        self._generation = 0  # bumped at every invalidation: a read that began before is not cached
        self._listening = False
        self._subscribers: dict[str, list[Callable[[str], None]]] = {}
        self._on_reconnect: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self.on_unavailable: Callable[[], None] = lambda: None

    # -- transactions --------------------------------------------------------------------------

    async def read(self, work: Callable[[Repository], T]) -> T:
        return await self._in_thread(work, ())

    async def write(self, work: Callable[[Repository], T], touches: tuple[str, ...] | None = None) -> T:
        self._forget(touches)
        touched: set[str] = set()
        try:
            return await self._in_thread(work, touches, touched)
        finally:
            self._forget(None if touches is None else (*touches, *touched))

    async def cached(self, key: Hashable, work: Callable[[Repository], T]) -> T:
        if isinstance(key, tuple) and key[0] in VERSIONED:
            return await self._versioned(key, work)  # type: ignore[return-value]
        value = self.recall(key)
        if value is MISSING:
            generation = self._generation
            value = await self.read(work)
            if self._listening and generation == self._generation:
                self._cache.put(key, value)
        return value  # type: ignore[return-value]

    def recall(self, key: Hashable) -> object:
        if not self._listening or (isinstance(key, tuple) and key[0] in VERSIONED):
            return MISSING
        return self._cache.get(key)

    async def _versioned(self, key: tuple, work: Callable[[Repository], object]) -> object:
        """What `work` read at the portal's current lines_version: kept with the version it was read at,
        and read again once the version moved. The version is read before the lines, so what is kept
        is never older than its version says; reads of a key at one version share one load."""
        version = await self._versions.version(key[1])
        if version is None:
            return await self.read(work)
        kept = self._cache.get(key)
        if kept is not MISSING and kept[0] == version:  # type: ignore[index]
            return kept[1]  # type: ignore[index]
        loading = self._loading.get(key)
        if loading is not None and loading[0] == version:
            await asyncio.wait((loading[1],))
            # a failed load is cancelled: each of its waiters then reads (and fails) on its own
            return loading[1].result() if not loading[1].cancelled() else await self.read(work)
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._loading[key] = (version, future)
        try:
            value = await self.read(work)
        except BaseException:
            future.cancel()
            raise
        finally:
            if self._loading.get(key) == (version, future):
                del self._loading[key]
        future.set_result(value)
        kept = self._cache.get(key)
        if kept is MISSING or kept[0] < version:  # type: ignore[index]
            self._cache.put(key, (version, value))
        return value

    def keep(self, key: Hashable, value: object) -> None:
        """Other workers write the same rows (a PBX's REGISTERs may reach any of them): nothing is kept."""

    async def _in_thread(
        self, work: Callable[[Repository], T], touches: tuple[str, ...] | None, touched: set[str] | None = None
    ) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._threads, self._transaction, work, touches, touched
        )

    def _transaction(
        self, work: Callable[[Repository], T], touches: tuple[str, ...] | None, touched: set[str] | None = None
    ) -> T:
        """`touched` receives the topics the repository says it changed (Repository.touched), which
        are NOTIFYed with `touches`."""
        for attempt in itertools.count(1):
            try:
                with self.engine.begin() as conn:
                    repo = SqlRepository(conn, self.box)
                    result = work(repo)
                    if touched is not None:
                        touched |= repo.touched
                    notified = _notified(None if touches is None else tuple(sorted({*touches, *repo.touched})))
                    if notified is None or notified:
                        conn.execute(
                            _NOTIFY, {"channel": CACHE_CHANNEL, "payload": ",".join(notified) if notified else "*"}
                        )
                    return result
            except sa.exc.DBAPIError as error:
                if _retryable(error.orig) and attempt < MAX_ATTEMPTS:
                    continue
                if error.connection_invalidated or isinstance(error, (sa.exc.OperationalError, sa.exc.InterfaceError)):
                    self.on_unavailable()
                    raise StoreUnavailable(str(error.orig).strip()) from None
                raise
            except sa.exc.TimeoutError:
                self.on_unavailable()
                raise StoreUnavailable("no database connection free within the pool timeout") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _forget(self, touches: tuple[str, ...] | None) -> None:
        touches = _notified(touches)
        if touches is None or touches:
            self._generation += 1
            self._cache.forget(touches)

    # -- the rest of the Database interface ----------------------------------------------------

    def migrate(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            upgrade(conn, self.box)
        self._forget(None)

    def check_key(self) -> bool:
        return self._transaction(lambda repo: repo.sample_secret(), ()) is not None

    def sync(self) -> None:
        """Every commit is durable already (synchronous_commit, on by default)."""

    async def ping(self) -> None:
        await self.read(lambda repo: repo.ping())

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._versions.stop()
        self._threads.shutdown(wait=True)
        self.engine.dispose()
        self.lock.release()

    # -- other processes' writes (Peers: LISTEN/NOTIFY) -----------------------------------------

    def subscribe(self, channel: str, callback: Callable[[str], None]) -> None:
        if self._task is not None:
            raise RuntimeError("subscribe before start(): LISTEN covers the channels known then")
        self._subscribers.setdefault(channel, []).append(callback)

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        self._on_reconnect.append(callback)

    async def notify(self, channel: str, payload: str) -> None:
        await self.read(lambda repo: repo.notify(channel, payload))

    async def start(self) -> None:
        await self._versions.start()
        ready = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._listen(ready))
        await asyncio.wait_for(asyncio.shield(ready), timeout=10)

    async def _listen(self, ready: asyncio.Future[None]) -> None:
        channels = [CACHE_CHANNEL, *self._subscribers]
        for round_ in itertools.count():
            try:
                async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
                    for channel in channels:
                        await conn.execute(f"LISTEN {channel}")  # channel names are ours, not input
                    # the store lock again, on a session that is re-made after a cut (store/lock.py)
                    await conn.execute("SELECT pg_advisory_lock_shared(%s)", (USERS_LOCK,))
                    if round_:
                        await self._check_key_kept()
                    self._forget(None)
                    self._listening = True
                    if not ready.done():
                        ready.set_result(None)
                    if round_:
                        log.info("store notifications restored")
                        for callback in self._on_reconnect:
                            callback()
                    async for note in conn.notifies():
                        self._deliver(note.channel, note.payload)
            except (psycopg.Error, OSError, StoreUnavailable) as error:
                if self._listening or not round_:
                    log.warning(
                        "store notifications lost (%s); reading through until they return",
                        str(error).strip() or type(error).__name__,
                    )
                self._listening = False
                self._forget(None)
                await asyncio.sleep(RECONNECT_DELAY)

    async def _check_key_kept(self) -> None:
        """While the connections were cut, `rotate-key` could take the store: this process's key
        would open nothing then, so it ends (its supervisor starts it again with the new key)."""
        try:
            await self.read(lambda repo: repo.sample_secret())
        except KeyMaterialError:
            log.error(
                "the store was re-keyed (sipline rotate-key) while this process was cut off from "
                "it: stopping, to be started again with the new key"
            )
            os.kill(os.getpid(), signal.SIGTERM)

    def _deliver(self, channel: str, payload: str) -> None:
        if channel == CACHE_CHANNEL:
            self._forget(None if payload == "*" else tuple(payload.split(",")))
            return
        for callback in self._subscribers.get(channel, ()):
            try:
                callback(payload)
            except Exception:
                log.exception("handling a %s notification failed", channel)
