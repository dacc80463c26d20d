"""A cloud line's history and log lines (docs/behaviour.md#line-history, docs/behaviour.md#reg-log), with a
hand-stepped clock: the line machine alone, then the core as the runner drives it."""

from __future__ import annotations

import logging
import random

import pytest

from sipline.registration.attempt import Session
from sipline.registration.history import PENDING_KEPT, WARN_AGAIN_AFTER, LineHistory
from sipline.registration.line import LineRegistration, Status
from sipline.registration.outcome import Outcome, OutcomeKind
from sipline.registration.request import Account
from sipline.sip.resolve import Target
from sipline.store.records import Cause, StatusChange, StatusResult
from tests.unit.test_registration_core import Harness, Network, Registrar, line_rows

TARGET = Target("udp", "192.0.2.10", 5060, "sip.example.net")
PASSWORD = "hunter2-secret"
ACCOUNT = Account.from_fields("sip.example.net", None, "100", None, PASSWORD)


def machine() -> LineRegistration:
    return LineRegistration(1, 100001, ACCOUNT, Session(call_id="c1", token="l1"),
                            Status(StatusResult.WAIT, 0, "", 0.0), rng=random.Random(1), first_attempt_at=0.0,
                            history=LineHistory(12, "a.example"))


def attempt(line: LineRegistration, outcome: Outcome, now: float) -> None:
    """One attempt at `now` (wall = now), ending with `outcome`."""
    line.handle_timer(now, now)
    generation = line.begin()
    line.sending(wall=now)
    line.finish(outcome, generation, now, wall=now)


def ok(code: int = 200, sent_at: float = 0.0) -> Outcome:
    return Outcome(OutcomeKind.OK, code, "", granted=600, target=TARGET, sent_at=sent_at)


def failure(kind: OutcomeKind, code: int, message: str) -> Outcome:
    return Outcome(kind, code, message, target=TARGET)


def taken(line: LineRegistration) -> list[tuple[str, int, str, Cause]]:
    return [(entry.result.value, entry.code, entry.message, entry.cause) for entry in line.history.take()]


def records(caplog) -> list[tuple[int, str]]:
    found = [(record.levelno, record.getMessage()) for record in caplog.records if record.name == "sipline.registration"]
    caplog.clear()
    return found


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG, logger="sipline.registration")
    return caplog


def test_a_first_cycle_and_a_refresh_failing_then_lost(logs):
    line = machine()
    attempt(line, ok(), 1.0)
    assert taken(line) == [("in_progress", 0, "", Cause.REGISTERING), ("success", 200, "", Cause.REGISTERED)]
    assert records(logs) == [(logging.INFO, "line 12 (portal a.example): in_progress 0 (registering)"),
                             (logging.INFO, "line 12 (portal a.example): success 200 (registered)")]
    refresh = line.next_attempt_at
    attempt(line, failure(OutcomeKind.SERVER, 503, "Service Unavailable"), refresh)
    # still registered: the status, and so the history, stays; the failure is a warning all the same
    assert status_of(line) == ("success", 200) and taken(line) == []
    assert records(logs) == [(logging.WARNING, "line 12 (portal a.example): failed 503 Service Unavailable "
                                               "(server error); the status stays success")]
    line.handle_timer(600.0, 600.0)  # the binding ends without an OK
    assert taken(line) == [("error", 503, "Service Unavailable", Cause.SERVER_ERROR)]
    assert records(logs) == [(logging.INFO, "line 12 (portal a.example): error 503 Service Unavailable "
                                            "(server error)")]  # warned of 503 less than 10 min ago
    attempt(line, ok(202, sent_at=700.0), 700.0)
    attempt(line, ok(200, sent_at=1000.0), 1000.0)
    assert [cause for *_, cause in taken(line)] == [Cause.REGISTERED, Cause.REFRESHED]  # 202, then 200 after it


def status_of(line: LineRegistration) -> tuple[str, int]:
    return line.status.result.value, line.status.code


@pytest.mark.parametrize(("kind", "code", "message", "cause"), [
    (OutcomeKind.AUTH_FAIL, 401, "Unauthorized", Cause.CHALLENGE_REFUSED),
    (OutcomeKind.AUTH_FAIL, 407, "Proxy Authentication Required", Cause.CHALLENGE_REFUSED),
    (OutcomeKind.AUTH_UNSUPPORTED, 401, "Unsupported digest algorithm: SHA-999", Cause.CHALLENGE_UNSUPPORTED),
    (OutcomeKind.TIMEOUT, 408, "Request Timeout", Cause.TIMEOUT),
    (OutcomeKind.DNS_FAIL, 502, "Unable to resolve hostname", Cause.DNS),
    (OutcomeKind.TRANSPORT, 503, "Connection refused", Cause.TRANSPORT),
    (OutcomeKind.TLS_HANDSHAKE, 503, "TLS handshake failed: timeout", Cause.TLS),
    (OutcomeKind.TLS_CERT, 503, "TLS certificate invalid: expired", Cause.TLS),
    (OutcomeKind.REJECTED, 403, "Forbidden", Cause.REJECTED),
    (OutcomeKind.REJECTED, 404, "Not Found", Cause.REJECTED),
    (OutcomeKind.SERVER, 503, "Service Unavailable", Cause.SERVER_ERROR),
    (OutcomeKind.ZERO_EXPIRY, 200, "Registrar granted zero expiry", Cause.ZERO_EXPIRY),
    (OutcomeKind.FORBIDDEN_TARGET, 403, "Target address 10.0.0.1 is not allowed", Cause.TARGET_REFUSED),
])
def test_each_failure_has_its_cause_and_a_warning_that_names_the_line_and_code(logs, kind, code, message, cause):
    line = machine()
    attempt(line, failure(kind, code, message), 5.0)
    assert taken(line)[-1] == ("error", code, message, cause)
    [*_, (level, text)] = records(logs)
    assert (level, text) == (logging.WARNING, f"line 12 (portal a.example): error {code} {message} ({cause.value})")


def test_a_failures_repeats_warn_once_per_line_and_code_per_ten_minutes(logs):
    line = machine()
    forbidden = failure(OutcomeKind.REJECTED, 403, "Forbidden")
    attempt(line, forbidden, 0.0)
    assert [level for level, _ in records(logs)] == [logging.INFO, logging.WARNING]  # in_progress, then the error
    now = 0.0
    for _ in range(3):  # retried on the slow schedule: 300 s, 900 s, 1800 s later
        now = line.next_attempt_at
        attempt(line, forbidden, now)
        repeats = records(logs)
        if now < WARN_AGAIN_AFTER:
            assert repeats == []  # the same failure again, within 10 min of its warning: nothing
        else:
            assert repeats == [(logging.WARNING, "line 12 (portal a.example): failed 403 Forbidden (rejected); "
                                                 "the status stays error")]
    assert now > 2 * WARN_AGAIN_AFTER and taken(line) == [("in_progress", 0, "", Cause.REGISTERING),
                                                          ("error", 403, "Forbidden", Cause.REJECTED)]
    # another code is another failure: warned at once; back to 403 within 10 min of its last warning: not
    attempt(line, failure(OutcomeKind.REJECTED, 404, "Not Found"), now + 10)
    attempt(line, forbidden, now + 20)
    assert [level for level, _ in records(logs)] == [logging.WARNING, logging.INFO]


def test_flapping_between_success_and_a_failure_warns_once_per_ten_minutes(logs):
    line = machine()
    for minute in range(12):
        now = minute * 60.0
        attempt(line, ok(sent_at=now), now)
        attempt(line, failure(OutcomeKind.REJECTED, 403, "Forbidden"), now + 1)
    warnings = [text for level, text in records(logs) if level == logging.WARNING]
    assert len(warnings) == 2  # at 0 s and at 661 s; every change is still an INFO line
    assert len(taken(line)) == 1 + 2 * 12  # in_progress, then every success and error


def test_an_update_is_logged_and_left_to_the_update_to_record_register_now_is_recorded(logs):
    line = machine()
    attempt(line, failure(OutcomeKind.REJECTED, 403, "Forbidden"), 0.0)
    line.history.take()
    records(logs)
    line.reconfigure(Account.from_fields("sip.example.net", None, "100", None, "new-password"), 10.0, 10.0)
    assert taken(line) == []  # telephony writes "line updated" with the update itself
    assert records(logs) == [(logging.INFO, "line 12 (portal a.example): wait 0 (line updated)")]
    attempt(line, ok(sent_at=20.0), 20.0)
    line.register_now(30.0, 30.0)
    assert [cause for *_, cause in taken(line)] == [Cause.REGISTERING, Cause.REGISTERED, Cause.REGISTER_NOW]


def test_log_records_carry_the_fields_and_no_secret(logs):
    line = machine()
    attempt(line, failure(OutcomeKind.AUTH_FAIL, 401, "Unauthorized"), 0.0)
    record = [record for record in logs.records if record.levelno == logging.WARNING][0]
    assert (record.config_id, record.portal, record.code, record.reason, record.cause, record.provider) == (
        12, "a.example", 401, "Unauthorized", "challenge refused", "sip:sip.example.net")
    assert all(PASSWORD not in f"{record.getMessage()} {record.__dict__}" for record in logs.records)


def test_entries_wait_for_the_store_bounded_and_come_back_after_a_failed_write():
    history = LineHistory(1, "p")
    for number in range(PENDING_KEPT + 20):
        history.noted(StatusChange(float(number), StatusResult.ERROR, 408, "", Cause.TIMEOUT))
    batch = history.take()
    assert [entry.at for entry in batch] == [float(n) for n in range(20, PENDING_KEPT + 20)]
    history.noted(StatusChange(500.0, StatusResult.SUCCESS, 200, "", Cause.REGISTERED))
    history.put_back(batch)  # the write failed: the next batch has them again, oldest first, still bounded
    assert [entry.at for entry in history.take()] == [float(n) for n in range(21, PENDING_KEPT + 20)] + [500.0]
    assert history.take() == ()


# -- the core, as the runner drives it ------------------------------------------------------------------


def test_the_store_batches_carry_each_change_once_and_again_after_a_failed_write():
    registrar = Registrar(challenge=False)
    harness = Harness(line_rows(1), Network(registrar))
    written: list[StatusChange] = []
    original = harness.write

    def write(updates):
        for update in updates:
            written.extend(update.history)
        original(updates)

    harness.write = write  # type: ignore[method-assign]
    harness.run_until(10.0)
    assert [(entry.result, entry.cause) for entry in written] == [
        (StatusResult.IN_PROGRESS, Cause.REGISTERING), (StatusResult.SUCCESS, Cause.REGISTERED)]
    assert written[1].at == harness.core.lines[1].status.updated_at  # TIME is LAST_UPDATED's wall clock
    harness.core.register_now(1, harness.now)
    lost = harness.core.store_writes(everything=True)
    assert [entry.cause for update in lost for entry in update.history] == [Cause.REGISTER_NOW]
    harness.core.writes_failed(lost, harness.now)
    again = harness.core.store_writes(everything=True)
    assert [entry.cause for update in again for entry in update.history] == [Cause.REGISTER_NOW]


def test_lines_taken_over_are_recorded_as_moved_and_an_interrupted_attempt_as_restarted():
    harness = Harness([], Network(Registrar(challenge=False)))
    [(line, registration)] = line_rows(1)
    interrupted = registration.__class__(**{**registration.__dict__, "status_result": StatusResult.IN_PROGRESS})
    harness.core.resume([(line, interrupted)], harness.now)
    [update] = harness.core.store_writes(everything=True)
    assert [(entry.result, entry.cause) for entry in update.history] == [(StatusResult.WAIT, Cause.RESTARTED)]
    [(other, stored), (new, fresh)] = line_rows(3)[1:]
    worked = stored.__class__(**{**stored.__dict__, "cseq_reserved": 2000})  # a worker had it: CSeqs reserved
    harness.core.adopt([(other, worked), (new, fresh)], harness.now)
    updates = {update.line_id: update for update in harness.core.store_writes(everything=True)}
    assert [(entry.result, entry.cause) for entry in updates[2].history] == [(StatusResult.WAIT, Cause.LEASE_MOVED)]
    assert updates[3].history == ()  # a new line is taken through a lease too: not "moved"
