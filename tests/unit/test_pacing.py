"""Load control (docs/behaviour.md#reg-pacing): buckets and per-host caps (the breaker: test_breaker.py)."""

from sipline.registration.pacing import Pacer, PacingSettings, TokenBucket


def test_token_bucket():
    bucket = TokenBucket(rate=10, burst=2, now=0.0)
    bucket.take(0.0)
    bucket.take(0.0)
    assert not bucket.available(0.0) and bucket.ready_at(0.0) == 0.1
    assert bucket.available(0.1)
    assert TokenBucket(10, 2, 0.0).ready_at(0.0) == 0.0


def test_global_rate_and_per_host_limits():
    pacer = Pacer(PacingSettings(rate=100, burst=5, host_rate=1, host_burst=2, host_in_flight=10), now=0.0)
    assert pacer.admit("a", False, 0.0) and pacer.admit("a", False, 0.0)
    assert not pacer.admit("a", False, 0.0)  # host bucket empty
    assert pacer.admit("b", False, 0.0)  # other providers are not held up
    assert pacer.admit("a", True, 0.0)  # refreshes of live bindings skip host limits
    assert pacer.admit("a", True, 0.0)
    assert not pacer.admit("c", True, 0.0)  # but not the global bucket
    assert pacer.ready_at("a", 0.0) > 0.0


def test_in_flight_cap_frees_when_transactions_end():
    pacer = Pacer(PacingSettings(rate=1000, burst=1000, host_rate=1000, host_burst=1000, host_in_flight=2), now=0.0)
    assert pacer.admit("a", False, 0.0) and pacer.admit("a", False, 0.0)
    assert not pacer.admit("a", False, 0.0)
    pacer.done("a")
    assert pacer.admit("a", False, 0.0)


def test_global_in_flight_cap():
    pacer = Pacer(PacingSettings(in_flight=2), now=0.0)
    assert pacer.admit("a", True, 0.0) and pacer.admit("b", False, 0.0)
    assert not pacer.admit("c", True, 0.0)
    pacer.done("a")
    assert pacer.admit("c", True, 0.0)
