"""What `sipline.sip.trace` shows of real peers (docs/behaviour.md#line-trace): Kamailio refusing a wrong password,
SIPp answering 503 or nothing, SIPp as an office PBX; the secrets replaced, the bounds kept, other portals' lines
not found."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import httpx

from tests.integration.operator import cli, error, fields, hook_call
from tests.interop.conftest import Line, add_line
from tests.interop.test_office_registrar import (
    MD5_FIRST,
    NO_ABUSE_LIMITS,
    Office,
    exchange,
    raw_register,
    register_from_a_free_port,
)
from tests.peers.sipp import SippRegistrar
from tests.stores import store_env
from tests.waiting import wait_until

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d\Z")
DIGEST_VALUE = re.compile(r'\b(response|cnonce)="?([^",\s]*)', re.IGNORECASE)


def trace(line: Line) -> list[dict]:
    response = httpx.post(line.webhook + "sipline.sip.trace", json={"CONFIG_ID": line.config_id})
    assert response.status_code == 200, response.text
    return response.json()["result"]


def ladder(entries: list[dict]) -> list[tuple[str, str]]:
    """(DIRECTION, start line) of each message: the ladder's arrows."""
    return [(entry["DIRECTION"], entry["MESSAGE"].split("\r\n", 1)[0]) for entry in entries]


def wait_for_trace(line: Line, done, timeout: float = 10.0) -> list[dict]:
    return wait_until(lambda: (entries := trace(line)) and done(entries) and entries, timeout,
                      message=lambda: f"trace {ladder(trace(line))}")


def branch(entry: dict) -> str:
    return re.search(r"branch=([^;\r\n]+)", entry["MESSAGE"]).group(1)


def assert_well_formed(entries: list[dict], local: str, remote: str) -> None:
    assert [entry["TIME"] for entry in entries] == sorted(entry["TIME"] for entry in entries)  # oldest first
    for entry in entries:
        assert TIME.match(entry["TIME"]), entry["TIME"]
        assert (entry["TRANSPORT"], entry["LOCAL"], entry["REMOTE"]) == ("udp", local, remote)
        assert "\r\n\r\n" in entry["MESSAGE"] and "Call-ID: " in entry["MESSAGE"]  # whole messages, as sent


def test_kamailio_refusing_a_wrong_password_shows_both_challenges_and_no_secret(kamailio, sipline):
    line = add_line(sipline, f"127.0.0.1:{kamailio.port}", "user0001", "not-the-password")
    line.wait("error")
    entries = wait_for_trace(line, lambda entries: len(entries) >= 4 and entries[-1]["DIRECTION"] == "in")
    arrows = ladder(entries)
    assert arrows[-4:] == [
        ("out", f"REGISTER sip:127.0.0.1:{kamailio.port} SIP/2.0"),
        ("in", "SIP/2.0 401 Unauthorized"),
        ("out", f"REGISTER sip:127.0.0.1:{kamailio.port} SIP/2.0"),
        ("in", arrows[-1][1]),
    ]
    assert arrows[-1][1] in ("SIP/2.0 401 Unauthorized", "SIP/2.0 403 Forbidden")
    assert_well_formed(entries, f"127.0.0.1:{sipline.sip_port}", f"127.0.0.1:{kamailio.port}")
    challenge, answered = entries[-3]["MESSAGE"], entries[-2]["MESSAGE"]
    nonce = re.search(r'nonce="([^"]+)"', challenge).group(1)
    assert "Authorization: Digest " in answered and f'nonce="{nonce}"' in answered  # the nonce stays
    assert 'username="user0001"' in answered and 'response="…"' in answered
    assert {value for _, value in DIGEST_VALUE.findall(answered)} == {"…"}  # response (and cnonce, if any) hidden
    everything = "".join(entry["MESSAGE"] for entry in entries)
    assert "not-the-password" not in everything
    assert branch(entries[-4]) != branch(entries[-2]) and branch(entries[-3]) == branch(entries[-4])


def test_sipp_answering_503_shows_the_register_and_the_answer(tmp_path, sipline):
    with SippRegistrar(tmp_path / "sipp", "503") as provider:
        line = add_line(sipline, f"127.0.0.1:{provider.port}", "trunk1", "x")
        entries = wait_for_trace(line, lambda entries: any("503" in arrow for _, arrow in ladder(entries)))
    first_503 = next(index for index, (_, arrow) in enumerate(ladder(entries)) if "503" in arrow)
    assert ladder(entries)[first_503] == ("in", "SIP/2.0 503 Service Unavailable")
    assert ladder(entries)[first_503 - 1][0] == "out"
    assert_well_formed(entries, f"127.0.0.1:{sipline.sip_port}", f"127.0.0.1:{provider.port}")


def test_no_answer_shows_only_retransmissions_and_keeps_the_last_three_transactions(tmp_path, sipline):
    with SippRegistrar(tmp_path / "sipp", "drop") as provider:
        line = add_line(sipline, f"127.0.0.1:{provider.port}", "trunk1", "x")
        # Timer F is 0.64 s with --sip-t1 0.01 and a retry follows 0.3–0.6 s later: five attempts in a few seconds
        first = branch(wait_for_trace(line, lambda entries: True)[0])
        entries = wait_for_trace(line, lambda entries: first not in {branch(entry) for entry in entries}, timeout=15)
    assert {direction for direction, _ in ladder(entries)} == {"out"}
    branches = [branch(entry) for entry in entries]
    assert len(set(branches)) == 3  # the last three transactions, older ones gone
    for kept in dict.fromkeys(branches):  # each with its retransmissions: the same bytes again (Timer E)
        copies = [entry["MESSAGE"] for entry in entries if branch(entry) == kept]
        assert len(set(copies)) == 1
        assert len(copies) >= 2 or kept == branches[-1]  # the newest may have only begun
    assert sum(len(entry["MESSAGE"].encode()) for entry in entries) <= 65536


def test_an_office_pbx_registering_shows_its_registers_and_sipline_s_answers(start_sipline, tmp_path):
    registrar = start_sipline(*MD5_FIRST, *NO_ABUSE_LIMITS)
    office = Office(registrar)
    assert trace(office) == []
    port, answer = register_from_a_free_port(registrar, tmp_path, [office.user])
    assert answer == ["result 200 expires=600"]
    entries = wait_for_trace(office, lambda entries: len(entries) >= 4)
    assert ladder(entries) == [
        ("in", f"REGISTER sip:127.0.0.1:{registrar.sip_port} SIP/2.0"),
        ("out", "SIP/2.0 401 Unauthorized"),
        ("in", f"REGISTER sip:127.0.0.1:{registrar.sip_port} SIP/2.0"),
        ("out", "SIP/2.0 200 OK"),
    ]
    assert_well_formed(entries, f"127.0.0.1:{registrar.sip_port}", f"127.0.0.1:{port}")
    answered = entries[2]["MESSAGE"]
    assert f'username="{office.user[0]}"' in answered and re.search(r'response="…"', answered)
    assert {value for _, value in DIGEST_VALUE.findall(answered)} == {"…"}
    assert "Contact: <sip:" in entries[3]["MESSAGE"] and "expires=600" in entries[3]["MESSAGE"]
    assert office.user[1] not in "".join(entry["MESSAGE"] for entry in entries)


def test_unknown_and_other_portals_lines_are_not_found(sipline):
    mine = add_line(sipline, "sip.provider.invalid", "trunk1")
    assert trace(mine) == []  # the name never resolved: nothing was sent
    for bad in (None, 0, 999999):
        assert error(httpx.post(sipline.webhook + "sipline.sip.trace", json={"CONFIG_ID": bad})) == (
            404, "ERROR_NOT_FOUND")
    other = fields(cli(sipline.data_dir, "portal", "create", "--domain", "localhost", "--title", "B"))
    as_other = hook_call(other["webhook"], sipline, "sipline.sip.trace", host="localhost",
                         json={"CONFIG_ID": mine.config_id})
    assert error(as_other) == (404, "ERROR_NOT_FOUND")


def test_the_cli_shows_the_trace_where_the_store_can_carry_the_question(kamailio, sipline):
    line = add_line(sipline, f"127.0.0.1:{kamailio.port}", "user0001")
    line.wait("success")
    done = subprocess.run([sys.executable, "-m", "sipline", "line", "show", str(line.config_id), "--trace",
                           "--data-dir", str(sipline.data_dir)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **store_env(sipline.data_dir)})
    if store_env(sipline.data_dir):  # PostgreSQL: the server is asked through the store
        assert done.returncode == 0, done.stderr
        assert "trace (sipline.sip.trace): " in done.stdout and "\nSIP/2.0 200 OK\n" in done.stdout
    else:  # SQLite: the trace is in the server's memory only
        assert done.returncode == 1 and done.stdout == ""
        assert "the SIP trace is kept in the server's memory: on SQLite, call sipline.sip.trace" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_an_office_line_keeps_its_last_three_transactions_a_retransmission_joining_its_own(start_sipline):
    registrar = start_sipline(*MD5_FIRST, *NO_ABUSE_LIMITS)
    office = Office(registrar)
    user = office.user[0]
    for number in range(5):  # five REGISTERs without credentials: each is challenged
        assert exchange(registrar, raw_register(registrar, user, call_id=f"t{number}")).startswith("SIP/2.0 401 ")
    again = raw_register(registrar, user, call_id="t4")
    assert exchange(registrar, again).startswith("SIP/2.0 401 ")  # the PBX missed the answer and sends again
    entries = trace(office)
    assert [(entry["DIRECTION"], branch(entry)) for entry in entries] == [
        ("in", "z9hG4bKt2"), ("out", "z9hG4bKt2"), ("in", "z9hG4bKt3"), ("out", "z9hG4bKt3"),
        ("in", "z9hG4bKt4"), ("out", "z9hG4bKt4"), ("in", "z9hG4bKt4"), ("out", "z9hG4bKt4")]
    assert entries[4]["MESSAGE"] == again  # as it came, byte for byte
    other = Office(registrar, title="other")  # another line's REGISTERs are its own
    assert trace(other) == []
