"""Hostile and malformed SIP at sipline's sockets: dropped and counted, never a crash or a stall (docs/behaviour.md#sip-hostile-input)."""

from __future__ import annotations

import socket
import time

from tests.interop.conftest import add_line
from tests.metrics import by_label
from tests.peers.kamailio import Kamailio

OPTIONS = (
    "OPTIONS sip:ping@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKping{n};rport\r\n"
    "From: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:ping@127.0.0.1>\r\nCall-ID: ping{n}\r\nCSeq: 1 OPTIONS\r\n"
    "Content-Length: 0\r\n\r\n"
)
HOSTILE = [
    b"\x00\xff\xfe garbage \x80" * 50,
    b"REGISTER sip:x SIP/2.0\r\nContent-Length: 999\r\n\r\nshort",
    b"REGISTER sip:x SIP/2.0\r\nContent-Length: -5\r\n\r\n",
    b"REGISTER sip:x SIP/2.0\r\n" + b"Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\n" * 1500 + b"\r\n",
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKnotours\r\nCSeq: 1 REGISTER\r\n\r\n",
    b"REGISTER sip:x SIP/2.0\r\nVia: bogus\r\nFrom: x\r\nTo: y\r\nCall-ID: z\r\nCSeq: banana\r\n\r\n",
    b"INVITE sip:x SIP/2.0\r\n\r\n",
    b"x" * 65000,
]


def dropped(sipline) -> dict[str, float]:
    return by_label(sipline.base_url, "sipline_sip_messages_dropped_total", "reason")


def options_answered(sipline, number: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(OPTIONS.format(n=number).encode(), ("127.0.0.1", sipline.sip_port))
        return sock.recv(65536).startswith(b"SIP/2.0 200 OK")


def test_udp_garbage_is_dropped_and_counted(sipline):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for datagram in HOSTILE:
            sock.sendto(datagram, ("127.0.0.1", sipline.sip_port))
    assert options_answered(sipline, 1)
    counted = dropped(sipline)
    assert counted["malformed"] + counted["oversized"] >= 6
    assert counted["unmatched_response"] == 1


def test_tcp_floods_close_the_flow_and_nothing_else(sipline):
    for payload in (b"REGISTER sip:x SIP/2.0\r\n" + b"Via: SIP/2.0/TCP h;branch=z9hG4bKx\r\n" * 10000 + b"\r\n",
                    b"MESSAGE sip:x SIP/2.0\r\nContent-Length: 2000000\r\n\r\n" + b"a" * 2_000_000,
                    b"A" * 2_000_000,
                    b"REGISTER sip:x SIP/2.0\r\nContent-Length: 3\r\n\r\n"):  # then the peer goes away
        with socket.create_connection(("127.0.0.1", sipline.sip_port), timeout=5) as sock:
            try:
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)
                sock.recv(100)  # the server closes the flow
            except OSError:  # reset, broken pipe, not connected: the server hung up first
                pass
    assert options_answered(sipline, 2)
    assert dropped(sipline)["oversized"] >= 3


def test_a_crlf_ping_on_tcp_gets_a_pong(sipline):
    with socket.create_connection(("127.0.0.1", sipline.sip_port), timeout=5) as sock:
        sock.sendall(b"\r\n\r\n")
        assert sock.recv(10) == b"\r\n"


def test_no_password_in_the_logs(tmp_path, start_sipline):
    with Kamailio(tmp_path / "kam") as registrar:
        sipline = start_sipline(env={"SIPLINE_TEST_LOG_LEVEL": "debug"})
        add_line(sipline, f"127.0.0.1:{registrar.port}", "user0041").wait("success")
        add_line(sipline, f"127.0.0.1:{registrar.port}", "user0042", "secret-wrong-pw").wait("error")
        time.sleep(0.2)
    log = sipline.stderr()
    assert "DEBUG" in log
    assert "pwuser0041" not in log and "secret-wrong-pw" not in log
