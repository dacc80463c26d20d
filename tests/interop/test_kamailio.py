"""Cloud lines registering with Kamailio, a real registrar (docs/behaviour.md#check-real-registrars; docs/behaviour.md#cloud-registration, docs/behaviour.md#check-delete)."""

from __future__ import annotations

import signal

import httpx

from tests.integration.server import SiplineProcess
from tests.interop.conftest import FAST, add_line
from tests.peers.kamailio import Kamailio
from tests.waiting import wait_until


def server(kamailio: Kamailio, transport: str | None = None) -> str:
    suffix = f";transport={transport}" if transport else ""
    return f"sip:127.0.0.1:{kamailio.port}{suffix}" if transport else f"127.0.0.1:{kamailio.port}"


def test_right_password_registers_and_kamailio_holds_our_contact(kamailio, sipline):
    line = add_line(sipline, server(kamailio), "user0001")
    status = line.wait("success")
    assert (status["STATUS_CODE"], status["ERROR_MESSAGE"]) == (200, "")
    (binding,) = kamailio.bindings("user0001")
    assert binding["Address"].startswith("sip:l") and f"@127.0.0.1:{sipline.sip_port};transport=udp;line=l" in binding["Address"]
    assert binding["User-Agent"].startswith("sipline/")
    row = httpx.post(sipline.webhook + "voximplant.sip.get").json()["result"][0]
    assert (row["REGISTRATION_STATUS_CODE"], row["REGISTRATION_ERROR_MESSAGE"]) == ("200", "")


def test_wrong_password_is_error_with_kamailios_code_and_phrase(kamailio, sipline):
    line = add_line(sipline, server(kamailio), "user0002", "not-the-password")
    status = line.wait("error")
    assert (status["STATUS_CODE"], status["ERROR_MESSAGE"]) == (401, "Unauthorized")
    assert kamailio.bindings("user0002") == []
    row = httpx.post(sipline.webhook + "voximplant.sip.get").json()["result"][0]
    assert (row["REGISTRATION_STATUS_CODE"], row["REGISTRATION_ERROR_MESSAGE"]) == ("401", "Unauthorized")


def test_unknown_user_is_rejected_with_kamailios_403(kamailio, sipline):
    status = add_line(sipline, server(kamailio), "nobody").wait("error")
    assert (status["STATUS_CODE"], status["ERROR_MESSAGE"]) == (403, "Forbidden - unknown user")


def test_tcp_transport(kamailio, sipline):
    line = add_line(sipline, server(kamailio, "tcp"), "user0004")
    line.wait("success")
    (binding,) = kamailio.bindings("user0004")
    assert ";transport=tcp;" in binding["Address"] and binding["Socket"].startswith("tcp:")


def test_c8_delete_removes_the_binding_with_one_expires_zero(kamailio, sipline):
    line = add_line(sipline, server(kamailio), "user0005")
    line.wait("success")
    assert len(kamailio.bindings("user0005")) == 1
    line.delete()
    wait_until(lambda: kamailio.bindings("user0005") == [], 5)


def test_password_change_keeps_the_call_id_identity_change_moves_the_binding(kamailio, sipline):
    line = add_line(sipline, server(kamailio), "user0006")
    line.wait("success")
    (before,) = kamailio.bindings("user0006")
    line.update(PASSWORD="wrong")
    assert line.status()["STATUS_RESULT"] in ("wait", "in_progress", "error")
    line.wait("error")
    line.update(PASSWORD="pwuser0006")
    line.wait("success")
    (after,) = kamailio.bindings("user0006")
    assert after["Call-ID"] == before["Call-ID"] and int(after["CSeq"]) > int(before["CSeq"])
    line.update(LOGIN="user0007", PASSWORD="pwuser0007")
    line.wait("success")
    wait_until(lambda: kamailio.bindings("user0006") == [], 5)  # unregistered with the old identity
    (moved,) = kamailio.bindings("user0007")
    assert moved["Call-ID"] != before["Call-ID"]


def test_sigkill_and_restart_come_back_without_duplicate_bindings(kamailio, start_sipline, tmp_path):
    first = start_sipline()
    lines = [add_line(first, server(kamailio), f"user{number:04d}") for number in range(10, 16)]
    for line in lines:
        line.wait("success")
    before = {f"user{number:04d}": kamailio.bindings(f"user{number:04d}")[0] for number in range(10, 16)}
    first.kill(signal.SIGKILL)
    again = SiplineProcess(tmp_path / "sipline", "--allow-private-targets", *FAST, port=first.port,
                           sip_port=first.sip_port).start()
    try:
        code_path = first.webhook.split("/rest/")[1]
        for line in lines:
            line.webhook = f"{again.base_url}/rest/{code_path}"
            assert line.status()["STATUS_RESULT"] == "success"  # kept across the restart
        def refreshed() -> dict[str, list[dict[str, str]]]:
            now = {user: kamailio.bindings(user) for user in before}
            done = all(int(bindings[0]["CSeq"]) > int(before[user]["CSeq"]) for user, bindings in now.items() if bindings)
            return now if done else {}

        now = wait_until(refreshed, 15, interval=0.1)
        for user, bindings in now.items():
            assert len(bindings) == 1, bindings  # the same Contact, refreshed: no duplicate
            assert bindings[0]["Address"] == before[user]["Address"] and bindings[0]["Call-ID"] == before[user]["Call-ID"]
            assert int(bindings[0]["CSeq"]) > int(before[user]["CSeq"])
    finally:
        again.stop()


def test_a_line_registers_in_one_transaction_with_the_nonce_another_line_was_accepted_with(kamailio, sipline):
    first = add_line(sipline, server(kamailio), "user0020")
    first.wait("success")
    (binding,) = kamailio.bindings("user0020")
    assert int(binding["CSeq"]) == 2  # REGISTER → 401 → REGISTER with credentials → 200
    second = add_line(sipline, server(kamailio), "user0021")
    second.wait("success")
    (binding,) = kamailio.bindings("user0021")
    assert int(binding["CSeq"]) == 1  # credentials with user0020's nonce → 200 at once
    wrong = add_line(sipline, server(kamailio), "user0022", "not-the-password")
    status = wrong.wait("error")  # the shared nonce refused, Kamailio's own challenge answered, refused
    assert (status["STATUS_CODE"], status["ERROR_MESSAGE"]) == (401, "Unauthorized")


def test_a_registrar_that_binds_nonces_to_their_line_gets_none_shared(start_sipline, tmp_path):
    # auth_checks_register 2: Kamailio takes a nonce only with the Call-ID it was issued for
    with Kamailio(tmp_path / "kamailio-checks", defines={"KAM_AUTH_CHECKS": "2"}) as bound:
        sipline = start_sipline(env={"SIPLINE_LOG_LEVEL": "info", "SIPLINE_TEST_LOG_LEVEL": "info"})
        for number in (30, 31, 32):
            add_line(sipline, server(bound), f"user00{number}").wait("success")
            assert len(bound.bindings(f"user00{number}")) == 1
        refused = "refused a nonce issued for another line"
        assert sipline.stderr().count(refused) == 1, sipline.stderr()[-2000:]
