"""UDP keep-alives towards registrars behind which a line learnt its NAT address (docs/behaviour.md#reg-keepalive), sans-IO.

One keep-alive per target, however many lines share it: CRLFCRLF every
`interval` seconds ±20 % (--keepalive-interval, UDP_KEEPALIVE by default), until
no line registered through that target needs it.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from sipline.registration.line import LineRegistration
from sipline.registration.timers import TimerHeap
from sipline.sip.resolve import Target

UDP_KEEPALIVE = 25.0  # docs/behaviour.md#reg-keepalive: ±20 %


@dataclass
class KeepAlive:
    target: Target
    at: float

    def next_deadline(self) -> float:
        return self.at


class KeepAlives:
    def __init__(self, timers: TimerHeap, rng: random.Random, interval: float = UDP_KEEPALIVE) -> None:
        self.timers = timers
        self.rng = rng
        self.interval = interval
        self._entries: dict[Target, KeepAlive] = {}

    def registered(self, machine: LineRegistration, now: float) -> None:
        """A line succeeded: keep its NAT binding open if it learnt one over UDP."""
        target = machine.sticky
        if machine.nat_learned and target is not None and target.transport == "udp" and target not in self._entries:
            entry = self._entries[target] = KeepAlive(target, now + self._next_interval())
            self.timers.push(entry.at, entry)

    def due(self, entry: KeepAlive, lines: Iterable[LineRegistration], now: float) -> bool:
        """The entry's time came: whether to send one now (and again later); False ends it, as no
        line needs it any more."""
        if not any(machine.sticky == entry.target and machine.nat_learned for machine in lines):
            del self._entries[entry.target]
            return False
        entry.at = now + self._next_interval()
        self.timers.push(entry.at, entry)
        return True

    def _next_interval(self) -> float:
        return self.interval * self.rng.uniform(0.8, 1.2)
