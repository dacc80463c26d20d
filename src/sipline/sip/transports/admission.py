"""Limits on the TCP/TLS flows peers open to us, pure: which to admit, and when each one closes.

A new flow is admitted while its source holds fewer than `per_source` flows and all
peers together hold fewer than `total`; otherwise it is closed at once. An IPv6 source
is its /64, the block one subscriber is usually given (RFC 6177 §3).

An admitted flow that delivers no SIP message within `idle_timeout` of opening is
closed. One that did is closed after `lifetime` without a message (Kamailio's
tcp_connection_lifetime), or, while a binding registered over it lives, not before
that binding expires plus `lifetime` (as Kamailio's registrar extends the lifetime of
a connection that carries a contact).

`total` comes from the process's open-file limit: `fd_budget` keeps a reserve of
descriptors for the HTTP API, the store and our own outgoing flows.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from sipline.sip.reachability import unmapped

PER_SOURCE = 32  # Kamailio's careful setups: 32–64 connections per IP; a PBX needs one, an office a few
MAX_FLOWS = 2048  # Kamailio's tcp_max_connections default
IDLE_TIMEOUT = 20.0  # a UA sends its request right after connecting; room for slow links and a TLS handshake
LIFETIME = 120.0  # Kamailio's tcp_connection_lifetime default
FD_RESERVE = 256  # descriptors kept for HTTP, the store and outgoing flows (half the limit, if that is less)


@dataclass(frozen=True)
class FlowLimits:
    per_source: int = PER_SOURCE  # 0: no cap
    total: int = MAX_FLOWS
    idle_timeout: float = IDLE_TIMEOUT
    lifetime: float = LIFETIME


def fd_budget(open_files: int) -> int:
    """How many accepted flows fit under an open-file limit with the reserve left free."""
    return max(1, open_files - min(FD_RESERVE, open_files // 2))


@lru_cache(maxsize=4096)
def source_of(address: str) -> str:
    """What the per-source cap counts: the IPv4 address, or the IPv6 /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    ip = unmapped(ip)
    if ip.version == 4:
        return str(ip)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


@dataclass
class FlowTimes:
    """One admitted flow's clock readings; `deadline` says when it is closed."""

    opened_at: float
    last_message_at: float | None = None
    registered_until: float = 0.0

    def deadline(self, limits: FlowLimits) -> float:
        if self.last_message_at is None:
            return self.opened_at + limits.idle_timeout
        return max(self.last_message_at, self.registered_until) + limits.lifetime


class FlowBook:
    """How many admitted flows each source holds, and in all."""

    def __init__(self, limits: FlowLimits) -> None:
        self.limits = limits
        self.total = 0
        self._by_source: Counter[str] = Counter()

    def admit(self, address: str) -> str | None:
        """Counts the flow in, or returns why it is refused: "total" or "per_source"."""
        source = source_of(address)
        if self.total >= self.limits.total:
            return "total"
        if self.limits.per_source and self._by_source[source] >= self.limits.per_source:
            return "per_source"
        self._by_source[source] += 1
        self.total += 1
        return None

    def release(self, address: str) -> None:
        source = source_of(address)
        self.total -= 1
        self._by_source[source] -= 1
        if self._by_source[source] <= 0:
            del self._by_source[source]


class Throttle:
    """Counts events and says, at most once per `interval`, how many there were since it last did."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._count = 0
        self._next_at: float | None = None

    def note(self, now: float) -> int | None:
        self._count += 1
        if self._next_at is not None and now < self._next_at:
            return None
        count, self._count = self._count, 0
        self._next_at = now + self.interval
        return count
