"""When to register next (docs/behaviour.md#reg-expiry, docs/behaviour.md#reg-retry): refreshes, backoff and the slow schedule.

Pure functions of the situation and an injected random source; times in seconds.
"""

from __future__ import annotations

import random

MIN_DELAY = 5.0  # docs/behaviour.md#reg-expiry: a refresh is never scheduled sooner than this


def refresh_delay(granted: float, rng: random.Random) -> float:
    """docs/behaviour.md#reg-expiry (3GPP TS 24.229 rule): G − 600 s when G > 1200 s, else G/2; minus jitter; at least 5 s."""
    delay = granted - 600 if granted > 1200 else granted / 2
    delay -= rng.uniform(0, min(0.05 * granted, 30.0))
    return max(MIN_DELAY, delay)


def transient_delay(failures: int, retry_after: float | None, binding_left: float | None, rng: random.Random) -> float:
    """docs/behaviour.md#reg-retry class T (RFC 5626 §4.5): W = min(1800, 30·2^n), delay U[W/2, W].

    `failures` counts earlier consecutive failures (0 for the first). Retry-After
    lengthens the delay (at most to an hour); a binding still valid must be
    retried within half of what is left of it.
    """
    ceiling = min(1800.0, 30.0 * 2 ** min(failures, 16))
    delay = rng.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = min(max(delay, float(retry_after)), 3600.0)
    if binding_left is not None and binding_left > 0:
        delay = min(delay, binding_left / 2)
    return delay


REJECTED_STEPS = (300.0, 900.0, 1800.0, 3600.0)  # docs/behaviour.md#reg-retry class R; then every hour, never giving up


def rejected_delay(failures: int, rng: random.Random) -> float:
    """docs/behaviour.md#reg-retry class R: 300 s, 900 s, 1800 s, then 3600 s, each ±10 %."""
    step = REJECTED_STEPS[min(failures, len(REJECTED_STEPS) - 1)]
    return step * rng.uniform(0.9, 1.1)
