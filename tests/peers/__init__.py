"""Real SIP peers for tests and benchmarks: Kamailio, SIPp, a loopback DNS server."""

from __future__ import annotations

import signal
import subprocess


def terminate(proc: subprocess.Popen | None) -> None:
    """SIGTERM, then SIGKILL after 10 s: a peer that is still running ends either way."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
