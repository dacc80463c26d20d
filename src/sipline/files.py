"""The data dir is its owner's alone: the folders in it 0700, the files 0600.

It holds the secret key, the SQLite store (whose `-wal` and `-shm` files SQLite creates with
the mode of the database file, whatever the umask), TLS private keys and the
URLs `serve` leaves for operator commands. New files are created private (`write_private`,
and the process umask `cli.main` sets); `tighten` brings a data dir an older version left
readable into line at start.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700
PRIVATE_UMASK = 0o077  # what a new file or folder loses: every right of group and others


def write_private(path: Path, data: bytes) -> None:
    """`data` in a new file at `path` (0600), whole or not at all: written and fsynced beside it,
    then renamed over it (POSIX rename(2) is atomic), and the rename made durable."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """Make renames and unlinks in `folder` durable (fsync(2) on the directory)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_private_folder(folder: Path) -> None:
    folder.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
    tighten(folder)


def tighten(folder: Path) -> None:
    """`folder` 0700 and what is in it (recursively) 0600 / 0700; symbolic links are left alone
    (an operator may link a certificate kept elsewhere)."""
    _chmod(folder, PRIVATE_FOLDER)
    for entry in folder.iterdir():
        if entry.is_symlink():
            continue
        if entry.is_dir():
            tighten(entry)
        elif entry.is_file():
            _chmod(entry, PRIVATE_FILE)


def tighten_file(path: Path) -> None:
    """A file of sipline's kept outside the data dir (a SQLite store named by --database-url)."""
    if path.is_file() and not path.is_symlink():
        _chmod(path, PRIVATE_FILE)


def _chmod(path: Path, mode: int) -> None:
    try:
        if path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)
    except FileNotFoundError:  # SQLite removes its -wal and -shm files as the last connection closes
        pass
