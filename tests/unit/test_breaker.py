"""The per-provider breaker (docs/behaviour.md#reg-pacing) with a hand-stepped clock."""

from sipline.registration.breaker import BREAKER_WINDOW, RELEASE_SPREAD, Breaker, Breakers
from sipline.store.records import BreakerState, ProviderState

WALL = 1_700_000_000.0


def test_most_lines_down_opens_it_one_probes_the_rest_wait():
    breaker = Breaker("sip.example.net", WALL)
    for line_id in (1, 2, 3, 4):
        breaker.answered(line_id, 0.0, WALL)  # four lines were fine
    assert not breaker.failed(1, 10.0, WALL + 10) and not breaker.failed(2, 10.0, WALL + 10)
    assert breaker.state is BreakerState.CLOSED  # 2 of 4: too few lines
    assert breaker.failed(3, 11.0, WALL + 11)  # 3 of 4: most
    assert (breaker.state, breaker.since) == (BreakerState.OPEN, WALL + 11)
    assert not breaker.hold(4)  # the first to fall due is the probe
    assert breaker.hold(1) and breaker.hold(2)
    assert not breaker.hold(4)  # the probe goes again, on its own backoff
    assert not breaker.failed(4, 40.0, WALL + 40) and breaker.state is BreakerState.OPEN


def test_an_answer_releases_the_held_lines_and_closes_after_the_spread():
    breaker = Breaker("sip.example.net", WALL)
    for line_id in (1, 2, 3):
        breaker.failed(line_id, 0.0, WALL)
    breaker.hold(1)
    breaker.hold(2)
    breaker.hold(3)
    assert breaker.answered(1, 5.0, WALL + 5) == {2, 3}
    assert (breaker.state, breaker.since) == (BreakerState.RECOVERING, WALL + 5)
    assert breaker.next_deadline() == 5.0 + RELEASE_SPREAD
    assert not breaker.hold(2)  # released lines go while recovering
    assert not breaker.handle_timer(5.0 + RELEASE_SPREAD - 1, WALL + 34)
    assert breaker.handle_timer(5.0 + RELEASE_SPREAD, WALL + 35)
    assert (breaker.state, breaker.since, breaker.next_deadline()) == (BreakerState.CLOSED, WALL + 35, None)


def test_a_minority_failing_does_not_open_it():
    breaker = Breaker("sip.example.net", WALL)
    for line_id in range(10):
        breaker.answered(line_id, 0.0, WALL)
    for line_id in range(4):  # 4 of 10
        assert not breaker.failed(line_id, 1.0, WALL + 1)
    assert breaker.state is BreakerState.CLOSED and not breaker.hold(9)


def test_one_failing_line_of_two_does_not_open_it_nor_two_of_two():
    breaker = Breaker("sip.example.net", WALL)
    breaker.answered(1, 0.0, WALL)
    assert not breaker.failed(2, 1.0, WALL)
    assert not breaker.failed(1, 2.0, WALL)  # 2 of 2, under the minimum of 3
    assert breaker.state is BreakerState.CLOSED


def test_outcomes_older_than_the_window_do_not_count():
    breaker = Breaker("sip.example.net", WALL)
    breaker.failed(1, 0.0, WALL)
    breaker.failed(2, 0.0, WALL)
    assert not breaker.failed(3, BREAKER_WINDOW + 1, WALL)  # 1 and 2 are too old
    assert breaker.failed(4, BREAKER_WINDOW + 2, WALL) is False
    assert breaker.failed(5, BREAKER_WINDOW + 3, WALL)


def test_failures_while_recovering_open_it_again():
    breaker = Breaker("sip.example.net", WALL)
    for line_id in (1, 2, 3):
        breaker.failed(line_id, 0.0, WALL)
    breaker.answered(1, 1.0, WALL)
    assert breaker.state is BreakerState.RECOVERING
    for line_id in (2, 3, 4):
        breaker.failed(line_id, 2.0, WALL + 2)
    assert breaker.state is BreakerState.OPEN
    assert not breaker.handle_timer(1.0 + RELEASE_SPREAD, WALL + 31)  # the old release's end changes nothing
    assert breaker.state is BreakerState.OPEN


def test_a_deleted_probe_lets_the_held_lines_go():
    breaker = Breaker("sip.example.net", WALL)
    for line_id in (1, 2, 3):
        breaker.failed(line_id, 0.0, WALL)
    breaker.hold(1)
    breaker.hold(2)
    breaker.hold(3)
    assert breaker.forget(2) == set()
    assert breaker.forget(1) == {3}
    assert not breaker.hold(3)  # it probes now


def test_breakers_keep_the_unsaved_changes_newest_first():
    breakers = Breakers()
    breaker = breakers.for_provider("a.example:5060", WALL)
    for line_id in (1, 2, 3):
        breaker.failed(line_id, 0.0, WALL + 1)
    breakers.changed(breaker)
    taken = breakers.take()
    assert taken == [ProviderState("a.example:5060", BreakerState.OPEN, WALL + 1)] and breakers.take() == []
    breaker.answered(1, 1.0, WALL + 2)
    breakers.changed(breaker)
    breakers.put_back(taken)  # a failed write does not bring back an older state
    assert breakers.take() == [ProviderState("a.example:5060", BreakerState.RECOVERING, WALL + 2)]
    assert breakers.states() == {"a.example:5060": BreakerState.RECOVERING}


def test_a_provider_that_never_fails_keeps_only_the_last_windows_outcomes():
    breaker = Breaker("sip.example.net", WALL)
    for line_id in range(100):
        breaker.answered(line_id, 1.0, WALL)
    breaker.answered(100, BREAKER_WINDOW + 2.0, WALL)
    assert list(breaker.outcomes) == [100]
