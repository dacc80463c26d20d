"""Opening the store: its lock, and the key that opens its secrets (a rotation killed midway is finished here)."""

from __future__ import annotations

import psycopg
import sqlalchemy as sa

from sipline.files import make_private_folder
from sipline.server.settings import ConfigError, Settings
from sipline.store.crypto import KeyMaterialError, SecretBox
from sipline.store.database import Database
from sipline.store.engines import lock_store, open_store
from sipline.store.keys import KeyFiles


def open_database(settings: Settings, *, exclusive: bool = False) -> Database:
    """The store, migrated and opened with the key that opens it (store/keys.py), held under the
    store lock (store/lock.py) until closed: shared, or with `exclusive` alone (`rotate-key`).

    Raises: ConfigError, KeyMaterialError, StoreBusy (exclusive only)."""
    make_private_folder(settings.data_dir)
    try:
        return _open_locked(settings, exclusive)
    except (sa.exc.OperationalError, psycopg.OperationalError) as error:
        raise _unopenable(error) from None


def _open_locked(settings: Settings, exclusive: bool) -> Database:
    try:
        lock = lock_store(settings.store_url, exclusive)
    except OSError as error:  # the SQLite file's folder is missing or not ours
        raise _unopenable(error) from None
    try:
        db = _open_with_key(settings, KeyFiles(settings.data_dir, settings.secret_key))
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


def _unopenable(error: Exception) -> ConfigError:
    reason = (
        f"{error.strerror}: {error.filename}"
        if isinstance(error, OSError) and error.strerror
        else str(getattr(error, "orig", None) or error).strip()
    )
    return ConfigError(f"database-url: cannot open the database ({reason})")
