"""Load control (docs/behaviour.md#reg-pacing): buckets, per-host caps, the breaker."""

from sipline.registration.pacing import Breaker, Pacer, PacingSettings, TokenBucket


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


def test_breaker_holds_lines_after_five_fail_and_releases_on_success():
    breaker = Breaker()
    for line_id in range(4):
        breaker.failed(line_id, 10.0)
    assert not breaker.is_open(10.0) and not breaker.hold(9, 10.0)
    breaker.failed(4, 11.0)
    assert breaker.is_open(11.0)
    assert not breaker.hold(7, 12.0)  # the first to come is the probe
    assert breaker.hold(8, 12.0) and breaker.hold(9, 12.0)
    assert not breaker.hold(7, 40.0)  # the probe goes again, per its backoff
    assert breaker.succeeded() == {8, 9} and not breaker.is_open(50.0)


def test_breaker_forgets_old_failures_and_a_deleted_probe():
    breaker = Breaker()
    for line_id in range(5):
        breaker.failed(line_id, 0.0)
    assert not breaker.is_open(61.0)
    for line_id in range(5):
        breaker.failed(line_id, 100.0)
    breaker.hold(1, 100.0)
    breaker.hold(2, 100.0)
    assert breaker.forget(1) == {2}


def test_global_in_flight_cap():
    pacer = Pacer(PacingSettings(in_flight=2), now=0.0)
    assert pacer.admit("a", True, 0.0) and pacer.admit("b", False, 0.0)
    assert not pacer.admit("c", True, 0.0)
    pacer.done("a")
    assert pacer.admit("c", True, 0.0)
