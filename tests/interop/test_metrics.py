"""The SIP side's metrics against real peers (README "Metrics"): SIPp as an office PBX moves the
registrar's counters and the bindings gauge, Kamailio as a provider the registrations and requests."""

from __future__ import annotations

import socket

from tests.interop.conftest import add_line
from tests.interop.test_office_registrar import MD5_FIRST, NO_ABUSE_LIMITS, Office, raw_register, register
from tests.metrics import by_label, families, value
from tests.waiting import wait_until


def registrar(process, family: str, **labels: str) -> float:
    return value(process.base_url, f"sipline_registrar_{family}", **labels)


def responses(process) -> float:
    return value(process.base_url, "sipline_sip_messages_sent_total", kind="response")


def test_an_office_pbx_moves_the_registrar_counters_and_the_bindings(start_sipline, tmp_path):
    process = start_sipline(*MD5_FIRST, *NO_ABUSE_LIMITS)
    office = Office(process)
    assert (registrar(process, "accepted_total"), registrar(process, "challenged_total"), responses(process)) == (0, 0, 0)
    assert register(process, tmp_path / "udp", [office.user]) == ["result 200 expires=600"]
    # REGISTER → 401 → REGISTER with credentials → 200: both answers counted as sent
    assert (registrar(process, "accepted_total"), registrar(process, "challenged_total"), responses(process)) == (1, 1, 2)
    assert value(process.base_url, "sipline_sip_messages_received_total") >= 2
    assert by_label(process.base_url, "sipline_registrar_bindings", "transport") == {"udp": 1, "tcp": 0, "tls": 0}
    [answer] = register(process, tmp_path / "tcp", [office.user], transport="tcp")
    assert answer.startswith("result 200 ")
    assert by_label(process.base_url, "sipline_registrar_bindings", "transport") == {"udp": 1, "tcp": 1, "tls": 0}
    assert registrar(process, "accepted_total") == 2 and responses(process) == 4

    assert register(process, tmp_path / "bad", [(office.user[0], "not-the-password")]) == ["result 401"]
    refused = by_label(process.base_url, "sipline_registrar_refused_total", "reason")
    assert refused["wrong_credentials"] == 1 and sum(refused.values()) == 1
    # the first REGISTER's challenge, and a new one after the failure
    assert (registrar(process, "challenged_total"), responses(process)) == (4, 6)
    assert registrar(process, "accepted_total") == 2

    assert register(process, tmp_path / "brief", [office.user], expires=30) == ["result 423 60"]
    assert registrar(process, "refused_total", reason="interval_too_brief") == 1
    assert register(process, tmp_path / "gone", [office.user], wildcard=True, expires=0) == ["result 200 none"]
    assert by_label(process.base_url, "sipline_registrar_bindings", "transport") == {"udp": 0, "tcp": 0, "tls": 0}


def test_a_source_blocked_for_failures_is_counted_and_then_dropped(start_sipline, tmp_path):
    process = start_sipline(*MD5_FIRST, "--auth-failures", "1")
    office = Office(process)
    assert registrar(process, "blocked_sources") == 0
    assert register(process, tmp_path / "bad", [(office.user[0], "not-the-password")]) == ["result 401"]
    assert registrar(process, "blocks_total", cause="auth_failures") == 1
    assert registrar(process, "blocks_total", cause="flood") == 0
    assert registrar(process, "blocked_sources") == 1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:  # from the same IP: no answer now
        sock.sendto(raw_register(process, office.user[0], call_id="blocked").encode(), ("127.0.0.1", process.sip_port))
    wait_until(lambda: registrar(process, "dropped_total", reason="blocked") == 1, 5)


def test_a_cloud_line_registered_with_kamailio_moves_the_registrations_and_requests(kamailio, sipline):
    assert value(sipline.base_url, "sipline_sip_messages_sent_total", kind="request") == 0
    assert families(sipline.base_url)["sipline_registration_last_success_time_seconds"].samples == []
    add_line(sipline, f"127.0.0.1:{kamailio.port}", "user0061").wait("success")
    assert by_label(sipline.base_url, "sipline_registrations", "status") == {
        "wait": 0, "in_progress": 0, "success": 1, "error": 0}
    # REGISTER, 401, REGISTER with credentials, 200
    assert value(sipline.base_url, "sipline_sip_messages_sent_total", kind="request") >= 2
    assert value(sipline.base_url, "sipline_sip_messages_received_total") >= 2
    started = value(sipline.base_url, "sipline_registration_engine_start_time_seconds")
    assert 0 < started <= value(sipline.base_url, "sipline_registration_last_success_time_seconds")
