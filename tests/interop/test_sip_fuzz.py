"""Random bytes and mutated REGISTERs at a real `sipline serve`, over UDP and over TCP in random chunks: afterwards
it still answers OPTIONS on both, /healthz is 200, and its log holds no traceback."""

from __future__ import annotations

import socket
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.server import SiplineProcess
from tests.unit.test_sip_fuzz import OPTIONS, SIGNIFICANT, mutated

FUZZ = settings(max_examples=150, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def register_for(login: str, extra: str = "", to: str | None = None) -> bytes:
    """A REGISTER of an office line to sipline's realm (127.0.0.1), first try (no credentials)."""
    return (
        "REGISTER sip:127.0.0.1 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKfuzz;rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:{login}@127.0.0.1>;tag=fz\r\n"
        f"To: {to or f'<sip:{login}@127.0.0.1>'}\r\n"
        "Call-ID: fuzz@127.0.0.1\r\n"
        "CSeq: 1 REGISTER\r\n"
        f"Contact: <sip:{login}@127.0.0.1:5999>;expires=60\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def options(number: int, transport: str = "UDP", to: str = "<sip:ping@127.0.0.1>") -> bytes:
    return (f"OPTIONS sip:ping@127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport} 127.0.0.1:9;branch=z9hG4bKping{number};rport\r\n"
            f"From: <sip:t@127.0.0.1>;tag=1\r\nTo: {to}\r\nCall-ID: ping{number}\r\nCSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n").encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # the abuse guard would soon drop everything from 127.0.0.1: it has tests of its own
    process = SiplineProcess(tmp_path_factory.mktemp("sipfuzz"), "--flood-requests", "0", "--auth-failures", "0")
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def office_register(server) -> bytes:
    response = httpx.post(server.webhook + "voximplant.sip.add",
                          json={"TYPE": "office", "SERVER": "pbx.example.invalid", "LOGIN": "office"})
    assert response.status_code == 200, response.text
    return register_for(response.json()["result"]["INCOMING_LOGIN"])


def answered_over_udp(server: SiplineProcess, request: bytes, timeout: float = 5) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(request, ("127.0.0.1", server.sip_port))
        return sock.recv(65536)


def answered_over_tcp(server: SiplineProcess, request: bytes, timeout: float = 5) -> bytes:
    with socket.create_connection(("127.0.0.1", server.sip_port), timeout=timeout) as sock:
        sock.sendall(request)
        return sock.recv(65536)


def still_answers(server: SiplineProcess, number: int) -> None:
    assert answered_over_udp(server, options(number)).startswith(b"SIP/2.0 200 OK")
    assert answered_over_tcp(server, options(number, "TCP")).startswith(b"SIP/2.0 200 OK")


def send_datagrams(server: SiplineProcess, datagrams: list[bytes]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.05)
        for datagram in datagrams:
            sock.sendto(datagram[:65507], ("127.0.0.1", server.sip_port))
        try:
            while sock.recv(65536):  # answers, if any: only so that none is left queued
                pass
        except OSError:
            pass


def send_in_chunks(server: SiplineProcess, stream: bytes, cuts: list[int]) -> None:
    """One TCP flow: the stream written in pieces (each its own segment: TCP_NODELAY), then half-closed."""
    bounds = [0, *sorted(cuts), len(stream)]
    with socket.create_connection(("127.0.0.1", server.sip_port), timeout=2) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for start, end in zip(bounds, bounds[1:]):
                if end > start:
                    sock.sendall(stream[start:end])
                    time.sleep(0.001)
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(65536):  # until the server closes the flow, or the timeout
                pass
        except OSError:  # reset, or the timeout: the server may keep a quiet flow open
            pass


def test_the_register_the_fuzz_starts_from_reaches_the_registrar(server, office_register):
    assert answered_over_udp(server, office_register).startswith(b"SIP/2.0 401 Unauthorized")


sip_inputs = st.binary(max_size=400) | mutated() | mutated((OPTIONS,))


@FUZZ
@given(datagrams=st.lists(sip_inputs | st.builds(lambda: b""), min_size=1, max_size=6), data=st.data())
def test_random_bytes_and_mutated_registers_over_udp(server, office_register, datagrams, data):
    datagrams += data.draw(st.lists(mutated((office_register,)), max_size=3))
    send_datagrams(server, datagrams)


@settings(FUZZ, max_examples=100)
@given(parts=st.lists(sip_inputs | st.sampled_from([b"\r\n", b"\r\n\r\n"] + SIGNIFICANT), min_size=1, max_size=5),
       data=st.data())
def test_random_bytes_and_mutated_registers_over_tcp_in_random_chunks(server, office_register, parts, data):
    parts += data.draw(st.lists(mutated((office_register,)), max_size=2))
    stream = b"".join(data.draw(st.permutations(parts)))
    send_in_chunks(server, stream, data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))


# -- regressions: input that held the one event loop for seconds or hours, or ended in a traceback -----------


def test_an_options_with_a_long_unbracketed_to_does_not_stall_the_server(server):
    """`To: aaaa…;tag`: the display-name pattern backtracked over every split of the run."""
    started = time.monotonic()
    answered_over_udp(server, options(1, to="a" * 40 + ";tag"), timeout=10)
    still_answers(server, 2)
    assert time.monotonic() - started < 5


def test_a_register_with_a_long_broken_authorization_does_not_stall_the_server(server, office_register):
    """A 60 000-character auth-param that never meets its `=`: each position was tried as a new start."""
    broken = b"Authorization: Digest " + b"1" * 60000 + b"\r\n"
    request = office_register.replace(b"Content-Length", broken + b"Content-Length")
    started = time.monotonic()
    send_in_chunks(server, request, [])
    still_answers(server, 3)
    assert time.monotonic() - started < 5


def test_digits_outside_ascii_are_refused_without_a_traceback(server, office_register):
    """`Content-Length: ²` passed str.isdigit() and int() raised out of the parser."""
    send_datagrams(server, [options(4).replace(b"Content-Length: 0", "Content-Length: ²".encode())])
    send_in_chunks(server, options(5, "TCP").replace(b"Content-Length: 0", "Content-Length: ٣".encode()), [])
    still_answers(server, 6)
    assert "Traceback" not in server.stderr()


def test_the_server_still_answers_and_logged_no_traceback(server):
    """Last in this module: after everything above."""
    still_answers(server, 7)
    assert httpx.get(server.base_url + "/healthz").status_code == 200
    log = server.stderr()
    assert "Traceback" not in log and "could not be handled" not in log, log
