"""Every failure mode of a provider's registrar, played by SIPp (docs/behaviour.md#check-real-registrars; docs/behaviour.md#reg-retry, docs/behaviour.md#reg-status, docs/behaviour.md#checks).

Delays run at SCALE of real time, so a 300 s retry is observed as 6 s.
"""

from __future__ import annotations

import time

import pytest

from tests.interop.conftest import SCALE, add_line
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
    at SCALE, Timer A is 10 ms, and a slow answer on a busy machine is resent before it arrives."""
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
    with SippRegistrar(tmp_path / "sipp", "403") as sipp:
        add_line(sipline, f"127.0.0.1:{sipp.port}", "trunk1", "x")
        first, second = wait_for_attempts(sipp, 2, gap=1.0, timeout=20)[:2]
        assert len(transactions(first)) == 2  # REGISTER, 401, REGISTER with credentials, 403
        assert 300 * SCALE * 0.9 - 0.1 <= second[0][0] - first[-1][0] <= 300 * SCALE * 1.1 + 0.3


def test_c4_503_retry_after_is_honoured(tmp_path, sipline):
    with SippRegistrar(tmp_path / "sipp", "503", retry_after=60) as sipp:
        add_line(sipline, f"127.0.0.1:{sipp.port}", "trunk1", "x")
        first, second = wait_for_attempts(sipp, 2, gap=0.5, timeout=10)[:2]
        assert 60 * SCALE - 0.1 <= second[0][0] - first[-1][0] <= 60 * SCALE + 0.5


# The 11th send goes out at 31.5 s and Timer F fires at 32 s; each Timer E counts from the send before
# it, so a busy loop's lateness adds up while F does not move. At SCALE those 0.5 s are 10 ms, less
# than one late tick on a loaded machine, so this test runs at its own scale: 100 ms apart.
C2_SCALE = 0.2


def test_c2_silence_is_11_sends_then_request_timeout_and_backoff(tmp_path, start_sipline):
    sipline, timer_f = start_sipline(scale=C2_SCALE), 32 * C2_SCALE
    with SippRegistrar(tmp_path / "sipp", "drop") as sipp:
        line = add_line(sipline, f"127.0.0.1:{sipp.port}", "trunk1", "x")
        line.wait("error", timeout=15)
        first, second = wait_for_attempts(sipp, 2, gap=timer_f / 4, timeout=15)[:2]
        assert len(first) == 11
        assert timer_f - 0.05 <= first[-1][0] - first[0][0] + 0.5 * C2_SCALE <= timer_f + 0.3
        assert 15 * C2_SCALE - 0.1 <= second[0][0] - first[0][0] - timer_f <= 30 * C2_SCALE + 0.3  # class T: 15–30 s


def test_a_line_held_by_the_pacing_is_wait_until_its_register_leaves(tmp_path, start_sipline):
    """docs/behaviour.md#reg-status: `in_progress` begins when the first REGISTER leaves the admission queue (docs/behaviour.md#reg-pacing), not when
    the attempt falls due. One transaction in flight per provider, which never answers: the second
    line waits its turn as `wait` until the first one's Timer F, then goes `in_progress`."""
    scale = 0.1
    sipline, timer_f = start_sipline("--provider-in-flight", "1", scale=scale), 32 * scale
    with SippRegistrar(tmp_path / "sipp", "drop") as sipp:
        first = add_line(sipline, f"127.0.0.1:{sipp.port}", "trunk1", "x")
        first.wait("in_progress")
        sent_at = time.monotonic()
        second = add_line(sipline, f"127.0.0.1:{sipp.port}", "trunk2", "x")
        time.sleep(0.5 + 0.5)  # past its first attempt (within 5 s × scale) and a status write
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
    with SippRegistrar(tmp_path / "sipp", "ok", max_expires=120) as sipp:
        line = add_line(sipline, f"127.0.0.1:{sipp.port}", "trunk1", "x")
        line.wait("success")
        groups = wait_for_attempts(sipp, 2, gap=0.3, timeout=10)
        registered_at = groups[0][-1][0]
        assert 54 * SCALE - 0.05 <= groups[1][0][0] - registered_at <= 60 * SCALE + 0.3
        assert "Authorization: Digest" in groups[1][0][1]  # refreshes send credentials up front (docs/behaviour.md#reg-digest)


def test_tcp_provider(tmp_path, sipline):
    with SippRegistrar(tmp_path / "sipp", "ok", transport="tcp") as sipp:
        line = add_line(sipline, f"sip:127.0.0.1:{sipp.port};transport=tcp", "trunk1", "x")
        assert line.wait("success")["STATUS_CODE"] == 200
