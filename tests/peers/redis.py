"""A redis-server of the tests' own (never the machine's, never its db 0), on a free port."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.peers import PortTaken, on_a_free_port, terminate
from tests.waiting import wait_until

IN_USE = "Address already in use"
READY = "Ready to accept connections"  # what it logs once it listens


class RedisServer:
    """`redis-server` on 127.0.0.1, nothing saved; `.url` once started. `stop()` then `start()` comes back on
    the same port (a Redis that went away and returned)."""

    def __init__(self, folder: Path) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.folder = folder
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> RedisServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        return self._start_on(self.port) if self.port else on_a_free_port(self._start_on, udp_too=False)

    def _start_on(self, port: int) -> RedisServer:
        self.port = port
        with open(self._log(), "ab") as out:
            logged_before = out.tell()
            self.proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                          "--appendonly", "no", "--dir", str(self.folder)],
                                         stdout=out, stderr=out, stdin=subprocess.DEVNULL)
        wait_until(lambda: READY in self._logged(logged_before), 10, message="redis-server did not start")
        return self

    def _log(self) -> Path:
        return self.folder / f"redis-{self.port}.log"

    def _logged(self, since: int) -> str:
        """What it logged since `since`. Raises: PortTaken, RuntimeError when it exited."""
        assert self.proc is not None
        exited = self.proc.poll() is not None
        text = self._log().read_bytes()[since:].decode(errors="replace")
        if exited:
            raise (PortTaken if IN_USE in text else RuntimeError)(f"redis-server exited: {text[-2000:]}")
        return text

    def stop(self) -> None:
        terminate(self.proc)
