"""Real SIP peers for tests and benchmarks: Kamailio, SIPp, a loopback DNS server.

sipline itself listens on port 0 and prints the ports it got; Kamailio and SIPp cannot say which port
they got, so they are given one that was free a moment ago, and start again on another when something
else took it in between (`on_a_free_port`).
"""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
BIND_ATTEMPTS = 5  # ports tried before a peer gives up
_HANDED_OUT: set[int] = set()


class PortTaken(RuntimeError):
    """A peer could not bind the port it was given: something else took it after it was picked."""


def free_port(udp_too: bool = False) -> int:
    """A port free on 127.0.0.1 for TCP (and UDP, for SIP) right now, never the same twice in a run."""
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


def on_a_free_port(run: Callable[[int], T], *, udp_too: bool = True) -> T:
    """`run(port)` on a free port; again on another while it raises PortTaken."""
    for _ in range(BIND_ATTEMPTS - 1):
        try:
            return run(free_port(udp_too))
        except PortTaken:
            continue
    return run(free_port(udp_too))


def terminate(proc: subprocess.Popen | None) -> None:
    """SIGTERM, then SIGKILL after 10 s: a peer that is still running ends either way."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
