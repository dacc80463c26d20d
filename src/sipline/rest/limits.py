"""Request-rate and operating-time limits of the REST API (docs/behaviour.md#rest-rate-limit, docs/behaviour.md#rest-operating-limit), pure.

Rate (docs/behaviour.md#rest-rate-limit): a leaky bucket per (portal, client IP). On arrival the level drains by
Y per second since the last request; a request that would lift it above X is
refused (and not counted), any other adds 1.

Operating time (docs/behaviour.md#rest-operating-limit): per (app or webhook, method), the seconds spent in the method
are summed into baskets; a basket opens at the first call of its minute and lives
600 s. `operating` is the sum of the live baskets, `operating_reset_at` the expiry
of the oldest. A call is refused while `operating` is above the limit; the call
that crosses it still completes.

Both tables are bounded: past MAX_KEYS entries, the ones that are empty (drained,
expired) go first, then the table starts over. Forgetting only ever lets a request
through that would have been let through a moment later.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass

MAX_KEYS = 100_000
BASKET = 60.0  # one basket per minute of calls
BASKET_LIFE = 600.0  # a basket counts for ten minutes


@dataclass(frozen=True)
class Rate:
    burst: float  # X: the most requests in the bucket
    drain: float  # Y: requests per second that drain away


class RateLimiter:
    def __init__(self) -> None:
        self._levels: dict[Hashable, tuple[float, float]] = {}  # key → (level, when)

    def admit(self, key: Hashable, rate: Rate, now: float) -> bool:
        level, when = self._levels.get(key, (0.0, now))
        level = max(0.0, level - rate.drain * max(0.0, now - when))
        if level + 1 > rate.burst:
            self._levels[key] = (level, now)
            return False
        if len(self._levels) >= MAX_KEYS and key not in self._levels:
            self._sweep(now, rate)
        self._levels[key] = (level + 1, now)
        return True

    def _sweep(self, now: float, rate: Rate) -> None:
        self._levels = {
            key: (level, when) for key, (level, when) in self._levels.items() if level - rate.drain * (now - when) > 0
        }
        if len(self._levels) >= MAX_KEYS:
            self._levels.clear()


@dataclass(frozen=True)
class Operating:
    seconds: float  # `operating`
    reset_at: int  # `operating_reset_at`


class OperatingTime:
    def __init__(self, limit: float) -> None:
        self.limit = limit
        self._baskets: dict[Hashable, deque[list[float]]] = {}  # key → [[opened, seconds], …] oldest first

    def blocked(self, key: Hashable, now: float) -> bool:
        """True: refuse the call (429 OPERATION_TIME_LIMIT)."""
        used = self.used(key, now)
        return used is not None and used.seconds > self.limit

    def record(self, key: Hashable, seconds: float, now: float) -> Operating:
        """Count a finished call; what the time block reports for it (this call included)."""
        baskets = self._live(key, now)
        if baskets is None:
            if len(self._baskets) >= MAX_KEYS:
                self._sweep(now)
            baskets = self._baskets[key] = deque()
        if not baskets or now - baskets[-1][0] >= BASKET:
            baskets.append([now, 0.0])
        baskets[-1][1] += seconds
        return Operating(sum(seconds for _, seconds in baskets), int(baskets[0][0] + BASKET_LIFE))

    def used(self, key: Hashable, now: float) -> Operating | None:
        """A look only: expired baskets are dropped by `record`, as shared_limits.py drops them (a
        clock that steps back after a look must find what a look in Redis would have left)."""
        baskets = [basket for basket in self._baskets.get(key, ()) if _alive(basket, now)]
        if not baskets:
            return None
        return Operating(sum(seconds for _, seconds in baskets), int(baskets[0][0] + BASKET_LIFE))

    def _live(self, key: Hashable, now: float) -> deque[list[float]] | None:
        baskets = self._baskets.get(key)
        while baskets and not _alive(baskets[0], now):
            baskets.popleft()
        return baskets

    def _sweep(self, now: float) -> None:
        for key in list(self._baskets):
            if not self._live(key, now):
                del self._baskets[key]
        if len(self._baskets) >= MAX_KEYS:
            self._baskets.clear()


def _alive(basket: list[float], now: float) -> bool:
    """A basket ([opened, seconds]) counts until BASKET_LIFE after it opened."""
    return now - basket[0] < BASKET_LIFE
