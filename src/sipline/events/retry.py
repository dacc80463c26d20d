"""When a failed delivery is tried again (docs/behaviour.md#event-delivery), pure.

Attempt n (1 = the first retry) waits `first`·2^(n-1) seconds, ±JITTER at random, at most
`longest`; a row is given up once `retry_for` seconds have passed since the change it reports.
With the defaults (5 s, 3600 s, 86400 s): 5, 10, 20, 40 s, … an hour from the 11th retry on,
about 30 tries in the first day.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

JITTER = 0.2  # ±20 %: handlers that failed together are not all retried in the same second


@dataclass(frozen=True)
class RetrySchedule:
    first: float = 5.0  # --event-retry-after
    longest: float = 3600.0  # --event-retry-max-interval
    retry_for: float = 86400.0  # --event-retry-for

    def next_at(
        self, attempts: int, created_at: float, now: float, uniform: Callable[[float, float], float]
    ) -> float | None:
        """When attempt `attempts + 1` goes, after `attempts` failed ones; None: give the row up."""
        if now - created_at >= self.retry_for:
            return None
        delay = self.first * 2 ** min(max(attempts - 1, 0), 32)
        delay *= uniform(1 - JITTER, 1 + JITTER)
        return now + min(delay, self.longest)
