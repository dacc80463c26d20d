"""Every failure mode of a provider's registrar, played by SIPp (docs/behaviour.md#check-real-registrars; docs/behaviour.md#reg-retry, docs/behaviour.md#reg-status, docs/behaviour.md#checks).

The delays are short settings (FAST in conftest.py), so a 300 s retry is observed as 6 s.
"""

from __future__ import annotations

import time

import pytest

from tests.interop.conftest import REJECTED_RETRY_INTERVAL, add_line
from tests.peers.sipp import SippRegistrar
from tests.waiting import wait_until


def attempts(registers: list[tuple[float, str]], gap: float) -> list[list[tuple[float, str]]]:
    """REGISTERs grouped into attempts: a pause longer than `gap` starts a new one."""
    groups: list[list[tuple[float, str]]] = []
    for register in registers:
        if groups and register[0] - groups[-1][-1][0] <= gap:
            groups[-1].append(register)
        else:
            groups.append([register])
    return groups


def transactions(group: list[tuple[float, str]]) -> list[tuple[float, str]]:
    """The REGISTERs of an attempt without their retransmissions (a resend keeps its Via branch):
    with T1 at 10 ms (FAST), a slow answer on a busy machine is resent before it arrives."""
    seen: dict[str, tuple[float, str]] = {}
    for register in group:
        seen.setdefault(register[1].split("branch=", 1)[1].split(";", 1)[0].split("\n", 1)[0], register)
    return list(seen.values())


def wait_for_attempts(sipp: SippRegistrar, count: int, gap: float, timeout: float):
    def enough() -> list[list[tuple[float, str]]]:
        groups = attempts(sipp.registers(), gap)
        return groups if len(groups) >= count else []

    return wait_until(enough, timeout,
                      message=lambda: f"saw {len(attempts(sipp.registers(), gap))} attempts, wanted {count}")


@pytest.mark.parametrize(
    ("mode", "result", "code", "message"),
    [
        ("ok", "success", 200, ""),
        ("noauth", "success", 200, ""),
        ("401", "error", 401, "Unauthorized"),
        ("403", "error", 403, "Forbidden"),
        ("404", "error", 404, "Not Found"),
        ("503", "error", 503, "Service Unavailable"),
        ("drop", "error", 408, "Request Timeout"),
        ("dropauth", "error", 408, "Request Timeout"),
    ],
)
def test_each_mode_gives_the_specified_status(tmp_path, sipline, mode, result, code, message):
    with SippRegistrar(tmp_path / "sipp", mode) as sipp:
        line = add_line(sipline, f"127.0.0.1:{sipp.port}", "trunk1", "x")
        status = line.wait(result, timeout=10)
        assert (status["STATUS_CODE"], status["ERROR_MESSAGE"]) == (code, message)


def test_c3_rejections_retry_after_300_seconds(tmp_path, sipline):
    """300 s by default; here --rejected-retry-interval 6 (FAST)."""
    wait = REJECTED_RETRY_INTERVAL
    with SippRegistrar(tmp_path / "sipp", "403") as sipp:
        add_line(sipline, f"127.0.0.1:{sipp.port}", "trunk1", "x")
        first, second = wait_for_attempts(sipp, 2, gap=1.0, timeout=20)[:2]
        assert len(transactions(first)) == 2  # REGISTER, 401, REGISTER with credentials, 403
        assert wait * 0.9 - 0.1 <= second[0][0] - first[-1][0] <= wait * 1.1 + 0.3


def test_c4_503_retry_after_is_honoured(tmp_path, sipline):
    """Retry-After: 2 outlasts the 0.3–0.6 s the backoff would wait (--retry-interval 0.6)."""
    with SippRegistrar(tmp_path / "sipp", "503", retry_after=2) as sipp:
        add_line(sipline, f"127.0.0.1:{sipp.port}", "trunk1", "x")
        first, second = wait_for_attempts(sipp, 2, gap=0.5, timeout=10)[:2]
        assert 2 - 0.1 <= second[0][0] - first[-1][0] <= 2 + 0.5


# The 11th send goes out at 63·T1 and Timer F fires at 64·T1; each Timer E counts from the send before
# it, so a busy loop's lateness adds up while F does not move. With FAST's T1 those T1 are 10 ms, less
# than one late tick on a loaded machine, so this test sets its own: T1 100 ms, class T retries 3–6 s.
C2_T1 = 0.1


def test_c2_silence_is_11_sends_then_request_timeout_and_backoff(tmp_path, start_sipline):
    sipline = start_sipline("--sip-t1", f"{C2_T1}", "--retry-interval", "6")
    timer_f = 64 * C2_T1
    with SippRegistrar(tmp_path / "sipp", "drop") as sipp:
        line = add_line(sipline, f"127.0.0.1:{sipp.port}", "trunk1", "x")
        line.wait("error", timeout=15)
        first, second = wait_for_attempts(sipp, 2, gap=timer_f / 4, timeout=15)[:2]
        assert len(first) == 11
        assert timer_f - 0.05 <= first[-1][0] - first[0][0] + C2_T1 <= timer_f + 0.3
        # class T: 15–30 s by default, 3–6 s here
        assert 3 - 0.1 <= second[0][0] - first[0][0] - timer_f <= 6 + 0.3


def test_a_line_held_by_the_pacing_is_wait_until_its_register_leaves(tmp_path, start_sipline):
    """docs/behaviour.md#reg-status: `in_progress` begins when the first REGISTER leaves the admission queue (docs/behaviour.md#reg-pacing), not when
    the attempt falls due. One transaction in flight per provider, which never answers: the second
    line waits its turn as `wait` until the first one's Timer F, then goes `in_progress`."""
    t1 = 0.05
    sipline, timer_f = start_sipline("--provider-in-flight", "1", "--sip-t1", f"{t1}"), 64 * t1
    with SippRegistrar(tmp_path / "sipp", "drop") as sipp:
        first = add_line(sipline, f"127.0.0.1:{sipp.port}", "trunk1", "x")
        first.wait("in_progress")
        sent_at = time.monotonic()
        second = add_line(sipline, f"127.0.0.1:{sipp.port}", "trunk2", "x")
        time.sleep(0.5 + 0.5)  # past its first attempt (within the 0.1 s new-line spread) and a status write
        assert time.monotonic() - sent_at < timer_f - 0.5, "too slow to tell; the first line timed out"
        assert second.status()["STATUS_RESULT"] == "wait"
        assert first.status()["STATUS_RESULT"] == "in_progress"
        second.wait("in_progress", timeout=timer_f + 2)
        assert first.status()["STATUS_RESULT"] == "error"


def test_c6_interval_too_brief_is_resent_with_min_expires(tmp_path, sipline):
    with SippRegistrar(tmp_path / "sipp", "423") as sipp:
        line = add_line(sipline, f"127.0.0.1:{sipp.port}", "trunk1", "x")
        line.wait("success")
        expires = [message.split("\nExpires: ")[1].split("\r")[0].split("\n")[0] for _, message in sipp.registers()]
        assert expires[0] == "600" and expires[-1] == "3600"


def test_c5_refresh_follows_the_granted_expiry(tmp_path, sipline):
    """docs/behaviour.md#check-short-grant with a grant of 12 s instead of 120 s: the refresh 5.4–6 s later."""
    with SippRegistrar(tmp_path / "sipp", "ok", min_expires=10, max_expires=12) as sipp:
        line = add_line(sipline, f"127.0.0.1:{sipp.port}", "trunk1", "x")
        line.wait("success")
        groups = wait_for_attempts(sipp, 2, gap=0.3, timeout=15)
        registered_at = groups[0][-1][0]
        assert 5.4 - 0.05 <= groups[1][0][0] - registered_at <= 6 + 0.3
        assert "Authorization: Digest" in groups[1][0][1]  # refreshes send credentials up front (docs/behaviour.md#reg-digest)


def test_tcp_provider(tmp_path, sipline):
    with SippRegistrar(tmp_path / "sipp", "ok", transport="tcp") as sipp:
        line = add_line(sipline, f"sip:127.0.0.1:{sipp.port};transport=tcp", "trunk1", "x")
        assert line.wait("success")["STATUS_CODE"] == 200
