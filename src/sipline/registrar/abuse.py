"""Flood and password-guessing protection for the registrar (docs/behaviour.md#office-abuse), pure.

Per source IP: more than `flood_requests` in `flood_window` seconds drops everything
from it for `flood_block` seconds; `auth_failures` failures in `failure_window`
block it for `auth_block`, doubled for each further block within a day, at most a
day. Per username, across IPs: `user_failures` failures in `failure_window` put the
user under guard. Then each IP that holds no live binding of it gets one challenge
per `user_interval` seconds for that user (a "slot"), and only an answer to the nonce
of its current slot is checked at all: everything else from it for that user is
dropped unanswered. With nonces bound to the IP and user they were issued to
(nonce.py) and burnt by a wrong answer, that is one guess per IP per interval.
Every failure and block becomes a SecurityEvent.

Memory: each table (IPs, usernames, (username, IP) slots) holds at most
`table_size` entries, in order of last activity. Every call forgets the few oldest
entries whose state has lapsed, and a full table forgets its oldest entry, so a
sender with many addresses or usernames can neither grow the tables nor make a
sweep cost more than a few entries.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

DAY = 86400.0
SWEEP_STEP = 4  # lapsed entries forgotten per call and table: more than each call adds
NONCE_CLOCK_STEP = 1e-6  # nonce.py keeps issue times in whole microseconds, rounded down
K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class AbuseLimits:
    flood_requests: int = (
        20  # docs/behaviour.md#office-abuse (cf. Kamailio pike 16 per 2 s); 0 turns flood protection off
    )
    flood_window: float = 2.0
    flood_block: float = 300.0
    auth_failures: int = 5  # 0 turns failure blocking off
    failure_window: float = 600.0
    auth_block: float = 1800.0
    user_failures: int = 20
    user_interval: float = 10.0
    # entries per table: an IP's state is about 250 bytes, a username's about 400 (names are at most
    # MAX_USERNAME characters, service.py), so the three tables stay within some 100 MB at the default
    table_size: int = 100_000


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
        self.failures: list[float] = []
        self.blocked_until = 0.0
        self.blocks: list[float] = []  # when earlier failure blocks began (for doubling)


class _Table(Generic[K, V]):
    """At most `size` entries, the least recently touched first; `lapsed(entry, now)` says which may go."""

    def __init__(self, size: int, lapsed: Callable[[V, float], bool]) -> None:
        self.size = max(1, size)
        self.lapsed = lapsed
        self.entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        return self.entries.get(key)

    def touch(self, key: K, value: V, now: float) -> V:
        """The entry under `key`, made the newest; `value` becomes it when there is none."""
        current = self.entries.get(key)
        if current is None:
            self.put(key, value, now)
            return value
        self.entries.move_to_end(key)
        return current

    def put(self, key: K, value: V, now: float) -> None:
        """`value` under `key`, as the newest entry."""
        entries = self.entries
        if entries.pop(key, None) is None:
            self.sweep(now)
            if len(entries) >= self.size:
                entries.popitem(last=False)
        entries[key] = value

    def sweep(self, now: float) -> None:
        entries = self.entries
        for _ in range(SWEEP_STEP):
            if not entries:
                return
            key, entry = next(iter(entries.items()))
            if not self.lapsed(entry, now):
                return
            del entries[key]

    def __len__(self) -> int:
        return len(self.entries)


class Guard:
    def __init__(self, limits: AbuseLimits = AbuseLimits()) -> None:
        self.limits = limits
        window = limits.failure_window
        self.sources: _Table[str, _Source] = _Table(limits.table_size, lambda s, now: _source_lapsed(s, now, window))
        # username → times of its recent failures, the newest last (at most user_failures of them)
        self.users: _Table[str, list[float]] = _Table(
            limits.table_size, lambda times, now: not times or now - times[-1] > window
        )
        # (username, IP) → when its current slot began, for guarded users only
        self.slots: _Table[tuple[str, str], float] = _Table(
            limits.table_size, lambda began, now: now - began > max(limits.user_interval, window)
        )
        self.blocks: Counter[str] = Counter()  # blocks begun, by cause ("flood", "auth_failures"), for /metrics

    def admit(self, ip: str, now: float) -> bool:
        """False: drop the request silently (blocked, or flooding)."""
        source = self.sources.touch(ip, _Source(now), now)
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
            self.blocks["flood"] += 1
            return False
        return True

    def flooding(self, ip: str, now: float) -> bool:
        source = self.sources.get(ip)
        return source is not None and source.requests > self.limits.flood_requests and now < source.blocked_until

    def failed(self, ip: str, username: str | None, now: float) -> bool:
        """An authentication failure (docs/behaviour.md#office-abuse list). True when it blocks the IP now."""
        limits = self.limits
        if username and limits.user_failures:
            attempts = self.users.touch(username, [], now)
            attempts.append(now)
            _trim(attempts, now - limits.failure_window, limits.user_failures)
        if not limits.auth_failures:
            return False
        source = self.sources.touch(ip, _Source(now), now)
        source.failures.append(now)
        _trim(source.failures, now - limits.failure_window, limits.auth_failures)
        if len(source.failures) < limits.auth_failures:
            return False
        _trim(source.blocks, now - DAY, 64)
        length = min(DAY, limits.auth_block * 2 ** len(source.blocks))
        source.blocks.append(now)
        source.blocked_until = now + length
        source.failures.clear()
        self.blocks["auth_failures"] += 1
        return True

    def may_challenge(self, ip: str, username: str | None, now: float, holds_binding: bool) -> bool:
        """docs/behaviour.md#office-abuse per username: while a user is guarded, one challenge per interval per IP (a new slot)."""
        if not username or holds_binding or not self.guarded(username, now):
            return True
        began = self.slots.get((username, ip))
        if began is not None and now - began < self.limits.user_interval:
            return False
        self.slots.put((username, ip), now, now)
        return True

    def may_verify(self, ip: str, username: str, issued: float, now: float, holds_binding: bool) -> bool:
        """docs/behaviour.md#office-abuse per username: while a user is guarded, only an answer to the nonce of the IP's current slot
        (issued when the slot began, or after) is checked; `issued` is the nonce's issue time."""
        if holds_binding or not self.guarded(username, now):
            return True
        began = self.slots.get((username, ip))
        return began is not None and issued >= began - NONCE_CLOCK_STEP

    def guarded(self, username: str, now: float) -> bool:
        attempts = self.users.get(username)
        if attempts is None or not self.limits.user_failures:
            return False
        _trim(attempts, now - self.limits.failure_window, self.limits.user_failures)
        return len(attempts) >= self.limits.user_failures

    def blocked_sources(self, now: float) -> int:
        """How many source IPs are blocked at `now` (a walk of the IP table: for a scrape, not per request)."""
        return sum(1 for source in self.sources.entries.values() if now < source.blocked_until)

    def blocked_until(self, ip: str) -> float:
        source = self.sources.get(ip)
        return source.blocked_until if source else 0.0


def _source_lapsed(source: _Source, now: float, window: float) -> bool:
    """Nothing left to remember: not blocked, no failure or block that still counts, no flood window open."""
    last = max(
        source.window_start,
        source.failures[-1] if source.failures else 0.0,
        source.blocks[-1] + DAY if source.blocks else 0.0,
    )
    return now >= source.blocked_until and now - last > window


def _trim(times: list[float], oldest: float, keep: int) -> None:
    drop = 0
    while drop < len(times) and (times[drop] < oldest or len(times) - drop > keep):
        drop += 1
    if drop:
        del times[:drop]
