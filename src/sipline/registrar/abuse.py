"""Flood and password-guessing protection for the registrar (sip-behaviour.md B8), pure.

Per source IP: more than `flood_requests` in `flood_window` seconds drops everything
from it for `flood_block` seconds; `auth_failures` failures in `failure_window`
block it for `auth_block`, doubled for each further block within a day, at most a
day. Per username, across IPs: `user_failures` failures in `failure_window` leave
each IP one challenge per `user_interval` seconds for that user, except an IP that
holds a live binding of it. Every failure and block becomes a SecurityEvent.

State is kept per IP and per user and swept when it grows past MAX_TRACKED, so a
spoofing sender cannot grow it without end.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

MAX_TRACKED = 100_000  # IPs and usernames with state
DAY = 86400.0


@dataclass(frozen=True)
class AbuseLimits:
    flood_requests: int = 20  # B8 (cf. Kamailio pike 16 per 2 s); 0 turns flood protection off
    flood_window: float = 2.0
    flood_block: float = 300.0
    auth_failures: int = 5  # 0 turns failure blocking off
    failure_window: float = 600.0
    auth_block: float = 1800.0
    user_failures: int = 20
    user_interval: float = 10.0


@dataclass(frozen=True)
class SecurityEvent:
    """One line of the security log (never a password or digest response)."""

    time: float
    ip: str
    port: int
    transport: str
    username: str | None
    reason: str


class _Source:
    __slots__ = ("window_start", "requests", "failures", "blocked_until", "blocks")

    def __init__(self, now: float) -> None:
        self.window_start = now
        self.requests = 0
        self.failures: deque[float] = deque()
        self.blocked_until = 0.0
        self.blocks: deque[float] = deque()  # when earlier failure blocks began (for doubling)


class Guard:
    def __init__(self, limits: AbuseLimits = AbuseLimits()) -> None:
        self.limits = limits
        self._sources: dict[str, _Source] = {}
        self._users: dict[str, deque[float]] = {}
        self._last_challenge: dict[tuple[str, str], float] = {}

    def admit(self, ip: str, now: float) -> bool:
        """False: drop the request silently (blocked, or flooding)."""
        source = self._source(ip, now)
        if now < source.blocked_until:
            return False
        limits = self.limits
        if not limits.flood_requests:
            return True
        if now - source.window_start > limits.flood_window:
            source.window_start, source.requests = now, 0
        source.requests += 1
        if source.requests > limits.flood_requests:
            source.blocked_until = now + limits.flood_block
            return False
        return True

    def flooding(self, ip: str, now: float) -> bool:
        source = self._sources.get(ip)
        return source is not None and source.requests > self.limits.flood_requests and now < source.blocked_until

    def failed(self, ip: str, username: str | None, now: float) -> bool:
        """An authentication failure (B8 list). True when it blocks the IP now."""
        limits = self.limits
        if username:
            attempts = self._users.setdefault(username, deque())
            attempts.append(now)
            _trim(attempts, now - limits.failure_window, limits.user_failures)
        if not limits.auth_failures:
            return False
        source = self._source(ip, now)
        source.failures.append(now)
        _trim(source.failures, now - limits.failure_window, limits.auth_failures)
        if len(source.failures) < limits.auth_failures:
            return False
        _trim(source.blocks, now - DAY, 64)
        length = min(DAY, limits.auth_block * 2 ** len(source.blocks))
        source.blocks.append(now)
        source.blocked_until = now + length
        source.failures.clear()
        return True

    def may_challenge(self, ip: str, username: str | None, now: float, holds_binding: bool) -> bool:
        """B8 per username: while a user is being guessed at, one challenge per interval per IP."""
        if not username or holds_binding:
            return True
        attempts = self._users.get(username)
        if attempts is None:
            return True
        _trim(attempts, now - self.limits.failure_window, self.limits.user_failures)
        if len(attempts) < self.limits.user_failures:
            return True
        key = (username, ip)
        if now - self._last_challenge.get(key, float("-inf")) < self.limits.user_interval:
            return False
        self._last_challenge[key] = now
        return True

    def blocked_until(self, ip: str) -> float:
        source = self._sources.get(ip)
        return source.blocked_until if source else 0.0

    def _source(self, ip: str, now: float) -> _Source:
        source = self._sources.get(ip)
        if source is None:
            if len(self._sources) >= MAX_TRACKED:
                self._sweep(now)
            source = self._sources[ip] = _Source(now)
        return source

    def _sweep(self, now: float) -> None:
        """Forget IPs with nothing pending; then, if still full, the oldest half."""
        horizon = self.limits.failure_window
        self._sources = {ip: s for ip, s in self._sources.items()
                         if s.blocked_until > now or (s.failures and now - s.failures[-1] < horizon)}
        if len(self._sources) >= MAX_TRACKED:
            self._sources = dict(list(self._sources.items())[MAX_TRACKED // 2:])
        self._users = {user: times for user, times in self._users.items() if times and now - times[-1] < horizon}
        self._last_challenge = {k: t for k, t in self._last_challenge.items() if now - t < horizon}


def _trim(times: deque[float], oldest: float, keep: int) -> None:
    while times and (times[0] < oldest or len(times) > keep):
        times.popleft()
