"""The embedded engine: SQLite, one sipline process (plus the `sipline` CLI).

SQLite is driven directly from the event loop on one
connection: its statements take microseconds, less than a hop to a thread would.
WAL with synchronous=NORMAL keeps every commit across a process kill (SIGKILL);
only a power loss can drop the last commits (sqlite.org/wal.html §"Durability").
Writers take the lock up front (BEGIN IMMEDIATE), so a read-to-write upgrade
can never deadlock against another process such as the `sipline` CLI.

`cached` serves hot reads (webhook lookups, a portal's lines) from memory until
the database changes: our own writes forget the topics they touch (store/topics.py), and `PRAGMA
data_version` tells when another process (the `sipline` CLI) committed. That check
is itself a statement (2-20 µs, a fifth of a cached request's time under load;
the registrar looks up thousands of cached users a second), so it runs at most
once per CHANGE_CHECK_INTERVAL: a commit by another process is seen within 10 ms.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import StaticPool

from sipline.files import PRIVATE_FILE, tighten_file
from sipline.store.crypto import SecretBox
from sipline.store.database import MISSING, Cache, Database, StoreUnavailable
from sipline.store.lock import NoLock, StoreLock
from sipline.store.migrate import upgrade
from sipline.store.repository import Repository
from sipline.store.sql import SqlRepository

T = TypeVar("T")

_BUSY_TIMEOUT_MS = 5000  # how long a writer waits for another process's transaction
CHANGE_CHECK_INTERVAL = 0.01  # seconds between data_version checks (see above)


class SqliteDatabase(Database):
    peers = None  # one sipline process (and the CLI, which follows nothing): no one to tell

    def __init__(self, url: str, box: SecretBox) -> None:
        _private_database_file(url)
        self.engine = _sqlite_engine(url, self)
        self.box = box
        self.lock: StoreLock = NoLock()
        self._begin = "BEGIN"
        self._conn = self.engine.connect()
        raw = self._conn.connection.dbapi_connection
        assert raw is not None  # None only once the connection is invalidated
        self._raw = raw  # the sqlite3 connection, for PRAGMAs outside SQLAlchemy's transactions
        self._cache = Cache()
        self._data_version = self._read_data_version()
        self._checked_at = time.monotonic()
        self.on_unavailable: Callable[[], None] = lambda: None

    async def read(self, work: Callable[[Repository], T]) -> T:
        return self._run(work, "BEGIN")

    async def write(self, work: Callable[[Repository], T], touches: tuple[str, ...] | None = None) -> T:
        """Run `work` in a write transaction. `touches` names the cached topics (the first element
        of a `cached` key) the write can change; None, the default, forgets everything cached."""
        self._cache.forget(touches)
        touched: set[str] = set()
        try:
            return self._run(work, "BEGIN IMMEDIATE", touched)
        finally:
            self._cache.forget(None if touches is None else (*touches, *touched))

    async def cached(self, key: Hashable, work: Callable[[Repository], T]) -> T:
        value = self.recall(key)
        if value is MISSING:
            value = self._run(work, "BEGIN")
            self._cache.put(key, value)
        return value  # type: ignore[return-value]

    def recall(self, key: Hashable) -> object:
        now = time.monotonic()
        if now - self._checked_at >= CHANGE_CHECK_INTERVAL:
            self._checked_at = now
            version = self._read_data_version()
            if version != self._data_version:
                self._cache.forget(None)
                self._data_version = version
        return self._cache.get(key)

    def keep(self, key: Hashable, value: object) -> None:
        self._cache.put(key, value)

    def migrate(self) -> None:
        """Creates or upgrades the schema (Alembic), in one transaction."""
        self._begin = "BEGIN IMMEDIATE"
        with self._conn.begin():
            upgrade(self._conn, self.box)
        self._cache.forget(None)

    def check_key(self) -> bool:
        return self._run(lambda repo: repo.sample_secret(), "BEGIN") is not None

    def sync(self) -> None:
        """synchronous=NORMAL leaves the last commits in a WAL not yet on disk; a checkpoint
        syncs the WAL first."""
        self._raw.execute("PRAGMA wal_checkpoint(FULL)").fetchone()

    async def ping(self) -> None:
        self._begin = "BEGIN"
        try:
            with self._conn.begin():
                self._conn.execute(sa.text("SELECT 1")).scalar_one()
        except sa.exc.DBAPIError as error:
            self.on_unavailable()
            raise StoreUnavailable(str(error.orig)) from None

    async def start(self) -> None:
        """Nothing to follow: `recall` sees other processes' writes by PRAGMA data_version."""

    def close(self) -> None:
        self._conn.close()
        self.engine.dispose()
        self.lock.release()

    def _run(self, work: Callable[[Repository], T], begin: str, touched: set[str] | None = None) -> T:
        """`touched` receives the topics the repository says it changed (Repository.touched)."""
        self._begin = begin
        repo = SqlRepository(self._conn, self.box)
        try:
            with self._conn.begin():
                return work(repo)
        finally:
            if touched is not None:
                touched |= repo.touched

    def _read_data_version(self) -> int:
        return self._raw.execute("PRAGMA data_version").fetchone()[0]

    def begin_statement(self) -> str:
        return self._begin


def holds_sqlite_store(url: str) -> bool:
    """The database file exists and has sipline's schema (Alembic's version table); opened `mode=rw`,
    which never creates the file. A server may be writing it: WAL lets this read alongside."""
    database = sa.engine.make_url(url).database
    if database in (None, "", ":memory:") or not Path(database).is_file():
        return False
    conn = sqlite3.connect(f"{Path(database).absolute().as_uri()}?mode=rw", uri=True, timeout=_BUSY_TIMEOUT_MS / 1000)
    try:
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'")
        return found.fetchone() is not None
    except sqlite3.OperationalError:  # there, but it cannot be read (rights, I/O): the caller says why
        raise
    except sqlite3.DatabaseError:  # not a database at all
        return False
    finally:
        conn.close()


def _private_database_file(url: str) -> None:
    """The database file exists, 0600, before SQLite opens it: SQLite gives its -wal and -shm files
    the database file's mode (files.py). One an older version made readable is tightened, with
    whatever -wal and -shm it left."""
    database = sa.engine.make_url(url).database
    if database in (None, "", ":memory:"):
        return
    path = Path(database)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE))
    for suffix in ("", "-wal", "-shm"):
        tighten_file(Path(f"{path}{suffix}"))


def _sqlite_engine(url: str, db: SqliteDatabase) -> sa.Engine:
    engine = sa.create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})

    # SQLAlchemy's documented recipe for real SQLite transactions under pysqlite:
    # take BEGIN away from the driver and emit our own.
    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA foreign_keys=ON",
            f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}",
        ):
            dbapi_connection.execute(pragma)

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:
        conn.exec_driver_sql(db.begin_statement())

    return engine
