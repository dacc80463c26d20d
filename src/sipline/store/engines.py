"""The engine a database URL names, and the lock that keeps a key rotation apart from every other
process on it. The one module that knows both engines' classes (nothing outside store/ does)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from sipline.store.crypto import SecretBox
from sipline.store.database import Database
from sipline.store.lock import LOCK_SUFFIX, AdvisoryLock, FileLock, NoLock, StoreLock
from sipline.store.postgres import PostgresDatabase, holds_postgres_store
from sipline.store.sqlite import SqliteDatabase, holds_sqlite_store
from sipline.store.urls import libpq_url


def open_store(url: str, box: SecretBox) -> Database:
    """The engine the URL names: `sqlite:///FILE` or `postgresql://…`. Raises: ValueError."""
    scheme = url.partition(":")[0].lower()
    if scheme == "sqlite":
        return SqliteDatabase(url, box)
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return PostgresDatabase(url, box)
    raise ValueError(f"unsupported database URL scheme {scheme!r}: use sqlite:/// or postgresql://")


def holds_store(url: str) -> bool:
    """Whether `url` names a store that sipline made (its schema is there), found without creating
    anything: operator commands act on a store and never make one.

    Raises: sqlite3.OperationalError or psycopg.OperationalError when the database cannot be read."""
    if url.partition(":")[0].lower() == "sqlite":
        return holds_sqlite_store(url)
    return holds_postgres_store(url)


def lock_store(url: str, exclusive: bool) -> StoreLock:
    """Shared: waits while a rotation runs. Exclusive: Raises StoreBusy at once when any process
    holds the store."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            return NoLock()
        return FileLock(Path(f"{parsed.database}{LOCK_SUFFIX}"), exclusive)
    return AdvisoryLock(libpq_url(url), exclusive)
