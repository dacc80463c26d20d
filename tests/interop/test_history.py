"""What `sipline.sip.history`, `sipline.sip.trace`, the log and /metrics show of real peers' answers
(docs/behaviour.md#line-history, docs/behaviour.md#line-trace, docs/behaviour.md#reg-log,
docs/behaviour.md#office-log): SIPp playing a provider's failure modes, Kamailio as a registrar, SIPp as an
office PBX."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.server import SiplineProcess
from tests.interop.conftest import Line, add_line
from tests.interop.test_office_registrar import MD5_FIRST, NO_ABUSE_LIMITS, Office, register_from_a_free_port
from tests.metrics import value
from tests.peers import sipp
from tests.peers.sipp import SippRegistrar
from tests.waiting import wait_until


def history(line: Line) -> list[dict]:
    response = httpx.post(line.webhook + "sipline.sip.history", json={"CONFIG_ID": line.config_id})
    assert response.status_code == 200, response.text
    return response.json()["result"]


def summary(line: Line) -> list[tuple[str, int, str]]:
    return [(entry["STATUS_RESULT"], entry["STATUS_CODE"], entry["CAUSE"]) for entry in history(line)]


def trace(line: Line) -> list[dict]:
    response = httpx.post(line.webhook + "sipline.sip.trace", json={"CONFIG_ID": line.config_id})
    assert response.status_code == 200, response.text
    return response.json()["result"]


def logged(process: SiplineProcess) -> str:
    return (process.data_dir / "stderr.log").read_text(errors="replace")


def wait_for_history(line: Line, expected: list[tuple[str, int, str]], timeout: float = 10.0) -> list[dict]:
    wait_until(lambda: summary(line) == expected, timeout, message=lambda: f"history {summary(line)}, wanted {expected}")
    return history(line)


@pytest.mark.parametrize(
    ("mode", "code", "message", "cause"),
    [
        ("401", 401, "Unauthorized", "challenge refused"),  # a second 401, to our credentials
        ("403", 403, "Forbidden", "rejected"),
        ("404", 404, "Not Found", "rejected"),
        ("503", 503, "Service Unavailable", "server error"),
        ("drop", 408, "Request Timeout", "timeout"),  # no answer: Timer F
    ],
)
def test_each_failure_mode_is_in_the_history_the_trace_the_log_and_the_metrics(
    tmp_path, sipline, mode, code, message, cause
):
    assert value(sipline.base_url, "sipline_registrations", status="error") == 0
    with SippRegistrar(tmp_path / "sipp", mode) as provider:
        line = add_line(sipline, f"127.0.0.1:{provider.port}", "trunk1", "pw-trunk1-secret")
        [newest, first] = wait_for_history(line, [("error", code, cause), ("in_progress", 0, "registering")])
    assert newest["ERROR_MESSAGE"] == message and first["ERROR_MESSAGE"] == ""
    assert newest["CONTACT"] is newest["SOURCE"] is newest["TRANSPORT"] is None
    line_text = f"WARNING sipline.registration: line {line.config_id} (portal 127.0.0.1): error {code} {message} ({cause})"
    wait_until(lambda: line_text in logged(sipline), 5, message=lambda: logged(sipline)[-2000:])
    assert "pw-trunk1-secret" not in logged(sipline) and "response=" not in logged(sipline)
    # the trace: the REGISTER that went out and what came back (for "drop", only its retransmissions)
    messages = trace(line)
    assert messages[0]["DIRECTION"] == "out" and messages[0]["MESSAGE"].startswith("REGISTER sip:")
    assert all(message["REMOTE"] == f"127.0.0.1:{provider.port}" for message in messages)
    answers = [message["MESSAGE"].split("\r\n", 1)[0] for message in messages if message["DIRECTION"] == "in"]
    if mode == "drop":
        assert answers == [] and len(messages) > 1  # retransmitted, never answered
    else:
        assert answers[-1] == f"SIP/2.0 {code} {message}"
    text = "".join(message["MESSAGE"] for message in messages)
    assert "pw-trunk1-secret" not in text
    if mode == "401":  # our credentials went out: the digest response is not shown
        assert 'response="…"' in text and 'cnonce="…"' in text
    # the metrics moved
    assert value(sipline.base_url, "sipline_registrations", status="error") == 1
    assert value(sipline.base_url, "sipline_sip_messages_sent_total", kind="request") >= len(
        [message for message in messages if message["DIRECTION"] == "out"])
    assert value(sipline.base_url, "sipline_sip_messages_received_total") >= len(answers)


def test_an_unresolvable_name_is_dns(sipline):
    line = add_line(sipline, "sip.provider.invalid", "trunk1", "x")
    [entry] = wait_for_history(line, [("error", 502, "dns")])
    assert entry["ERROR_MESSAGE"] == "Unable to resolve hostname"
    assert f"line {line.config_id} (portal 127.0.0.1): error 502 Unable to resolve hostname (dns)" in logged(sipline)
    assert trace(line) == []  # nothing was sent
    assert value(sipline.base_url, "sipline_registrations", status="error") == 1


def test_kamailio_registered_then_a_wrong_password_is_a_refused_challenge(kamailio, start_sipline):
    process = start_sipline(env={"SIPLINE_TEST_LOG_LEVEL": "info"})
    line = add_line(process, f"127.0.0.1:{kamailio.port}", "user0001")
    wait_for_history(line, [("success", 200, "registered"), ("in_progress", 0, "registering")])
    line.update(PASSWORD="not-the-password")
    wait_for_history(line, [("error", 401, "challenge refused"), ("in_progress", 0, "registering"),
                            ("wait", 0, "line updated"), ("success", 200, "registered"),
                            ("in_progress", 0, "registering")])
    text = logged(process)
    assert f"INFO sipline.registration: line {line.config_id} (portal 127.0.0.1): success 200 (registered)" in text
    assert f"INFO sipline.registration: line {line.config_id} (portal 127.0.0.1): wait 0 (line updated)" in text
    assert "not-the-password" not in text and "pwuser0001" not in text


def test_an_office_pbx_registering_and_leaving_is_in_the_history_and_the_log(start_sipline, tmp_path):
    registrar = start_sipline(*MD5_FIRST, *NO_ABUSE_LIMITS, env={"SIPLINE_TEST_LOG_LEVEL": "info"})
    office = Office(registrar)
    port, answer = register_from_a_free_port(registrar, tmp_path, [office.user])
    assert answer == ["result 200 expires=600"]
    [added] = wait_for_history(office, [("success", 200, "binding added")])
    contact = f"sip:{office.user[0]}@127.0.0.1:{port};transport=udp"
    assert (added["CONTACT"], added["SOURCE"], added["TRANSPORT"]) == (contact, f"127.0.0.1:{port}", "udp")
    # the PBX refreshes from the same place: nothing new; then it leaves (Contact: *, Expires 0)
    assert sipp.register_office(tmp_path / "again", registrar.sip_port, port, [office.user]) == [
        "result 200 expires=600"]
    assert summary(office) == [("success", 200, "binding added")]
    sipp.register_office(tmp_path / "bye", registrar.sip_port, port, [office.user], wildcard=True, expires=0)
    [removed, _] = wait_for_history(office, [("wait", 0, "binding removed"), ("success", 200, "binding added")])
    assert removed["CONTACT"] == contact
    text = logged(registrar)
    for cause in ("binding added", "binding removed"):
        assert f"INFO sipline.registrar: line {office.config_id}: {cause} {contact} from udp 127.0.0.1:{port}" in text
    assert office.user[1] not in text  # INCOMING_PASSWORD
