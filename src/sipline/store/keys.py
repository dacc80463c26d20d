"""The secret key's files in the data dir, and how a key rotation survives a kill at any point.

    secret.key       the key the store is sealed with
    secret.key.new   `rotate-key`'s new key, on disk (fsync) before the store is re-sealed
    secret.key.old   the key before the new one, while `.new` takes its place

A rotation writes `.new`, re-seals every secret in one transaction (made durable: Database.sync),
then promotes: `secret.key` becomes `.old`, `.new` becomes `secret.key` (rename(2), atomic), and
`.old` goes. Wherever a kill lands, one of
the three opens the store: before the commit `secret.key` (or `.old` once the promotion began),
after it `.new` (or `secret.key` once promoted). Every start tries them in that order
(`candidates`) and `settle`s on the first that opens a stored secret: it becomes `secret.key`,
the others go. A store with no secret proves nothing (another store may need `.new` or `.old`,
say one that --database-url names at another time): the files are left, and `rotate-key` refuses.

With SIPLINE_SECRET_KEY the key is the operator's: it is the only candidate, `rotate-key` leaves
its new key in `.new` for the operator to install, and no file is changed at start.
Key files change only under an exclusive flock(2) on the data dir, so that processes starting
together on one data dir (`--workers`) settle once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from sipline.files import sync_folder, write_private
from sipline.store.crypto import KEY_BYTES, KeyMaterialError, key_from_env, new_key

KEY_FILE, PENDING_FILE, PREVIOUS_FILE = "secret.key", "secret.key.new", "secret.key.old"
FROM_ENV = "SIPLINE_SECRET_KEY"


class KeyFiles:
    def __init__(self, data_dir: Path, from_env: str | None, *, create: bool = True) -> None:
        """`create` False: a data dir with no key file is refused, not given a new key (operator commands)."""
        self.data_dir = data_dir
        self.from_env = from_env or None
        self.create = create

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        fd = os.open(self.data_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def candidates(self) -> list[tuple[str, bytes]]:
        """(name, key) to try on the store, in order; on a first start the key file is made.
        Raises: KeyMaterialError for a malformed SIPLINE_SECRET_KEY or key file, or none (not `create`)."""
        if self.from_env:
            return [(FROM_ENV, key_from_env(self.from_env))]
        found = [
            (name, self._read(name))
            for name in (KEY_FILE, PENDING_FILE, PREVIOUS_FILE)
            if (self.data_dir / name).exists()
        ]
        if not found and not self.create:
            raise KeyMaterialError(
                f"{self.data_dir / KEY_FILE} is missing: the store's key is not there (or set {FROM_ENV})"
            )
        if not found:
            write_private(self.data_dir / KEY_FILE, new_key())
            return [(KEY_FILE, self._read(KEY_FILE))]
        return found

    def settle(self, name: str) -> None:
        """The key read from `name` opens the store: make it `secret.key`, drop the others."""
        if self.from_env:
            return
        if name == PENDING_FILE:
            self.promote()
        elif name == PREVIOUS_FILE:
            os.replace(self.data_dir / PREVIOUS_FILE, self.data_dir / KEY_FILE)
        for other in (PENDING_FILE, PREVIOUS_FILE):
            (self.data_dir / other).unlink(missing_ok=True)
        sync_folder(self.data_dir)

    def refusal(self, error: KeyMaterialError) -> KeyMaterialError:
        """What to tell when no candidate opens the store."""
        pending = self.data_dir / PENDING_FILE
        if self.from_env and pending.exists():
            return KeyMaterialError(
                f"{error}; if `sipline rotate-key` ran, {pending} holds the key: set {FROM_ENV} to its base64"
            )
        return error

    def leftovers(self) -> list[Path]:
        """`.new` and `.old` files that a start did not settle (the store held no secret to try)."""
        return [path for path in (self.data_dir / PENDING_FILE, self.data_dir / PREVIOUS_FILE) if path.exists()]

    def write_pending(self, key: bytes) -> Path:
        path = self.data_dir / PENDING_FILE
        write_private(path, key)
        return path

    def promote(self) -> None:
        """`.new` becomes the key, by way of `.old` (see the module docstring)."""
        current, previous = self.data_dir / KEY_FILE, self.data_dir / PREVIOUS_FILE
        if current.exists():
            os.replace(current, previous)
        os.replace(self.data_dir / PENDING_FILE, current)
        sync_folder(self.data_dir)
        previous.unlink(missing_ok=True)
        sync_folder(self.data_dir)

    def _read(self, name: str) -> bytes:
        key = (self.data_dir / name).read_bytes()
        if len(key) != KEY_BYTES:
            raise KeyMaterialError(f"{self.data_dir / name} must hold exactly 32 bytes")
        return key
