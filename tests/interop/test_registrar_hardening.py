"""The office registrar against hostile and choosy peers (docs/behaviour.md#office-digest, docs/behaviour.md#office-abuse): guessing spread
over many source addresses, oversized usernames, answers with an algorithm that was not offered,
per-portal and per-line algorithms, and baresip (a libre UA) with the defaults.

Every 127.0.0.0/8 address is loopback on Linux, so each "attacker" is a UDP socket bound to one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.server import SiplineProcess
from tests.interop.test_office_registrar import Office, raw_register
from tests.waiting import wait_until

HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256, "SHA-512-256": lambda data: hashlib.new("sha512_256", data)}


class Peer:
    """A UDP socket on one loopback address that sends a REGISTER and reads the answer."""

    def __init__(self, process: SiplineProcess, address: str = "127.0.0.1") -> None:
        self.process = process
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 0))
        self.uri = f"sip:127.0.0.1:{process.sip_port}"

    def ask(self, request: str, timeout: float = 3.0) -> str | None:
        """The answer, or None when there is none within `timeout` (NAT pings to this socket skipped)."""
        self.sock.sendto(request.encode(), ("127.0.0.1", self.process.sip_port))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                message = self.sock.recv(65536).decode()
            except socket.timeout:
                return None
            if message.startswith("SIP/2.0 "):
                return message
        return None

    def register(self, user: str, extra: str = "", call_id: str = "c", timeout: float = 3.0) -> str | None:
        return self.ask(raw_register(self.process, user, extra, call_id=call_id), timeout)

    def close(self) -> None:
        self.sock.close()


def challenges(answer: str) -> list[tuple[str, str]]:
    """(algorithm, nonce) of each WWW-Authenticate, in order."""
    return [(re.search(r"algorithm=([\w-]+)", value).group(1), re.search(r'nonce="([^"]+)"', value).group(1))
            for value in re.findall(r"WWW-Authenticate: Digest ([^\r]+)", answer)]


def answer_to(nonce: str, user: str, password: str, uri: str, algorithm: str = "MD5", realm: str = "127.0.0.1",
              nc: int = 1) -> str:
    """RFC 7616 §3.4.1 with qop=auth, written here from the RFC rather than taken from sipline."""
    h = lambda text: HASHES[algorithm](text.encode()).hexdigest()  # noqa: E731
    ha1, ha2 = h(f"{user}:{realm}:{password}"), h(f"REGISTER:{uri}")
    response = h(f"{ha1}:{nonce}:{nc:08x}:c0ffee:auth:{ha2}")
    return (f'Authorization: Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'response="{response}", algorithm={algorithm}, qop=auth, nc={nc:08x}, cnonce="c0ffee"\r\n')


def security_events(process: SiplineProcess) -> list[dict]:
    lines = (process.data_dir / "stderr.log").read_text(errors="replace").splitlines()
    return [json.loads(line[line.index("{"):]) for line in lines if "sipline.security" in line]


def rss_kib(process: SiplineProcess) -> int:
    status = Path(f"/proc/{process.proc.pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))


# -- docs/behaviour.md#office-abuse per username -------------------------------------------------------------------------------

def guess(process: SiplineProcess, address: str, user: str, rounds: int, stop: float) -> None:
    """Guess `rounds` passwords from `address`, each with the last nonce given to it; ask for a new
    challenge when the last guess got no answer, and give up when that gets none either."""
    peer = Peer(process, address)
    try:
        answer = peer.register(user, call_id=f"{address}-0", timeout=1.0)
        for number in range(1, rounds + 1):
            if time.monotonic() > stop:
                return
            if answer is None or not answer.startswith("SIP/2.0 401 "):
                answer = peer.register(user, call_id=f"{address}-{number}-again", timeout=1.0)
                if answer is None:
                    return
            nonce = challenges(answer)[0][1]
            answer = peer.register(user, answer_to(nonce, user, f"guess-{address}-{number}", peer.uri),
                                   call_id=f"{address}-{number}", timeout=1.0)
    finally:
        peer.close()


def test_guesses_at_one_user_from_many_addresses_are_slowed_while_its_pbx_registers(start_sipline):
    """docs/behaviour.md#office-abuse: past 20 failures for a user in 10 min, each other IP has one challenge per 10 s for it and
    only the answer to that challenge is checked, so the guesses slow to one per IP per 10 s."""
    process = start_sipline("--auth-failures", "0", "--flood-requests", "0")  # only the per-user rule here
    office = Office(process)
    user, password = office.user
    pbx = Peer(process, "127.0.0.1")
    challenge = pbx.register(user, call_id="pbx-1")
    assert pbx.register(user, answer_to(challenges(challenge)[0][1], user, password, pbx.uri),
                        call_id="pbx-2").startswith("SIP/2.0 200 ")

    attackers, rounds = [f"127.0.0.{n}" for n in range(2, 42)], 10
    started = time.monotonic()
    threads = [threading.Thread(target=guess, args=(process, address, user, rounds, started + 30))
               for address in attackers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    checked = [e for e in security_events(process) if e["reason"] == "wrong credentials"]
    # 20 to reach the threshold, then per IP one slot when guarded and one per 10 s after it
    allowed = 20 + len(attackers) * (1 + int(elapsed // 10) + 1)
    assert len(checked) <= allowed < len(attackers) * rounds, (len(checked), elapsed)
    assert {e["ip"] for e in checked} <= set(attackers)

    # its own PBX (holding a binding) refreshes at once, and so does a PBX at a new address
    refresh = pbx.register(user, call_id="pbx-3")
    assert refresh.startswith("SIP/2.0 401 ")
    assert pbx.register(user, answer_to(challenges(refresh)[0][1], user, password, pbx.uri),
                        call_id="pbx-4").startswith("SIP/2.0 200 ")
    moved = Peer(process, "127.0.0.200")
    challenge = moved.register(user, call_id="moved-1")
    assert challenge is not None and challenge.startswith("SIP/2.0 401 ")
    assert moved.register(user, answer_to(challenges(challenge)[0][1], user, password, moved.uri),
                          call_id="moved-2").startswith("SIP/2.0 200 ")
    assert "127.0.0.200" in {b["SOURCE_ADDRESS"].split(":")[0] for b in office.bindings()}
    pbx.close()
    moved.close()


def test_a_nonce_is_good_only_at_the_address_it_was_sent_to(start_sipline):
    """docs/behaviour.md#office-abuse: a nonce fetched at one address cannot be spent at another (nor for another user)."""
    process = start_sipline("--auth-failures", "0")
    office, other = Office(process, "one"), Office(process, "two")
    user, password = office.user
    fetcher, spender = Peer(process, "127.0.0.2"), Peer(process, "127.0.0.3")
    nonce = challenges(fetcher.register(user, call_id="fetch"))[0][1]
    assert spender.register(user, answer_to(nonce, user, password, spender.uri),
                            call_id="spend").startswith("SIP/2.0 401 ")
    nonce = challenges(fetcher.register(other.user[0], call_id="fetch-other"))[0][1]
    assert fetcher.register(user, answer_to(nonce, user, password, fetcher.uri),
                            call_id="spend-other").startswith("SIP/2.0 401 ")
    nonce = challenges(fetcher.register(user, call_id="fetch-own"))[0][1]
    assert fetcher.register(user, answer_to(nonce, user, password, fetcher.uri),
                            call_id="spend-own").startswith("SIP/2.0 200 ")
    fetcher.close()
    spender.close()


def test_a_wrongly_answered_nonce_gives_no_second_guess(start_sipline):
    """docs/behaviour.md#office-abuse: a wrong answer burns its nonce; the right password with the next nonce count is refused too."""
    process = start_sipline("--auth-failures", "0")
    office = Office(process)
    user, password = office.user
    peer = Peer(process)
    nonce = challenges(peer.register(user, call_id="c1"))[0][1]
    assert peer.register(user, answer_to(nonce, user, "wrong", peer.uri), call_id="c2").startswith("SIP/2.0 401 ")
    assert peer.register(user, answer_to(nonce, user, password, peer.uri, nc=2),
                         call_id="c3").startswith("SIP/2.0 401 ")
    assert office.bindings() == []
    peer.close()


# -- docs/behaviour.md#office-abuse sizes --------------------------------------------------------------------------------------

def test_oversized_usernames_get_400_and_leave_no_state_or_long_log_line(start_sipline):
    """docs/behaviour.md#office-abuse: a 60 KB username is refused before it is logged, looked up or counted; long-but-allowed
    ones reach the log cut short; thousands of huge distinct ones leave the memory as it was."""
    process = start_sipline("--auth-failures", "0", "--flood-requests", "0")
    peer = Peer(process)
    huge = "u" * 50_000
    to_only = raw_register(process, "sip1", call_id="huge-to").replace("To: <sip:sip1@", f"To: <sip:{huge}@")
    assert peer.ask(to_only).startswith("SIP/2.0 400 ")
    nonce = "ab" * 32
    forged = answer_to(nonce, huge, "x", peer.uri)
    assert peer.ask(raw_register(process, "sip1", forged, call_id="huge-auth")).startswith("SIP/2.0 400 ")
    long_name = "l" * 120
    assert peer.register(long_name, answer_to(nonce, long_name, "x", peer.uri), call_id="long").startswith(
        "SIP/2.0 401 ")

    before = rss_kib(process)
    for number in range(1500):
        name = f"{number:05d}" + "u" * 50_000
        request = raw_register(process, "sip1", answer_to(nonce, name, "x", peer.uri), call_id=f"n{number}")
        answer = peer.ask(request, timeout=5.0)
        assert answer is not None and answer.startswith("SIP/2.0 400 ")
    grown = rss_kib(process) - before
    assert grown < 30_000, f"{grown} KiB more after 1500 REGISTERs of 50 KB usernames"

    events = security_events(process)
    assert [e["username"] for e in events] == ["l" * 64 + "…"]
    log = (process.data_dir / "stderr.log").read_text(errors="replace")
    assert max(len(line) for line in log.splitlines()) < 2000
    peer.close()


# -- docs/behaviour.md#office-digest algorithms -------------------------------------------------------------------------------

def test_the_default_challenge_offers_md5_only(start_sipline):
    process = start_sipline()
    office = Office(process)
    peer = Peer(process)
    assert [algorithm for algorithm, _ in challenges(peer.register(office.user[0]))] == ["MD5"]
    peer.close()


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-512-256"])
def test_an_answer_with_an_algorithm_that_was_not_offered_is_refused(start_sipline, algorithm):
    """docs/behaviour.md#office-digest: `--registrar-algorithms SHA-256` accepts SHA-256 answers only."""
    process = start_sipline("--registrar-algorithms", "SHA-256", "--auth-failures", "0")
    office = Office(process)
    user, password = office.user
    peer = Peer(process)
    [(offered, nonce)] = challenges(peer.register(user, call_id="c1"))
    assert offered == "SHA-256"
    refused = peer.register(user, answer_to(nonce, user, password, peer.uri, algorithm), call_id="c2")
    assert refused.startswith("SIP/2.0 401 ")
    assert office.bindings() == []
    [(_, nonce)] = challenges(refused)
    assert peer.register(user, answer_to(nonce, user, password, peer.uri, "SHA-256"),
                         call_id="c3").startswith("SIP/2.0 200 ")
    peer.close()


def test_sha256_is_chosen_per_line_and_per_portal(start_sipline):
    """docs/behaviour.md#office-digest, README "Office lines": DIGEST_ALGORITHMS of sip.add/sip.update, and `sipline portal digest`."""
    from tests.integration.operator import cli

    process = start_sipline("--auth-failures", "0")
    plain, chosen = Office(process, "plain"), Office(process, "chosen")
    assert plain.row["DIGEST_ALGORITHMS"] is None
    chosen.update(DIGEST_ALGORITHMS="sha-256, md5")
    row = httpx.post(process.webhook + "voximplant.sip.get", json={"FILTER": {"CONFIG_ID": chosen.config_id}})
    assert row.json()["result"][0]["DIGEST_ALGORITHMS"] == "SHA-256,MD5"
    peer = Peer(process)
    assert [a for a, _ in challenges(peer.register(plain.user[0], call_id="p"))] == ["MD5"]
    challenge = peer.register(chosen.user[0], call_id="c1")
    assert [a for a, _ in challenges(challenge)] == ["SHA-256", "MD5"]
    user, password = chosen.user
    assert peer.register(user, answer_to(challenges(challenge)[0][1], user, password, peer.uri, "SHA-256"),
                         call_id="c2").startswith("SIP/2.0 200 ")
    assert chosen.bindings()  # a change of algorithms does not drop the bindings
    chosen.update(DIGEST_ALGORITHMS="")
    assert [a for a, _ in challenges(peer.register(user, call_id="c3"))] == ["MD5"]
    assert chosen.bindings()

    for body, field in (({"CONFIG_ID": plain.config_id, "DIGEST_ALGORITHMS": "SHA-1"}, "SHA-1"),
                        ({"TYPE": "cloud", "SERVER": "s.example", "LOGIN": "u", "DIGEST_ALGORITHMS": "MD5"}, None)):
        method = "voximplant.sip.update" if "CONFIG_ID" in body else "voximplant.sip.add"
        response = httpx.post(process.webhook + method, json=body)
        assert response.status_code == 400 and response.json()["error"], response.text

    cli(process.data_dir, "portal", "digest", "--digest-algorithms", "SHA-256")
    assert [a for a, _ in challenges(peer.register(plain.user[0], call_id="p2"))] == ["SHA-256"]
    assert [a for a, _ in challenges(peer.register("sip999", call_id="unknown"))] == ["MD5"]  # service realm
    cli(process.data_dir, "portal", "digest", "--digest-algorithms", "default")
    assert [a for a, _ in challenges(peer.register(plain.user[0], call_id="p3"))] == ["MD5"]
    peer.close()


def test_a_portal_of_its_own_realm_challenges_even_unknown_users_with_its_algorithms(start_sipline):
    """docs/behaviour.md#office-digest: the portal's choice reaches every username in its realm, so a challenge tells nothing of
    which users exist; a malformed choice makes no portal."""
    import sys

    from tests.integration.operator import cli, fields, hook_call
    from tests.stores import store_env

    process = start_sipline()
    refused = subprocess.run([sys.executable, "-m", "sipline", "portal", "create", "--domain", "bad.example",
                              "--digest-algorithms", "SHA-1", "--data-dir", str(process.data_dir)],
                             capture_output=True, text=True, timeout=60,
                             env={**os.environ, **store_env(process.data_dir)})
    assert refused.returncode == 2 and "digest-algorithms" in refused.stderr
    assert "bad.example" not in cli(process.data_dir, "portal", "list")
    hook = fields(cli(process.data_dir, "portal", "create", "--domain", "localhost", "--incoming-server",
                      "pbx-s.example.invalid", "--digest-algorithms", "SHA-256"))["webhook"]
    row = hook_call(hook, process, "voximplant.sip.add", host="localhost", json={
        "TYPE": "office", "SERVER": "pbx.example.invalid", "LOGIN": "t"}).json()["result"]
    peer = Peer(process)
    for user in (row["INCOMING_LOGIN"], "sip999"):
        request = raw_register(process, user, call_id=user).replace(f"<sip:{user}@127.0.0.1>",
                                                                    f"<sip:{user}@pbx-s.example.invalid>")
        answer = peer.ask(request)
        assert 'realm="pbx-s.example.invalid"' in answer and [a for a, _ in challenges(answer)] == ["SHA-256"]
    peer.close()


@pytest.mark.skipif(shutil.which("baresip") is None, reason="baresip (Debian baresip-core) is not installed")
def test_baresip_registers_to_an_office_line_with_the_defaults(start_sipline, tmp_path):
    """docs/behaviour.md#office-digest: libre-based UAs fail on any SHA-256 challenge ("Register: Function not implemented")."""
    process = start_sipline()
    office = Office(process)
    user, password = office.user
    home = tmp_path / "baresip"
    home.mkdir()
    (home / "config").write_text(
        "poll_method epoll\nsip_listen 127.0.0.1:0\nsip_transports udp\n"
        "audio_player none\naudio_source none\nmodule_path /usr/lib/baresip/modules\nmodule_app account.so\n")
    (home / "accounts").write_text(
        f"<sip:{user}@127.0.0.1:{process.sip_port};transport=udp>;auth_pass={password};regint=60\n")
    ua = subprocess.Popen(["baresip", "-f", str(home)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)
    try:
        def registered() -> list[dict]:
            assert ua.poll() is None, "baresip exited"
            return office.bindings()

        bindings = wait_until(registered, 20, interval=0.2, message="baresip did not register")
    finally:
        ua.terminate()  # it unregisters on the way out
        output = ua.communicate(timeout=20)[0].decode(errors="replace")
    [binding] = bindings
    assert binding["USER_AGENT"].startswith("baresip") and binding["TRANSPORT"] == "udp"
    assert binding["CONTACT"].endswith(binding["SOURCE_ADDRESS"])  # the port it bound, asked for as 0
    assert "200 OK" in output and "Function not implemented" not in output
