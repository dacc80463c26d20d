"""A real `sipline serve` process on ports the system gives it (`--port 0`), for tests and benchmarks."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.peers import PortTaken
from tests.stores import store_env
from tests.waiting import wait_until


LISTENING = ("listening", "oauth", "sip", "sip-tls")  # what serve prints once every port is bound


class SiplineProcess:
    """Starts `python -m sipline serve` and reads the lines it prints (`webhook:`, `ca:`, `listening:`, `sip:`).

    Without `port`/`sip_port` the process listens on ports the system gives it and this reads them from what it
    prints; a restart passes the ports of the process before it (its contacts and webhook name them).
    """

    def __init__(self, data_dir: Path, *args: str, port: int | None = None, sip_port: int | None = None,
                 env: dict[str, str] | None = None, preexec_fn: Callable[[], None] | None = None):
        self.data_dir = data_dir
        self.args = args
        self.port = port or 0  # 0 until the process says which port it got
        self.sip_port = sip_port or 0
        self.given_env = env or {}
        self.env = {**os.environ, **store_env(data_dir), **self.given_env}
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
    def sip_tls_port(self) -> int:
        """The port of the first --sip-tls-listen (`127.0.0.1:0`: the one it got)."""
        return int(self.printed["sip-tls"].rpartition(":")[2])

    @property
    def oauth_port(self) -> int:
        """The port of --oauth-listen (`127.0.0.1:0`: the one it got)."""
        return int(urlsplit(self.printed["oauth"]).port or 0)

    @property
    def webhook(self) -> str:
        """The webhook URL printed on first start."""
        return self.printed["webhook"]

    def start(self, timeout: float = 20.0) -> SiplineProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for key in LISTENING:  # a second start prints its own
            self.printed.pop(key, None)
        with open(self.data_dir / "stderr.log", "ab") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sipline", "serve", "--data-dir", str(self.data_dir),
                 "--port", str(self.port), "--log-level", self.env.get("SIPLINE_TEST_LOG_LEVEL", "warning"),
                 *([] if "--sip-listen" in self.args else ["--sip-listen", f"127.0.0.1:{self.sip_port}"]),
                 # the REST rate limit (50 at once, 2/s) is tested on its own; other tests go faster
                 *([] if "--rate-limit" in self.args else ["--rate-limit", "off"]),
                 # tests read the log as text; a test of the format gives --log-format or SIPLINE_LOG_FORMAT
                 *([] if "--log-format" in self.args or "SIPLINE_LOG_FORMAT" in self.given_env
                   else ["--log-format", "text"]),
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
        """Until it printed where it listens (after binding every port) and /healthz answers."""
        wait_until(self._listening_and_healthy, timeout, interval=0,
                   message=lambda: f"sipline did not become healthy: {self.stderr()}")
        if "sip" in self.printed:
            self.sip_port = int(self.printed["sip"].rpartition(":")[2])
        self._read_printed(0.2)

    def _listening_and_healthy(self) -> bool:
        assert self.proc is not None
        self._read_printed(0.05)
        if self.proc.poll() is not None:
            self._read_printed(0)
            taken = "cannot listen" in self.stderr()  # only on a port the test gave it
            raise (PortTaken if taken else RuntimeError)(f"sipline exited with {self.proc.returncode}: {self.stderr()}")
        if "listening" not in self.printed:
            return False
        self.port = urlsplit(self.printed["listening"]).port or self.port
        return self._healthy()

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
                self.printed.setdefault(key, value)  # the first of each: the first SIP listen address
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
