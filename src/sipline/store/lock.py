"""Who uses a store: every sipline process holds a shared lock on it for as long as it has it open;
`rotate-key` needs the lock alone, since a process left holding the old key could open nothing.

- SQLite: flock(2) on `<database file>-lock` beside the database (the kernel drops it when the
  process ends, even by SIGKILL). Not the database file itself: SQLite's own POSIX locks on it
  are released when any other descriptor of the file in the process is closed.
- PostgreSQL: a session-level advisory lock (shared or exclusive) on a connection of its own,
  which the server drops with the session. A serving process takes it again on its LISTEN
  connection at each reconnect (postgres.py), and ends if a rotation got in while it was cut off.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import LiteralString, Protocol

import psycopg

from sipline.files import PRIVATE_FILE

log = logging.getLogger("sipline.store")

USERS_LOCK = 0x5_1911F  # advisory lock key (the migration lock is 0x5_1911E)
LOCK_SUFFIX = "-lock"
_WAITING = "the store is being re-keyed (sipline rotate-key): waiting for it to finish"
_IN_USE = "another sipline process uses the store (serve or an operator command): stop them all first"


class StoreBusy(Exception):
    """Another sipline process holds the store (rotate-key while a server runs)."""


class StoreLock(Protocol):
    def release(self) -> None: ...


class NoLock:
    """No hold: a store opened outside app.open_database (tests), or an in-memory SQLite one that
    no other process can see."""

    def release(self) -> None:
        pass


class FileLock:
    def __init__(self, path: Path, exclusive: bool) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        try:
            _flock(self._fd, exclusive)
        except BaseException:
            os.close(self._fd)
            raise

    def release(self) -> None:
        os.close(self._fd)


class AdvisoryLock:
    def __init__(self, conninfo: str, exclusive: bool) -> None:
        self._conn = psycopg.connect(conninfo, autocommit=True, application_name="sipline store lock")
        try:
            self._take(exclusive)
        except BaseException:
            self._conn.close()
            raise

    def _take(self, exclusive: bool) -> None:
        if exclusive:
            if not self._granted("SELECT pg_try_advisory_lock(%s)"):
                raise StoreBusy(_IN_USE)
            return
        if not self._granted("SELECT pg_try_advisory_lock_shared(%s)"):
            log.warning(_WAITING)
            self._conn.execute("SELECT pg_advisory_lock_shared(%s)", (USERS_LOCK,))

    def _granted(self, try_lock: LiteralString) -> bool:
        """Whether the pg_try_advisory_lock* query got the lock."""
        row = self._conn.execute(try_lock, (USERS_LOCK,)).fetchone()
        return row is not None and bool(row[0])

    def release(self) -> None:
        self._conn.close()


def _flock(fd: int, exclusive: bool) -> None:
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        if exclusive:
            raise StoreBusy(_IN_USE) from None
    log.warning(_WAITING)
    fcntl.flock(fd, fcntl.LOCK_SH)
