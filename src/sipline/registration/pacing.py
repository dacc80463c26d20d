"""Load control for REGISTER traffic (docs/behaviour.md#reg-pacing), pure: buckets, caps and a breaker.

Every REGISTER transaction (new, refresh, retry, failover) takes a token from a
global bucket. Per provider host (the SERVER or proxy host) new attempts,
retries and failovers also take a token from the host's bucket and must stay
under its cap of transactions in flight. Scheduled refreshes of live bindings
skip the host limits: they are the steady load a provider already accepts, and
100,000 lines on one provider at a 600 s expiry need ~330 refreshes/s.

The defaults below differ from docs/behaviour.md#reg-pacing's (20/s globally, 5/s and 5 in flight per
host) because those would not refresh 100,000 lines in time; every value is a
setting. A global cap on transactions in flight is sipline's own addition: past
it, answers wait in our socket longer than T1 and every request is sent twice.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PacingSettings:
    rate: float = 1000.0  # REGISTER transactions per second, all providers
    burst: float = 1000.0
    host_rate: float = 50.0  # per provider host, new attempts and retries
    host_burst: float = 50.0
    host_in_flight: int = 50
    in_flight: int = 1000  # REGISTER transactions in flight, all providers together


class TokenBucket:
    __slots__ = ("rate", "burst", "tokens", "updated")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.updated = burst, now

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def available(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= 1

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1

    def ready_at(self, now: float) -> float:
        """When the next whole token will be there."""
        self._refill(now)
        return now if self.tokens >= 1 else now + (1 - self.tokens) / self.rate


class Pacer:
    """Decides whether a REGISTER to `host` may go now."""

    def __init__(self, settings: PacingSettings, now: float) -> None:
        self.settings = settings
        self.bucket = TokenBucket(settings.rate, settings.burst, now)
        self.host_buckets: dict[str, TokenBucket] = {}
        self.in_flight: dict[str, int] = {}
        self.total_in_flight = 0

    def admit(self, host: str, refresh: bool, now: float) -> bool:
        if self.total_in_flight >= self.settings.in_flight or not self.bucket.available(now):
            return False
        if not refresh:
            bucket = self.host_buckets.get(host)
            if bucket is None:
                bucket = self.host_buckets[host] = TokenBucket(self.settings.host_rate, self.settings.host_burst, now)
            if self.in_flight.get(host, 0) >= self.settings.host_in_flight or not bucket.available(now):
                return False
            bucket.take(now)
        self.bucket.take(now)
        self.in_flight[host] = self.in_flight.get(host, 0) + 1
        self.total_in_flight += 1
        return True

    def done(self, host: str) -> None:
        self.total_in_flight -= 1
        left = self.in_flight.get(host, 0) - 1
        if left > 0:
            self.in_flight[host] = left
        else:
            self.in_flight.pop(host, None)

    def ready_at(self, host: str, now: float) -> float:
        """The earliest time a refused admission for `host` could succeed (a slot may free sooner)."""
        bucket = self.host_buckets.get(host)
        return max(self.bucket.ready_at(now), bucket.ready_at(now) if bucket else now)


BREAKER_WINDOW = 60.0  # docs/behaviour.md#reg-pacing: failures counted over this many seconds
BREAKER_LINES = 5  # docs/behaviour.md#reg-pacing: distinct failing lines that open the breaker
RELEASE_SPREAD = 30.0  # docs/behaviour.md#reg-pacing: held lines are released over this many seconds
BREAKER_KINDS = frozenset({"dns_fail", "timeout", "transport", "server_503"})


class Breaker:
    """docs/behaviour.md#reg-pacing: when a provider fails for many lines at once, probe with one and hold the others."""

    def __init__(self) -> None:
        self.failures: dict[int, float] = {}  # line id → time of its last counted failure
        self.held: set[int] = set()
        self.probe: int | None = None

    def is_open(self, now: float) -> bool:
        for line_id, when in list(self.failures.items()):
            if now - when > BREAKER_WINDOW:
                del self.failures[line_id]
        return len(self.failures) >= BREAKER_LINES

    def failed(self, line_id: int, now: float) -> None:
        self.failures[line_id] = now

    def hold(self, line_id: int, now: float) -> bool:
        """True when the line must wait; False lets it go (it is the probe, or the breaker is closed)."""
        if not self.is_open(now) or self.probe in (None, line_id):
            if self.is_open(now):
                self.probe = line_id
            return False
        self.held.add(line_id)
        return True

    def forget(self, line_id: int) -> set[int]:
        """A line is gone; if it was the probe, the held lines go again (one of them will probe)."""
        self.failures.pop(line_id, None)
        self.held.discard(line_id)
        if self.probe != line_id:
            return set()
        self.probe = None
        released, self.held = self.held, set()
        return released

    def succeeded(self) -> set[int]:
        """The provider answered: close, and return the lines to release."""
        released, self.held = self.held, set()
        self.failures.clear()
        self.probe = None
        return released


class Breakers:
    """One breaker per provider host."""

    def __init__(self) -> None:
        self._by_host: dict[str, Breaker] = {}

    def for_host(self, host: str) -> Breaker:
        breaker = self._by_host.get(host)
        if breaker is None:
            breaker = self._by_host[host] = Breaker()
        return breaker

    def forget(self, line_id: int) -> list[int]:
        """A line is gone: the lines its breakers release."""
        return [held for breaker in self._by_host.values() for held in breaker.forget(line_id)]
