"""Load control for REGISTER traffic (docs/behaviour.md#reg-pacing), pure: buckets and caps (the breaker: breaker.py).

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
