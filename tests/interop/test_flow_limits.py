"""TCP connections peers open to sipline's SIP port: per-IP and global caps, idle timeouts, and the
open-file limit (sip/transports/admission.py), against a real `sipline serve`."""

from __future__ import annotations

import re
import resource
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.integration.server import SiplineProcess
from tests.interop.test_office_registrar import MD5_FIRST, NO_ABUSE_LIMITS, Office, authorization, raw_register
from tests.metrics import value
from tests.waiting import wait_until

DEFAULT_PER_IP = 32  # --sip-tcp-per-ip
NO_IDLE_TIMEOUT = {"SIPLINE_SIP_TCP_IDLE_TIMEOUT": "600"}  # for tests of the caps on a slow machine


def connect(process: SiplineProcess, source: str = "127.0.0.1", port: int | None = None) -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port or process.sip_port))
    return sock


def is_closed(sock: socket.socket) -> bool:
    """The server closed it (EOF or reset); reading nothing that is waiting."""
    sock.setblocking(False)
    try:
        while True:
            if sock.recv(65536) == b"":
                return True
    except BlockingIOError:
        return False
    except ConnectionError:
        return True
    finally:
        sock.settimeout(5)


def ask(sock: socket.socket, request: str) -> str:
    """One request over a TCP flow, its response read up to the end of the headers (no body)."""
    sock.sendall(request.replace("SIP/2.0/UDP", "SIP/2.0/TCP").encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(65536)
        assert chunk, f"closed by the server after {answer!r}"
        answer += chunk
    return answer.decode()


def options(process: SiplineProcess, call_id: str) -> str:
    return raw_register(process, "sip1", call_id=call_id).replace("REGISTER", "OPTIONS")


def refused(process: SiplineProcess, cap: str) -> float:
    return value(process.base_url, "sipline_sip_peer_flows_refused_total", reason=cap)


def test_connections_over_the_per_ip_cap_are_closed_by_the_server(start_sipline):
    process = start_sipline(env=NO_IDLE_TIMEOUT)
    sockets = [connect(process) for _ in range(DEFAULT_PER_IP + 3)]
    try:
        wait_until(lambda: sum(map(is_closed, sockets)) >= 3, timeout=10)
        time.sleep(0.5)  # and no more than the three over the cap
        assert sum(map(is_closed, sockets)) == 3
        assert ask(sockets[0], options(process, "first")).startswith("SIP/2.0 200 ")
        other = connect(process, "127.0.0.2")  # another source has a cap of its own
        sockets.append(other)
        time.sleep(0.5)
        assert not is_closed(other)
        assert ask(other, options(process, "other")).startswith("SIP/2.0 200 ")
        assert refused(process, "per_source") == 3
        assert value(process.base_url, "sipline_sip_peer_flows") == 33
    finally:
        for sock in sockets:
            sock.close()


def test_tls_connections_are_capped_before_their_handshake(start_sipline):
    process = start_sipline("--sip-tls-listen", "127.0.0.1:0", env=NO_IDLE_TIMEOUT)
    tls_port = process.sip_tls_port
    sockets = [connect(process, port=tls_port) for _ in range(DEFAULT_PER_IP + 3)]  # no ClientHello
    try:
        wait_until(lambda: sum(map(is_closed, sockets)) >= 3, timeout=10)  # closed at once, not after a timeout
        time.sleep(0.5)
        assert sum(map(is_closed, sockets)) == 3
        context = ssl.create_default_context(cafile=str(process.data_dir / "tls" / "ca.pem"))
        with context.wrap_socket(connect(process, "127.0.0.2", tls_port), server_hostname="127.0.0.1") as other:
            answer = ask(other, options(process, "tls").replace("SIP/2.0/UDP", "SIP/2.0/TLS"))
        assert answer.startswith("SIP/2.0 200 "), answer
        assert refused(process, "per_source") == 3
        for sock in sockets:  # handshakes that fail give their places back
            sock.close()
        time.sleep(0.5)
        sockets = [connect(process, port=tls_port) for _ in range(DEFAULT_PER_IP)]
        time.sleep(1.0)
        assert not any(map(is_closed, sockets))
    finally:
        for sock in sockets:
            sock.close()


def test_a_silent_connection_is_closed_after_the_idle_timeout_and_a_registered_one_stays(start_sipline):
    process = start_sipline(*MD5_FIRST, *NO_ABUSE_LIMITS,
                            env={"SIPLINE_SIP_TCP_IDLE_TIMEOUT": "2", "SIPLINE_SIP_TCP_LIFETIME": "3"})
    office = Office(process)
    user, password = office.user
    registered = connect(process)
    talking = silent = pinging = None
    try:
        challenge = ask(registered, raw_register(process, user, call_id="tcp-1"))
        credentials = authorization(challenge, user, password, f"sip:127.0.0.1:{process.sip_port}")
        assert ask(registered, raw_register(process, user, credentials, call_id="tcp-2")).startswith("SIP/2.0 200 ")
        assert office.bindings()[0]["TRANSPORT"] == "tcp"
        talking = connect(process)
        assert ask(talking, options(process, "talking")).startswith("SIP/2.0 200 ")
        silent, pinging = connect(process), connect(process)
        opened = time.monotonic()
        time.sleep(0.5)
        assert not is_closed(silent)  # not closed at once: after the timeout

        def silent_closed() -> bool:
            try:
                pinging.sendall(b"\r\n\r\n")  # CRLF keep-alives are not SIP messages: they do not prove a flow
            except OSError:
                pass  # closed already
            return is_closed(silent) and is_closed(pinging)

        wait_until(silent_closed, timeout=15)
        assert time.monotonic() - opened >= 1.5
        wait_until(lambda: is_closed(talking), timeout=15)  # a request, then 3 s without one
        time.sleep(3.0)  # well past both timeouts
        assert not is_closed(registered)
        assert ask(registered, options(process, "still")).startswith("SIP/2.0 200 ")
        assert value(process.base_url, "sipline_sip_peer_flows_closed_idle_total") == 3
    finally:
        for sock in (registered, talking, silent, pinging):
            if sock is not None:
                sock.close()


def _low_open_files(soft: int, hard: int) -> Callable[[], None]:
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_soft_open_file_limit_is_raised_to_the_hard_one(tmp_path: Path):
    process = SiplineProcess(tmp_path / "data", preexec_fn=_low_open_files(256, 4096)).start()
    try:
        limits = Path(f"/proc/{process.proc.pid}/limits").read_text()
        assert re.search(r"^Max open files\s+4096\s+4096\s", limits, re.M), limits
    finally:
        process.stop()


def test_many_idle_connections_leave_the_http_api_answering(tmp_path: Path):
    """256 descriptors: sipline keeps 128 for HTTP and the store, and refuses SIP flows beyond the rest."""
    process = SiplineProcess(tmp_path / "data", preexec_fn=_low_open_files(256, 256)).start()
    sockets: list[socket.socket] = []
    try:
        for n in range(300):  # 12 from each of 25 loopback addresses: under the per-IP cap, over the total
            try:
                sockets.append(connect(process, f"127.0.0.{2 + n % 25}"))
            except OSError:
                break  # the server stopped accepting: what comes next shows it
        assert httpx.get(f"{process.base_url}/healthz", timeout=10).status_code == 200
        response = httpx.post(process.webhook + "voximplant.sip.get", json={}, timeout=10)
        assert response.status_code == 200 and response.json()["result"] == [], response.text
        assert len(sockets) == 300 and refused(process, "total") > 0
    finally:
        for sock in sockets:
            sock.close()
        process.stop()
