"""sipline as the registrar of office lines, with SIPp as the customer's PBX (docs/behaviour.md#check-real-pbx).

SIPp answers only MD5 challenges and takes the first WWW-Authenticate header; these
sipline processes offer MD5 first and SHA-256 beside it (`--registrar-algorithms
MD5,SHA-256`), which SIPp must cope with too. The MD5-only default is covered in
test_registrar_hardening.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import ssl
import time

import httpx
import pytest

from tests.integration.server import SiplineProcess
from tests.interop.conftest import Line
from tests.metrics import value
from tests.peers import on_a_free_port, sipp
from tests.stores import execute
from tests.waiting import wait_until

MD5_FIRST = ("--registrar-algorithms", "MD5,SHA-256")
NO_ABUSE_LIMITS = ("--flood-requests", "0", "--auth-failures", "0")


class Office(Line):
    """An office line and what its PBX sees: (INCOMING_LOGIN, INCOMING_PASSWORD)."""

    def __init__(self, process: SiplineProcess, title: str = "office") -> None:
        super().__init__(process.webhook, {"TYPE": "office", "TITLE": title, "SERVER": "pbx.example.invalid",
                                           "LOGIN": "trunk", "PASSWORD": "trunk-secret"})
        self.user = (self.row["INCOMING_LOGIN"], self.row["INCOMING_PASSWORD"])

    def bindings(self) -> list[dict]:
        response = httpx.post(self.webhook + "sipline.sip.bindings", json={"CONFIG_ID": self.config_id})
        assert response.status_code == 200, response.text
        return response.json()["result"]


@pytest.fixture
def registrar(start_sipline):
    return start_sipline(*MD5_FIRST, *NO_ABUSE_LIMITS)


def register(process: SiplineProcess, tmp_path, users, local_port: int | None = None, **options) -> list[str]:
    """SIPp as the office PBX, from `local_port` (None: a free one)."""
    return sipp.register_office(tmp_path / "sipp", process.sip_port, local_port, users, **options)


def register_from_a_free_port(process: SiplineProcess, tmp_path, users, **options) -> tuple[int, list[str]]:
    """(the PBX's port, what `register` returns)."""
    return on_a_free_port(lambda port: (port, register(process, tmp_path, users, port, **options)))


def test_right_password_registers_and_the_binding_is_visible(registrar, tmp_path):
    office = Office(registrar)
    port, answer = register_from_a_free_port(registrar, tmp_path, [office.user])
    assert answer == ["result 200 expires=600"]
    [binding] = office.bindings()
    assert binding["CONTACT"] == f"sip:{office.user[0]}@127.0.0.1:{port};transport=udp"
    assert binding["SOURCE_ADDRESS"] == f"127.0.0.1:{port}"
    assert binding["TRANSPORT"] == "udp" and binding["USER_AGENT"] == "sipp-office"
    assert 590 <= binding["EXPIRES_IN"] <= 600
    assert "INCOMING_PASSWORD" not in json.dumps(office.bindings())


def test_registration_over_tcp(registrar, tmp_path):
    office = Office(registrar)
    assert register(registrar, tmp_path, [office.user], transport="tcp") == ["result 200 expires=600"]
    [binding] = office.bindings()
    assert binding["TRANSPORT"] == "tcp" and binding["CONTACT"].endswith(";transport=tcp")


def test_wrong_password_gets_401_and_no_binding(registrar, tmp_path):
    office = Office(registrar)
    assert register(registrar, tmp_path, [(office.user[0], "not-the-password")]) == ["result 401"]
    assert office.bindings() == []


def test_unknown_user_is_answered_like_a_wrong_password(registrar, tmp_path):
    assert register(registrar, tmp_path, [("sip999", "whatever")]) == ["result 401"]


def test_the_next_nonce_count_is_accepted_and_a_replayed_one_refused(registrar, tmp_path):
    office = Office(registrar)
    assert register(registrar, tmp_path, [office.user], reuse=True) == ["result 200 expires=600", "reuse 200"]
    trace = (tmp_path / "sipp" / "office-uac.msg").read_text()
    sent = [block for block in re.split(r"-{10,}[^\n]*\n", trace) if "CSeq: 2 REGISTER" in block
            and block.lstrip().startswith(("UDP message sent", "REGISTER"))]
    request = "REGISTER" + sent[0].split("REGISTER", 1)[1]
    request = request.strip("\n").replace("\n", "\r\n") + "\r\n\r\n" if "\r\n" not in request else request
    replayed = re.sub(r"branch=[^;\r\n]+", "branch=z9hG4bKreplayed", request).replace("CSeq: 2 ", "CSeq: 9 ")
    assert "nc=00000001" in replayed
    assert exchange(registrar, replayed).startswith("SIP/2.0 401 ")


def test_a_retransmitted_register_is_answered_again_and_changes_nothing(registrar):
    office = Office(registrar)
    user, password = office.user
    request = raw_register(registrar, user, credentials_for(registrar, user, password), call_id="raw-2")
    first = exchange(registrar, request)
    assert first.startswith("SIP/2.0 200 ")
    before = [(b["CONTACT"], b["EXPIRES_AT"]) for b in office.bindings()]
    time.sleep(1.1)  # a change would move EXPIRES_AT
    assert exchange(registrar, request).startswith("SIP/2.0 200 ")  # the 200 was lost, the PBX sends again
    assert [(b["CONTACT"], b["EXPIRES_AT"]) for b in office.bindings()] == before


def test_expires_below_the_minimum_gets_423(registrar, tmp_path):
    office = Office(registrar)
    assert register(registrar, tmp_path, [office.user], expires=30) == ["result 423 60"]
    assert office.bindings() == []


def test_expires_above_the_maximum_is_clamped(registrar, tmp_path):
    office = Office(registrar)
    assert register(registrar, tmp_path, [office.user], expires=7200) == ["result 200 expires=3600"]
    assert 3590 <= office.bindings()[0]["EXPIRES_IN"] <= 3600


def test_wildcard_contact_removes_every_binding(registrar, tmp_path):
    office = Office(registrar)
    for _ in range(2):  # the first Contact in the 200 is the older binding, with its remaining time
        assert register(registrar, tmp_path, [office.user])[0].startswith("result 200 expires=")
    assert len(office.bindings()) == 2
    assert register(registrar, tmp_path, [office.user], wildcard=True, expires=0) == ["result 200 none"]
    assert office.bindings() == []


def test_a_fourth_contact_evicts_the_oldest(registrar, tmp_path):
    office = Office(registrar)
    ports = []
    for _ in range(4):
        port, answer = register_from_a_free_port(registrar, tmp_path, [office.user])
        assert answer[0].startswith("result 200 expires="), answer
        ports.append(port)
    assert sorted(b["SOURCE_ADDRESS"] for b in office.bindings()) == sorted(f"127.0.0.1:{p}" for p in ports[1:])


def test_five_wrong_passwords_from_one_source_and_the_sixth_is_dropped(start_sipline, tmp_path):
    process = start_sipline(*MD5_FIRST)  # the default limits: 5 failures block the source
    office = Office(process)
    guesses = [(office.user[0], f"guess-{n}") for n in range(6)]
    assert register(process, tmp_path, guesses, timeout=3) == ["result 401"] * 5 + ["result silent"]
    assert register(process, tmp_path, [office.user], timeout=3) == ["result silent"]  # blocked, even when right
    log = (process.data_dir / "stderr.log").read_text()
    events = [json.loads(line[line.index("{"):]) for line in log.splitlines() if "sipline.security" in line]
    assert [e["reason"] for e in events].count("wrong credentials") == 5
    assert any(e["reason"].startswith("blocked") for e in events)
    assert all(e["ip"] == "127.0.0.1" and e["username"] == office.user[0] for e in events if e["username"])
    assert "guess-" not in log and office.user[1] not in log


def test_changing_or_deleting_the_line_removes_its_bindings(registrar, tmp_path):
    changed, deleted = Office(registrar, "changed"), Office(registrar, "deleted")
    assert register(registrar, tmp_path, [changed.user, deleted.user]) == ["result 200 expires=600"] * 2
    changed.update(PASSWORD="new-trunk-secret")
    assert changed.bindings() == []
    deleted.delete()
    response = httpx.post(registrar.webhook + "sipline.sip.bindings", json={"CONFIG_ID": deleted.config_id})
    assert response.json()["error"] == "ERROR_NOT_FOUND"
    assert execute(registrar.data_dir, "SELECT count(*) FROM binding") == [(0,)]


def test_bindings_survive_a_restart(tmp_path):
    first = SiplineProcess(tmp_path / "data", *MD5_FIRST, *NO_ABUSE_LIMITS).start()
    try:
        office = Office(first)
        assert register(first, tmp_path, [office.user]) == ["result 200 expires=600"]
        before = office.bindings()
    finally:
        first.kill()  # SIGKILL: the binding was acknowledged, so it is in the store
    second = SiplineProcess(tmp_path / "data", *MD5_FIRST, port=first.port, sip_port=first.sip_port).start()
    try:
        second.printed["webhook"] = first.webhook
        after = office.bindings()
        assert [b["CONTACT"] for b in after] == [b["CONTACT"] for b in before]
    finally:
        second.stop()


def test_a_new_realm_recomputes_the_secrets_of_existing_lines(tmp_path):
    """docs/behaviour.md#office-identity: a line's HA1 values follow a change of INCOMING_SERVER (here across a restart)."""
    first = SiplineProcess(tmp_path / "data", *MD5_FIRST, *NO_ABUSE_LIMITS).start()
    try:
        office = Office(first)
    finally:
        first.stop()
    assert execute(first.data_dir, "SELECT incoming_realm FROM line") == [("127.0.0.1",)]
    second = SiplineProcess(tmp_path / "data", *MD5_FIRST, *NO_ABUSE_LIMITS, "--incoming-server", "pbx-c.example.invalid",
                            port=first.port, sip_port=first.sip_port).start()
    try:
        second.printed["webhook"] = first.webhook
        user, password = office.user
        challenge = exchange(second, raw_register(second, user, call_id="challenge"))
        assert 'realm="pbx-c.example.invalid"' in challenge
        credentials = authorization(challenge, user, password, f"sip:127.0.0.1:{second.sip_port}")
        answer = exchange(second, raw_register(second, user, credentials, call_id="new-realm"))
        assert answer.startswith("SIP/2.0 200 "), answer
        wait_until(lambda: execute(second.data_dir, "SELECT incoming_realm FROM line") == [("pbx-c.example.invalid",)],
                   5)
    finally:
        second.stop()


def test_expired_bindings_disappear_within_five_seconds(start_sipline, tmp_path):
    process = start_sipline(*MD5_FIRST, *NO_ABUSE_LIMITS, "--registrar-min-expires", "2")
    office = Office(process)
    assert register(process, tmp_path, [office.user], expires=2) == ["result 200 expires=2"]
    registered = time.monotonic()
    assert office.bindings()
    while office.bindings():
        assert time.monotonic() - registered < 2 + 5
        time.sleep(0.1)


def exchange(process: SiplineProcess, request: str) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(3)
        sock.sendto(request.encode(), ("127.0.0.1", process.sip_port))
        return sock.recv(65536).decode()


def raw_register(process: SiplineProcess, user: str, extra: str = "", *, call_id: str = "raw-1") -> str:
    return (f"REGISTER sip:127.0.0.1:{process.sip_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK{call_id};rport\r\n"
            f"From: <sip:{user}@127.0.0.1>;tag=1\r\nTo: <sip:{user}@127.0.0.1>\r\nCall-ID: {call_id}\r\n"
            f"CSeq: 1 REGISTER\r\nContact: <sip:{user}@127.0.0.1:9>\r\n{extra}Content-Length: 0\r\n\r\n")


def test_a_challenge_offers_each_configured_algorithm_in_order(start_sipline):
    process = start_sipline("--registrar-algorithms", "SHA-256,MD5")
    office = Office(process)
    answer = exchange(process, raw_register(process, office.user[0]))
    challenges = re.findall(r"WWW-Authenticate: Digest ([^\r]+)", answer)
    assert answer.startswith("SIP/2.0 401 ") and len(challenges) == 2
    assert "algorithm=SHA-256" in challenges[0] and "algorithm=MD5" in challenges[1]
    assert all('realm="127.0.0.1"' in c and 'qop="auth"' in c for c in challenges)


def authorization(challenge: str, user: str, password: str, uri: str) -> str:
    """RFC 2617 MD5 with qop=auth, written here from the RFC rather than taken from sipline."""
    realm = re.search(r'realm="([^"]+)"', challenge).group(1)
    nonce = re.search(r'nonce="([^"]+)"', challenge).group(1)
    md5 = lambda text: hashlib.md5(text.encode()).hexdigest()  # noqa: E731
    ha1, ha2 = md5(f"{user}:{realm}:{password}"), md5(f"REGISTER:{uri}")
    response = md5(f"{ha1}:{nonce}:00000001:c0ffee:auth:{ha2}")
    return (f'Authorization: Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'response="{response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="c0ffee"\r\n')


def credentials_for(process: SiplineProcess, user: str, password: str) -> str:
    """An Authorization header line answering a fresh challenge (over UDP) of `process`."""
    challenge = exchange(process, raw_register(process, user, call_id="challenge"))
    return authorization(challenge, user, password, f"sip:127.0.0.1:{process.sip_port}")


@pytest.mark.parametrize("extra", [
    "Expires: soon\r\n",
    "Expires: 4294967296\r\n",
    "Contact: <sip:a@127.0.0.1>;expires=x\r\n",
    "Contact: *\r\nExpires: 0\r\n",  # a wildcard beside another Contact
    "Contact: <sip:" + "a" * 600 + "@127.0.0.1>\r\n",
])
def test_malformed_register_gets_400_and_changes_nothing(registrar, extra):
    office = Office(registrar)
    user, password = office.user
    credentials = credentials_for(registrar, user, password)
    answer = exchange(registrar, raw_register(registrar, user, credentials + extra, call_id="raw-3"))
    assert answer.startswith("SIP/2.0 400 "), answer
    assert office.bindings() == []
    answer = exchange(registrar, raw_register(registrar, user, credentials.replace("00000001", "00000002")
                                              .replace(re.search(r'response="(\w+)"', credentials).group(1), "0" * 32),
                                              call_id="raw-4"))
    assert answer.startswith("SIP/2.0 401 ")  # the sanity check of this test: a wrong response is refused


def test_a_request_that_does_not_parse_gets_400(registrar):
    broken = raw_register(registrar, "sip1").replace("CSeq: 1 REGISTER", "CSeq: banana")
    assert exchange(registrar, broken).startswith("SIP/2.0 400 ")


def test_the_right_digest_written_here_registers(registrar):
    office = Office(registrar)
    user, password = office.user
    answer = exchange(registrar, raw_register(registrar, user, credentials_for(registrar, user, password), call_id="raw-2"))
    assert answer.startswith("SIP/2.0 200 ") and "\r\nDate: " in answer
    assert re.search(r"Contact: <sip:sip\d+@127.0.0.1:9>;expires=3600", answer)


def test_options_is_answered_and_other_methods_get_405(registrar):
    options = raw_register(registrar, "sip1").replace("REGISTER", "OPTIONS")
    assert exchange(registrar, options).startswith("SIP/2.0 200 ")
    answer = exchange(registrar, options.replace("OPTIONS", "SUBSCRIBE"))
    assert answer.startswith("SIP/2.0 405 ") and "\r\nAllow: " in answer


def test_registration_over_tls(start_sipline, tmp_path):
    process = start_sipline(*MD5_FIRST, *NO_ABUSE_LIMITS, "--sip-tls-listen", "127.0.0.1:0")
    tls_port = process.sip_tls_port
    office = Office(process)
    user, password = office.user
    context = ssl.create_default_context(cafile=str(process.data_dir / "tls" / "ca.pem"))
    with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as plain, \
            context.wrap_socket(plain, server_hostname="127.0.0.1") as sock:
        def ask(request: str) -> str:
            sock.sendall(request.replace("SIP/2.0/UDP", "SIP/2.0/TLS").encode())
            answer = b""
            while b"\r\n\r\n" not in answer:
                answer += sock.recv(65536)
            return answer.decode()

        challenge = ask(raw_register(process, user))
        credentials = authorization(challenge, user, password, f"sip:127.0.0.1:{process.sip_port}")
        assert ask(raw_register(process, user, credentials, call_id="tls-2")).startswith("SIP/2.0 200 ")
    [binding] = office.bindings()
    assert binding["TRANSPORT"] == "tls"


def ask(pbx: socket.socket, process: SiplineProcess, request: str) -> str:
    """Sends `request` from the PBX's socket; the next response it receives (pings skipped)."""
    pbx.sendto(request.encode(), ("127.0.0.1", process.sip_port))
    while True:
        answer = pbx.recv(65536).decode()
        if answer.startswith("SIP/2.0 "):
            return answer


def register_from(pbx: socket.socket, process: SiplineProcess, office: Office, contact: str) -> None:
    """The office line's PBX registers from `pbx` with a Contact at `contact` (host:port)."""
    user, password = office.user
    request = raw_register(process, user).replace("127.0.0.1:9>", f"{contact}>")
    credentials = authorization(ask(pbx, process, request), user, password, f"sip:127.0.0.1:{process.sip_port}")
    assert ask(pbx, process, request.replace("CSeq: 1 ", "CSeq: 2 ").replace(
        "Content-Length", credentials + "Content-Length")).startswith("SIP/2.0 200 ")


def test_a_nat_binding_is_pinged_and_marked_unreachable_after_three_misses(registrar):
    """docs/behaviour.md#office-nat with --nat-ping-interval 0.6 (FAST): OPTIONS every 0.6 s instead of 30 s."""
    office = Office(registrar)
    user = office.user[0]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as pbx:
        pbx.bind(("127.0.0.1", 0))
        pbx.settimeout(3)
        register_from(pbx, registrar, office, "192.168.1.10:5060")
        assert office.bindings()[0]["NAT"] is True

        def answer_pings(count: int) -> None:
            for _ in range(count):
                ping = pbx.recv(65536).decode()
                assert ping.startswith(f"OPTIONS sip:{user}@192.168.1.10:5060 SIP/2.0\r\n")
                top_via, = re.findall(r"^Via: [^\r]+", ping, re.M)
                call_id, = re.findall(r"^Call-ID: [^\r]+", ping, re.M)
                pbx.sendto(f"SIP/2.0 200 OK\r\n{top_via}\r\nFrom: <sip:ping@127.0.0.1>;tag=1\r\n"
                           f"To: <sip:{user}@192.168.1.10:5060>;tag=2\r\n{call_id}\r\nCSeq: 1 OPTIONS\r\n"
                           "Content-Length: 0\r\n\r\n".encode(), ("127.0.0.1", registrar.sip_port))

        answer_pings(3)
        assert office.bindings()[0]["REACHABLE"] is True
        wait_until(lambda: not office.bindings()[0]["REACHABLE"], 10, interval=0.1)  # the PBX stops answering
        # it comes back: answered pings (older ones are stale)
        wait_until(lambda: office.bindings()[0]["REACHABLE"] or answer_pings(1), 5, interval=0)


def test_a_portal_of_its_own_realm(registrar):
    """docs/behaviour.md#portals: a portal's INCOMING_SERVER is the realm its PBXes register in."""
    from tests.integration.operator import cli, fields, hook_call

    hook = fields(cli(registrar.data_dir, "portal", "create", "--domain", "localhost",
                      "--incoming-server", "pbx-b.example.invalid"))["webhook"]
    row = hook_call(hook, registrar, "voximplant.sip.add", host="localhost", json={
        "TYPE": "office", "SERVER": "pbx.example.invalid", "LOGIN": "t", "PASSWORD": "p"}).json()["result"]
    user, password = row["INCOMING_LOGIN"], row["INCOMING_PASSWORD"]
    assert row["INCOMING_SERVER"] == "pbx-b.example.invalid"
    request = raw_register(registrar, user).replace(f"<sip:{user}@127.0.0.1>", f"<sip:{user}@pbx-b.example.invalid>")
    challenge = exchange(registrar, request)
    assert 'realm="pbx-b.example.invalid"' in challenge
    credentials = authorization(challenge, user, password, f"sip:127.0.0.1:{registrar.sip_port}")
    answer = exchange(registrar, request.replace("Content-Length", credentials + "Content-Length").replace(
        "CSeq: 1 ", "CSeq: 2 "))
    assert answer.startswith("SIP/2.0 200 "), answer
    # in the service's realm the same user is unknown
    default_realm = authorization(exchange(registrar, raw_register(registrar, user, call_id="d")), user, password,
                                  f"sip:127.0.0.1:{registrar.sip_port}")
    assert exchange(registrar, raw_register(registrar, user, default_realm, call_id="d2")).startswith("SIP/2.0 401 ")


def test_nat_pings_go_to_the_observed_source_never_to_the_claimed_contact(start_sipline):
    """Private targets refused (the default): a PBX on a LAN (here loopback) is still pinged where its
    REGISTER came from (docs/behaviour.md#office-nat); the address its Contact claims gets nothing."""
    process = start_sipline(*MD5_FIRST, *NO_ABUSE_LIMITS, private=False)
    office = Office(process)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as pbx, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as claimed:
        pbx.bind(("127.0.0.1", 0))
        pbx.settimeout(5)
        claimed.bind(("127.0.0.2", 0))
        claimed.setblocking(False)
        contact = f"127.0.0.2:{claimed.getsockname()[1]}"
        register_from(pbx, process, office, contact)
        assert office.bindings()[0]["NAT"] is True
        for _ in range(2):  # two rounds (0.6 s apart)
            assert pbx.recv(65536).decode().startswith(f"OPTIONS sip:{office.user[0]}@{contact} SIP/2.0\r\n")
        with pytest.raises(BlockingIOError):
            claimed.recv(65536)
    assert value(process.base_url, "sipline_sip_messages_dropped_total", reason="refused_target") == 0
