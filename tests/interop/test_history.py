"""What `sipline.sip.history` and the log show of real peers' answers (docs/behaviour.md#line-history,
docs/behaviour.md#reg-log, docs/behaviour.md#office-log): SIPp playing a provider's failure modes, Kamailio as a
registrar, SIPp as an office PBX."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.server import SiplineProcess
from tests.interop.conftest import Line, add_line
from tests.interop.test_office_registrar import MD5_FIRST, NO_ABUSE_LIMITS, Office, register_from_a_free_port
from tests.peers import sipp
from tests.peers.sipp import SippRegistrar
from tests.waiting import wait_until


def history(line: Line) -> list[dict]:
    response = httpx.post(line.webhook + "sipline.sip.history", json={"CONFIG_ID": line.config_id})
    assert response.status_code == 200, response.text
    return response.json()["result"]


def summary(line: Line) -> list[tuple[str, int, str]]:
    return [(entry["STATUS_RESULT"], entry["STATUS_CODE"], entry["CAUSE"]) for entry in history(line)]


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
def test_each_failure_mode_is_in_the_history_and_the_log(tmp_path, sipline, mode, code, message, cause):
    with SippRegistrar(tmp_path / "sipp", mode) as provider:
        line = add_line(sipline, f"127.0.0.1:{provider.port}", "trunk1", "x")
        [newest, first] = wait_for_history(line, [("error", code, cause), ("in_progress", 0, "registering")])
    assert newest["ERROR_MESSAGE"] == message and first["ERROR_MESSAGE"] == ""
    assert newest["CONTACT"] is newest["SOURCE"] is newest["TRANSPORT"] is None
    line_text = f"WARNING sipline.registration: line {line.config_id} (portal 127.0.0.1): error {code} {message} ({cause})"
    wait_until(lambda: line_text in logged(sipline), 5, message=lambda: logged(sipline)[-2000:])
    assert "pwtrunk1" not in logged(sipline) and "response=" not in logged(sipline)


def test_an_unresolvable_name_is_dns(sipline):
    line = add_line(sipline, "sip.provider.invalid", "trunk1", "x")
    [entry] = wait_for_history(line, [("error", 502, "dns")])
    assert entry["ERROR_MESSAGE"] == "Unable to resolve hostname"
    assert f"line {line.config_id} (portal 127.0.0.1): error 502 Unable to resolve hostname (dns)" in logged(sipline)


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
