"""A line's registration over time, with a hand-driven clock (docs/behaviour.md#cloud-registration; docs/behaviour.md#check-dns-fail, docs/behaviour.md#check-auth-rejected, docs/behaviour.md#check-refresh-failure, docs/behaviour.md#check-short-grant)."""

from __future__ import annotations

import random

import pytest

from sipline.registration import schedule
from sipline.registration.attempt import Session
from sipline.registration.line import LineRegistration, Status
from sipline.registration.outcome import Outcome, OutcomeKind
from sipline.registration.request import Account
from sipline.sip.resolve import Target
from sipline.store.records import StatusResult

TARGET = Target("udp", "192.0.2.10", 5060, "sip.example.net")
ACCOUNT = Account.from_fields("sip.example.net", None, "100", None, "secret")


def machine(seed: int = 1, retries: schedule.Retries = schedule.Retries()) -> LineRegistration:
    return LineRegistration(1, 100001, ACCOUNT, Session(call_id="c1", token="l1"),
                            Status(StatusResult.WAIT, 0, "", 0.0), rng=random.Random(seed), first_attempt_at=0.0,
                            retries=retries)


def ok(granted: int = 600, sent_at: float = 0.0) -> Outcome:
    return Outcome(OutcomeKind.OK, 200, "", granted=granted, target=TARGET, sent_at=sent_at)


def run(line: LineRegistration, outcome: Outcome, now: float) -> None:
    assert line.handle_timer(now, wall=now)
    generation = line.begin()
    line.sending(wall=now)
    line.finish(outcome, generation, now, wall=now)


def status(line: LineRegistration) -> tuple[str, int, str]:
    return line.status.result.value, line.status.code, line.status.message


def test_first_cycle_statuses_a7():
    line = machine()
    assert line.handle_timer(0.0, 0.0)
    line.begin()
    assert status(line) == ("wait", 0, "")  # queued for pacing (docs/behaviour.md#reg-pacing): no REGISTER has left yet
    line.sending(wall=1.0)
    assert status(line) == ("in_progress", 0, "") and line.status.updated_at == 1.0
    line.finish(ok(), line.generation, 2.0, wall=2.0)
    assert status(line) == ("success", 200, "") and line.sticky == TARGET


def test_c1_dns_failure_and_next_attempt_15_to_30_seconds_later():
    for seed in range(20):
        line = machine(seed)
        run(line, Outcome(OutcomeKind.DNS_FAIL, 502, "Unable to resolve hostname"), 0.0)
        assert status(line) == ("error", 502, "Unable to resolve hostname")
        assert 15 <= line.next_attempt_at <= 30


def test_c3_rejections_retry_after_300_900_1800_then_hourly():
    line = machine()
    now = 0.0
    steps = []
    for _ in range(6):
        run(line, Outcome(OutcomeKind.AUTH_FAIL, 401, "Unauthorized"), now)
        steps.append(line.next_attempt_at - now)
        now = line.next_attempt_at
    for step, expected in zip(steps, (300, 900, 1800, 3600, 3600, 3600)):
        assert expected * 0.9 <= step <= expected * 1.1
    assert status(line) == ("error", 401, "Unauthorized")


def test_the_first_waits_are_settings_and_the_steps_keep_their_proportions():
    """--retry-interval 0.6 and --rejected-retry-interval 6: class T waits 0.3–0.6 s, then 0.6–1.2 s;
    class R 6 s, 18 s, 36 s, then every 72 s (docs/behaviour.md#reg-retry)."""
    for seed in range(20):
        line = machine(seed, schedule.Retries(transient=0.6, rejected=6.0))
        run(line, Outcome(OutcomeKind.TIMEOUT, 408, "Request Timeout"), 0.0)
        assert 0.3 <= line.next_attempt_at <= 0.6
        now = line.next_attempt_at
        run(line, Outcome(OutcomeKind.TIMEOUT, 408, "Request Timeout"), now)
        assert 0.6 <= line.next_attempt_at - now <= 1.2
    line, now, steps = machine(retries=schedule.Retries(transient=0.6, rejected=6.0)), 0.0, []
    for _ in range(5):
        run(line, Outcome(OutcomeKind.REJECTED, 403, "Forbidden"), now)
        steps.append(line.next_attempt_at - now)
        now = line.next_attempt_at
    for step, expected in zip(steps, (6, 18, 36, 72, 72), strict=True):
        assert expected * 0.9 <= step <= expected * 1.1


def test_a_binding_lives_as_long_as_granted_and_a_retry_comes_within_half_of_what_is_left():
    line = machine(retries=schedule.Retries(transient=0.6, rejected=6.0))
    run(line, ok(12, sent_at=0.0), 0.0)
    assert line.binding_deadline == 12.0 and 5.4 <= line.next_attempt_at <= 6.0  # G/2 less up to 5 %
    run(line, Outcome(OutcomeKind.SERVER, 503, "Service Unavailable", retry_after=60), 8.0)
    assert line.next_attempt_at == 10.0 and status(line) == ("success", 200, "")  # 4 s left: within 2 s


def test_c4_rejection_on_refresh_is_error_at_once():
    line = machine()
    run(line, ok(600), 0.0)
    run(line, Outcome(OutcomeKind.REJECTED, 403, "Forbidden"), line.next_attempt_at)
    assert status(line) == ("error", 403, "Forbidden")


def test_c4_transient_failure_on_refresh_keeps_success_until_the_binding_ends():
    line = machine()
    run(line, ok(600), 0.0)  # binding until 600
    first_refresh = line.next_attempt_at
    run(line, Outcome(OutcomeKind.SERVER, 503, "Service Unavailable"), first_refresh)
    assert status(line) == ("success", 200, "")
    left = 600 - first_refresh
    assert line.next_attempt_at - first_refresh <= left / 2  # retry within half of what is left (docs/behaviour.md#reg-retry)
    while line.next_deadline() < 600:
        deadline = line.next_deadline()
        if line.handle_timer(deadline, deadline):
            line.finish(Outcome(OutcomeKind.SERVER, 503, "Service Unavailable"), line.begin(), deadline, deadline)
        assert status(line) == ("success", 200, "")
    line.handle_timer(600.0, 600.0)
    assert status(line) == ("error", 503, "Service Unavailable") and line.status.updated_at == 600.0
    run(line, ok(600, sent_at=line.next_attempt_at), line.next_attempt_at)
    assert status(line) == ("success", 200, "")


def test_c5_granted_expiry_not_requested_sets_the_refresh():
    for seed in range(20):
        line = machine(seed)
        run(line, ok(120, sent_at=0.0), 0.0)
        assert 54 <= line.next_attempt_at <= 60  # G/2 minus up to 5 % jitter


def test_refresh_rule_for_long_grants():
    rng = random.Random(3)
    for _ in range(50):
        assert 3000 - 30 <= schedule.refresh_delay(3600, rng) <= 3000
        assert schedule.refresh_delay(6, rng) == 5.0  # never below 5 s


def test_transient_backoff_grows_and_respects_retry_after():
    rng = random.Random(5)
    for failures, low, high in ((0, 15, 30), (1, 30, 60), (5, 480, 960), (9, 900, 1800), (40, 900, 1800)):
        assert low <= schedule.transient_delay(failures, None, None, rng) <= high
    assert schedule.transient_delay(0, 120, None, rng) == 120
    assert schedule.transient_delay(0, 99999, None, rng) == 3600
    assert schedule.transient_delay(5, None, 100, rng) == 50


def test_errors_retry_without_passing_through_in_progress():
    line = machine()
    run(line, Outcome(OutcomeKind.TIMEOUT, 408, "Request Timeout"), 0.0)
    changed_at = line.status.updated_at
    assert line.handle_timer(line.next_attempt_at, 100.0)
    line.begin()
    line.sending(wall=100.0)
    assert status(line) == ("error", 408, "Request Timeout") and line.status.updated_at == changed_at
    line.finish(Outcome(OutcomeKind.TIMEOUT, 408, "Request Timeout"), line.generation, 100.0, wall=100.0)
    assert line.status.updated_at == changed_at  # LAST_UPDATED only moves on change


def test_password_change_keeps_the_call_id_identity_change_does_not():
    line = machine()
    run(line, ok(), 0.0)
    line.session.nonces["r"] = object()  # type: ignore[assignment]
    assert line.reconfigure(Account.from_fields("sip.example.net", None, "100", None, "new"), 10.0, 10.0) is None
    assert line.session.call_id == "c1" and not line.session.nonces
    assert status(line) == ("wait", 0, "") and line.next_attempt_at == 10.0
    run(line, ok(), 10.0)
    old = line.reconfigure(Account.from_fields("other.example.net", None, "100", None, "new"), 20.0, 20.0)
    assert old is not None and old[1].call_id == "c1"  # the old binding is removed with the old identity
    assert line.session.call_id != "c1" and line.session.cseq == 0 and line.session.token == "l1"
    assert line.sticky is None and status(line) == ("wait", 0, "")


def test_outcomes_of_attempts_begun_before_a_change_are_dropped():
    line = machine()
    assert line.handle_timer(0.0, 0.0)
    generation = line.begin()
    line.reconfigure(Account.from_fields("sip.example.net", None, "100", None, "new"), 1.0, 1.0)
    line.finish(Outcome(OutcomeKind.AUTH_FAIL, 401, "Unauthorized"), generation, 2.0, 2.0)
    assert status(line) == ("wait", 0, "") and line.next_attempt_at == 1.0


def test_nat_is_learned_once_from_via():
    line = machine()
    line.session.registered_contact = "sip:l1@10.0.0.5:5060;transport=udp;line=l1"
    outcome = Outcome(OutcomeKind.OK, 200, "", granted=600, target=TARGET, sent_at=0.0, observed=("203.0.113.9", 4000))
    run(line, outcome, 0.0)
    assert line.session.contact_address == ("203.0.113.9", 4000) and line.nat_learned
    assert line.next_attempt_at == 0.0  # re-register at once with the learned address
    line.session.registered_contact = "sip:l1@203.0.113.9:4000;transport=udp;line=l1"
    run(line, outcome, 0.0)
    assert line.next_attempt_at > 200


@pytest.mark.parametrize("kind", [OutcomeKind.TLS_CERT, OutcomeKind.AUTH_UNSUPPORTED, OutcomeKind.FORBIDDEN_TARGET])
def test_other_rejections_use_the_slow_schedule(kind):
    line = machine()
    run(line, Outcome(kind, 503, "x"), 0.0)
    assert 270 <= line.next_attempt_at <= 330
