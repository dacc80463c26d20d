"""Opening the store: its lock, and the key that opens its secrets (a rotation killed midway is finished here)."""

from __future__ import annotations

import sqlite3

import psycopg
import sqlalchemy as sa

from sipline.files import make_private_folder
from sipline.server.settings import Settings
from sipline.store.crypto import KeyMaterialError, SecretBox
from sipline.store.database import Database
from sipline.store.engines import holds_store, lock_store, open_store
from sipline.store.keys import KeyFiles


class NoStore(Exception):
    """The settings point at no store (a mistyped --data-dir or --database-url), and the command
    is not one that makes it."""


class StoreUnopenable(Exception):
    """The store is there but cannot be opened (no such database server, no rights)."""


def open_database(settings: Settings, *, exclusive: bool = False, create: bool = True) -> Database:
    """The store, migrated and opened with the key that opens it (store/keys.py), held under the
    store lock (store/lock.py) until closed: shared, or with `exclusive` alone (`rotate-key`).
    Only with `create` (`serve`, and the target of `migrate-store`) is a missing store, data dir
    or key made; operator commands act on what a server made.

    Raises: StoreUnopenable, NoStore (not `create`), KeyMaterialError, StoreBusy (exclusive only)."""
    try:
        if not create:
            _require_store(settings)
        make_private_folder(settings.data_dir)
        return _open_locked(settings, exclusive, create)
    except (sa.exc.OperationalError, psycopg.OperationalError, sqlite3.OperationalError) as error:
        raise _unopenable(error) from None


def _require_store(settings: Settings) -> None:
    """Raises: NoStore when the data dir or the store it names is not there."""
    if not settings.data_dir.is_dir():
        raise NoStore(f"no data dir {settings.data_dir}: is --data-dir right? (`sipline serve` makes it)")
    if not holds_store(settings.store_url):
        where = (
            f"the data dir {settings.data_dir}" if not settings.database_url else "the database --database-url names"
        )
        raise NoStore(f"{where} holds no sipline store: is it the right one? (`sipline serve` makes the store)")


def _open_locked(settings: Settings, exclusive: bool, create: bool) -> Database:
    try:
        lock = lock_store(settings.store_url, exclusive)
    except OSError as error:  # the SQLite file's folder is missing or not ours
        raise _unopenable(error) from None
    try:
        db = _open_with_key(settings, KeyFiles(settings.data_dir, settings.secret_key, create=create))
    except BaseException:
        lock.release()
        raise
    db.lock = lock
    return db


def _open_with_key(settings: Settings, keys: KeyFiles) -> Database:
    with keys.locked():
        candidates = keys.candidates()
        try:
            db = open_store(settings.store_url, SecretBox(candidates[0][1]))
        except OSError as error:
            raise _unopenable(error) from None
        try:
            name, proven = _first_key_that_opens(db, candidates)
            if proven:  # a store with no secret tells nothing about the other key files
                keys.settle(name)
        except KeyMaterialError as error:
            db.close()
            raise keys.refusal(error) from None
        except BaseException:
            db.close()
            raise
    return db


def _first_key_that_opens(db: Database, candidates: list[tuple[str, bytes]]) -> tuple[str, bool]:
    """The name of the first candidate key the store opens with (migrating it), which `db` keeps,
    and whether a stored secret proved it. Raises: KeyMaterialError when none does."""
    for name, key in candidates:
        db.box = SecretBox(key)
        try:
            db.migrate()
            return name, db.check_key()
        except KeyMaterialError as error:
            refusal = error
    raise refusal


def _unopenable(error: Exception) -> StoreUnopenable:
    reason = (
        f"{error.strerror}: {error.filename}"
        if isinstance(error, OSError) and error.strerror
        else str(getattr(error, "orig", None) or error).strip()
    )
    return StoreUnopenable(f"database-url: cannot open the database ({reason})")
