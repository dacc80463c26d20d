"""The store as the rest of sipline sees it: repository work run in transactions, hot reads cached.

Rules are plain functions of a repository (sql.py); `read` and `write` run one in a
transaction and commit before returning, so an answer is never sent for a write that
is not on disk. Two engines sit behind this one interface, each in a module of its own
with everything that differs between them:

- sqlite.py: the embedded default, one process (plus the `sipline` CLI);
- postgres.py: many processes on many hosts, which learn of each other's writes
  through LISTEN/NOTIFY.

`cached` serves hot reads (webhook and token lookups, portals, office users) from
memory until the data changes; `write(touches=...)` names the cached topics (the first
element of a cache key) a write can change, None for all.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Protocol, TypeVar

import sqlalchemy as sa

from sipline.store.crypto import SecretBox
from sipline.store.lock import StoreLock
from sipline.store.repository import Repository

T = TypeVar("T")

DB_FILE = "sipline.db"
MAX_CACHED = 100_000  # entries; past it the cache starts over (keys can come from the network)
MISSING = object()  # recall(): nothing cached under the key


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / DB_FILE}"


class StoreUnavailable(Exception):
    """The database cannot be reached right now (a PostgreSQL restart, a network cut)."""


class Cache:
    """Cached read results by key; a key's first element (when it is a tuple) is its topic.

    Entries are held per topic, so forgetting one topic costs what that topic holds, not
    what the whole cache holds (a registrar keeps an entry for each of thousands of lines).
    """

    def __init__(self) -> None:
        self.topics: dict[object, dict[Hashable, object]] = {}
        self.size = 0

    def get(self, key: Hashable) -> object:
        entries = self.topics.get(_topic(key))
        return MISSING if entries is None else entries.get(key, MISSING)

    def put(self, key: Hashable, value: object) -> None:
        topic = _topic(key)
        entries = self.topics.get(topic)
        if entries is None or key not in entries:
            if self.size >= MAX_CACHED:
                self.forget(None)
            entries = self.topics.setdefault(topic, {})
            self.size += 1
        entries[key] = value

    def forget(self, touches: tuple[str, ...] | None) -> None:
        if touches is None:
            self.topics.clear()
            self.size = 0
            return
        for topic in touches:
            self.size -= len(self.topics.pop(topic, ()))


def _topic(key: Hashable) -> object:
    return key[0] if isinstance(key, tuple) else None


class Peers(Protocol):
    """The other sipline processes of a shared store, told through it: a notification reaches
    every process subscribed to its channel once the sender's transaction commits."""

    def subscribe(self, channel: str, callback: Callable[[str], None]) -> None:
        """Call `callback(payload)` for each notification on `channel` (subscribe before Database.start)."""

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        """Called when notifications flow again after a cut: those sent in between may be lost."""

    async def notify(self, channel: str, payload: str) -> None:
        """Raises: StoreUnavailable."""


class Database(Protocol):
    """What every engine offers (see the module docstring)."""

    box: SecretBox  # replaced only while no transaction runs (opening: app.open_database)
    engine: sa.Engine
    lock: StoreLock  # this process's hold on the store (store/lock.py), released by close()
    # Other sipline processes, on any host, write to the same store and hear its notifications
    # (PostgreSQL); None: this process and the `sipline` CLI are alone with it (SQLite).
    peers: Peers | None

    async def read(self, work: Callable[[Repository], T]) -> T: ...

    async def write(self, work: Callable[[Repository], T], touches: tuple[str, ...] | None = None) -> T: ...

    async def cached(self, key: Hashable, work: Callable[[Repository], T]) -> T:
        """`work`'s result, reused until the database changes. Must not be mutated by callers."""

    def recall(self, key: Hashable) -> object:
        """What `cached` holds for `key` and is still good, else MISSING; never waits."""

    def keep(self, key: Hashable, value: object) -> None:
        """Remember what this process just committed under `key`, for `recall`, where no other
        process writes the same rows (a no-op on a shared store)."""

    def migrate(self) -> None: ...

    def check_key(self) -> bool:
        """True when a stored secret opened with the key, False when none is stored.

        Raises: KeyMaterialError when the key does not open the secrets already stored."""

    def sync(self) -> None:
        """Make every commit so far survive a power loss too, not only a process kill."""

    async def ping(self) -> None:
        """Raises: StoreUnavailable."""

    async def start(self) -> None:
        """Begin following other processes' writes (a no-op where there are none)."""

    def close(self) -> None: ...


def check_url(text: str) -> str:
    """`sqlite:///FILE` or `postgresql://…`, as open_store takes it.

    Raises: ValueError saying what is wrong (without the URL, which may hold a password)."""
    try:
        url = sa.engine.make_url(text)
    except (sa.exc.ArgumentError, ValueError):
        raise ValueError("not a database URL (sqlite:///FILE or postgresql://…)") from None
    if url.get_backend_name() not in ("sqlite", "postgresql") or url.drivername not in (
        "sqlite",
        "postgresql",
        "postgres",
        "postgresql+psycopg",
    ):
        raise ValueError(f"{url.drivername!r} is not sqlite or postgresql")
    if url.get_backend_name() == "sqlite" and not url.database:
        raise ValueError("a SQLite URL names a file: sqlite:///path/to/sipline.db")
    return text


def shared_by_processes(url: str) -> bool:
    """Whether sipline processes on many hosts can share the store `url` names (`--role`, `--workers`):
    the `peers` its Database will have."""
    return not url.lower().startswith("sqlite")


def holds_store(url: str) -> bool:
    """Whether `url` names a store that sipline made (its schema is there), found without creating
    anything: operator commands act on a store and never make one.

    Raises: sqlite3.OperationalError or psycopg.OperationalError when the database cannot be read."""
    scheme = url.partition(":")[0].lower()
    if scheme == "sqlite":
        from sipline.store.sqlite import holds_sqlite_store

        return holds_sqlite_store(url)
    from sipline.store.postgres import holds_postgres_store

    return holds_postgres_store(url)


def open_store(url: str, box: SecretBox) -> Database:
    """The engine the URL names: `sqlite:///FILE` or `postgresql://…`. Raises: ValueError."""
    scheme = url.partition(":")[0].lower()
    if scheme == "sqlite":
        from sipline.store.sqlite import SqliteDatabase

        return SqliteDatabase(url, box)
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        from sipline.store.postgres import PostgresDatabase

        return PostgresDatabase(url, box)
    raise ValueError(f"unsupported database URL scheme {scheme!r}: use sqlite:/// or postgresql://")
