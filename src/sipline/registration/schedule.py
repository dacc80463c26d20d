"""When to register next (docs/behaviour.md#reg-expiry, docs/behaviour.md#reg-retry): refreshes, backoff and the slow schedule.

Pure functions of the situation and an injected random source; times in seconds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

MIN_DELAY = 5.0  # docs/behaviour.md#reg-expiry: a refresh is never scheduled sooner than this
TRANSIENT_BASE = 30.0  # docs/behaviour.md#reg-retry class T: RFC 5626 §4.5 base-time when all flows failed
TRANSIENT_MAX = 1800.0  # docs/behaviour.md#reg-retry class T: RFC 5626 §4.5 max-time
REJECTED_FIRST = 300.0  # docs/behaviour.md#reg-retry class R: the first wait
# docs/behaviour.md#reg-retry class R: 300 s, 900 s, 1800 s, then every hour, never giving up (multiples of the first)
REJECTED_STEPS = (1.0, 3.0, 6.0, 12.0)


@dataclass(frozen=True)
class Retries:
    """The first waits of docs/behaviour.md#reg-retry, as set (--retry-interval, --rejected-retry-interval)."""

    transient: float = TRANSIENT_BASE
    rejected: float = REJECTED_FIRST


def refresh_delay(granted: float, rng: random.Random) -> float:
    """docs/behaviour.md#reg-expiry (3GPP TS 24.229 rule): G − 600 s when G > 1200 s, else G/2; minus jitter; at least 5 s."""
    delay = granted - 600 if granted > 1200 else granted / 2
    delay -= rng.uniform(0, min(0.05 * granted, 30.0))
    return max(MIN_DELAY, delay)


def transient_delay(
    failures: int,
    retry_after: float | None,
    binding_left: float | None,
    rng: random.Random,
    base: float = TRANSIENT_BASE,
) -> float:
    """docs/behaviour.md#reg-retry class T (RFC 5626 §4.5): W = min(1800, base·2^n), delay U[W/2, W].

    `failures` counts earlier consecutive failures (0 for the first). Retry-After
    lengthens the delay (at most to an hour); a binding still valid must be
    retried within half of what is left of it.
    """
    ceiling = min(TRANSIENT_MAX, base * 2 ** min(failures, 16))
    delay = rng.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = min(max(delay, float(retry_after)), 3600.0)
    if binding_left is not None and binding_left > 0:
        delay = min(delay, binding_left / 2)
    return delay


def rejected_delay(failures: int, rng: random.Random, first: float = REJECTED_FIRST) -> float:
    """docs/behaviour.md#reg-retry class R: 300 s, 900 s, 1800 s, then 3600 s (`first` times 1, 3, 6, 12), each ±10 %."""
    step = first * REJECTED_STEPS[min(failures, len(REJECTED_STEPS) - 1)]
    return step * rng.uniform(0.9, 1.1)
