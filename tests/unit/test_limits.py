"""The leaky bucket (docs/behaviour.md#rest-rate-limit) and the operating-time baskets (docs/behaviour.md#rest-operating-limit) with a hand clock."""

from __future__ import annotations

from sipline.rest.limits import BASKET_LIFE, OperatingTime, Rate, RateLimiter

T0 = 1_800_000_000.0


def test_fifty_at_once_then_two_a_second():
    limiter, rate = RateLimiter(), Rate(burst=50, drain=2)
    assert all(limiter.admit("p1/10.0.0.1", rate, T0) for _ in range(50))
    assert not limiter.admit("p1/10.0.0.1", rate, T0)
    assert limiter.admit("p1/10.0.0.2", rate, T0)  # another IP has its own bucket
    assert not limiter.admit("p1/10.0.0.1", rate, T0 + 0.4)  # 0.8 drained: not room for one
    assert limiter.admit("p1/10.0.0.1", rate, T0 + 0.5)
    assert not limiter.admit("p1/10.0.0.1", rate, T0 + 0.5)


def test_refused_requests_are_not_counted():
    limiter, rate = RateLimiter(), Rate(burst=2, drain=1)
    assert limiter.admit("k", rate, T0) and limiter.admit("k", rate, T0)
    for _ in range(100):
        assert not limiter.admit("k", rate, T0 + 0.5)
    assert limiter.admit("k", rate, T0 + 1.0)


def test_operating_time_sums_baskets_and_blocks_past_the_limit():
    clock = OperatingTime(limit=10)
    assert clock.used("app/m", T0) is None and not clock.blocked("app/m", T0)
    first = clock.record("app/m", 6, T0)
    assert (first.seconds, first.reset_at) == (6, int(T0 + BASKET_LIFE))
    assert clock.record("app/m", 5, T0 + 30).seconds == 11  # same basket; the call crossing the limit completed
    assert clock.blocked("app/m", T0 + 31)
    assert not clock.blocked("app/other", T0 + 31)  # another method is not affected
    assert not clock.blocked("app/m", T0 + BASKET_LIFE)  # the basket expired


def test_a_basket_per_minute_and_the_oldest_sets_the_reset():
    clock = OperatingTime(limit=100)
    clock.record("k", 1, T0)
    clock.record("k", 1, T0 + 61)
    report = clock.record("k", 1, T0 + 122)
    assert report.seconds == 3 and report.reset_at == int(T0 + BASKET_LIFE)
    assert clock.used("k", T0 + BASKET_LIFE + 1).seconds == 2  # the first basket is gone
    assert clock.used("k", T0 + BASKET_LIFE + 1).reset_at == int(T0 + 61 + BASKET_LIFE)
