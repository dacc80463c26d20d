"""A real `sipline serve` process on a free port, for tests and benchmarks."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.stores import store_env


_HANDED_OUT: set[int] = set()


def free_port(udp_too: bool = False) -> int:
    """A port free on 127.0.0.1 for TCP (and UDP, for SIP listen addresses), never the same twice."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port in _HANDED_OUT:
            continue
        _HANDED_OUT.add(port)
        if not udp_too:
            return port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


class SiplineProcess:
    """Starts `python -m sipline serve` and reads the lines it prints (`webhook:`, `ca:`)."""

    def __init__(self, data_dir: Path, *args: str, port: int | None = None, sip_port: int | None = None,
                 env: dict[str, str] | None = None, preexec_fn: Callable[[], None] | None = None):
        self.data_dir = data_dir
        self.args = args
        self.port = port or free_port()
        self.sip_port = sip_port or free_port(udp_too=True)
        self.env = {**os.environ, **store_env(data_dir), **(env or {})}
        self.preexec_fn = preexec_fn  # run in the child before sipline starts (e.g. resource limits)
        self.printed: dict[str, str] = {}
        self._pending = b""
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def scheme(self) -> str:
        return "https" if "--tls" in self.args or "--tls-cert" in self.args else "http"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def webhook(self) -> str:
        """The webhook URL printed on first start."""
        return self.printed["webhook"]

    def start(self, timeout: float = 20.0) -> SiplineProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / "stderr.log", "ab") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sipline", "serve", "--data-dir", str(self.data_dir),
                 "--port", str(self.port), "--log-level", self.env.get("SIPLINE_TEST_LOG_LEVEL", "warning"),
                 *([] if "--sip-listen" in self.args else ["--sip-listen", f"127.0.0.1:{self.sip_port}"]),
                 # the REST rate limit (50 at once, 2/s) is tested on its own; other tests go faster
                 *([] if "--rate-limit" in self.args else ["--rate-limit", "off"]),
                 *self.args],
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=self.env,
                preexec_fn=self.preexec_fn,
            )
        try:
            self._wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while not self._healthy():
            self._read_printed(0.05)
            if self.proc.poll() is not None:
                raise RuntimeError(f"sipline exited with {self.proc.returncode}: {self.stderr()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"sipline did not become healthy: {self.stderr()}")
        self._read_printed(0.2)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/healthz", verify=False, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def _read_printed(self, wait: float) -> None:
        """Collect `key: value` lines; raw reads, since a buffered reader hides lines from select()."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while select.select([fd], [], [], wait)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            self._pending += chunk
            *lines, self._pending = self._pending.split(b"\n")
            for line in lines:
                key, _, value = line.decode().strip().partition(": ")
                self.printed[key] = value
            wait = 0.05

    def stderr(self) -> str:
        return (self.data_dir / "stderr.log").read_text(errors="replace")[-4000:]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=20)
        self.proc.stdout.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.stdout is not None and not self.proc.stdout.closed:
            self.kill(signal.SIGTERM)
