"""The HTTP listener's edges against a real server: slow requests, the client address, the access log."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.integration.server import SiplineProcess

TIMEOUT = 1.0  # the server's --http-header-timeout in these tests
CUT_OFF_WITHIN = 6.0  # generous: a loaded 2-core machine may be late, but "never" is what fails
TRICKLE_FOR = 10.0  # how long a trickling client keeps trying before the test gives up


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    """A server that expects every request within TIMEOUT seconds (set through the environment)."""
    process = SiplineProcess(tmp_path_factory.mktemp("strict") / "data",
                             env={"SIPLINE_HTTP_HEADER_TIMEOUT": str(TIMEOUT)}).start()
    yield process
    process.stop()


def trickle(port: int, head: bytes, data: bytes, pause: float = 0.25) -> tuple[float, bytes]:
    """Send `head` at once, then `data` a byte at a time; (seconds until the server closed, what it sent)."""
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(pause)
        answer = b""
        try:
            sock.sendall(head)
            for byte in data:
                if time.monotonic() - began > TRICKLE_FOR:
                    break
                sock.sendall(bytes([byte]))
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    continue
                answer += chunk
                if not chunk:
                    return time.monotonic() - began, answer
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - began, answer
    return float("inf"), answer


def test_a_request_line_and_headers_that_trickle_in_are_cut_off(strict):
    path = strict.webhook.split(str(strict.port), 1)[1] + "server.time"
    request = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ".encode()
    closed_after, answer = trickle(strict.port, request[:12], request[12:] + b"a" * 1000)
    assert closed_after < CUT_OFF_WITHIN
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b'"error":"REQUEST_TIMEOUT"' in answer and b"connection: close" in answer.lower()


def test_a_body_that_trickles_in_is_cut_off(strict):
    path = strict.webhook.split(str(strict.port), 1)[1] + "server.time"
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: 100000\r\n\r\n").encode()
    closed_after, answer = trickle(strict.port, head, b" " * 1000)
    assert closed_after < CUT_OFF_WITHIN
    assert answer.startswith(b"HTTP/1.1 408 ") and b'"error":"REQUEST_TIMEOUT"' in answer
    assert "Traceback" not in strict.stderr()


def test_a_connection_that_never_sends_is_closed(strict):
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", strict.port)) as sock:
        sock.settimeout(TRICKLE_FOR)
        try:
            assert sock.recv(100) == b""  # closed without an answer: nothing was asked
        except TimeoutError:
            pytest.fail("the server held a silent connection open")
    assert time.monotonic() - began < CUT_OFF_WITHIN


def test_prompt_requests_on_one_connection_are_served_past_the_timeout(strict):
    with httpx.Client() as client:
        for _ in range(4):  # one keep-alive connection, used for longer than TIMEOUT in all
            assert client.post(strict.webhook + "server.time").status_code == 200
            time.sleep(TIMEOUT / 2)


# --- the client address: X-Forwarded-For only from --trusted-proxy ------------------------------------------------

def access_lines(process: SiplineProcess) -> list[str]:
    return [line for line in process.stderr().splitlines()
            if "sipline.access" in line and '"GET /healthz"' not in line]


def test_a_spoofed_forwarded_for_from_loopback_neither_escapes_the_rate_limit_nor_shows_in_the_log(tmp_path):
    process = SiplineProcess(tmp_path / "data", "--rate-limit", "3/0.1", "--access-log",
                             env={"SIPLINE_TEST_LOG_LEVEL": "info"}).start()
    try:
        answers = [httpx.post(process.webhook + "server.time",
                              headers={"X-Forwarded-For": f"198.51.100.{number}"}).status_code
                   for number in range(1, 6)]
    finally:
        process.stop()
    assert answers == [200, 200, 200, 503, 503]
    lines = access_lines(process)
    assert len(lines) == 5 and all('127.0.0.1 "POST /rest/1/***/server.time"' in line for line in lines)
    assert "198.51.100." not in process.stderr()


def test_a_trusted_proxy_names_the_client_for_the_rate_limit_and_the_log(tmp_path):
    process = SiplineProcess(tmp_path / "data", "--rate-limit", "3/0.1", "--access-log",
                             "--trusted-proxy", "127.0.0.1/32", env={"SIPLINE_TEST_LOG_LEVEL": "info"}).start()
    hook = process.webhook + "server.time"
    try:
        mine = [httpx.post(hook).status_code for _ in range(4)]
        forwarded = httpx.post(hook, headers={"X-Forwarded-For": "203.0.113.9, 198.51.100.7"}).status_code
        # a proxy that adds a header line of its own: the lines are one list (RFC 9110 §5.3)
        lines = httpx.post(hook, headers=[("X-Forwarded-For", "203.0.113.9"),
                                          ("X-Forwarded-For", "198.51.100.8")]).status_code
        garbage = httpx.post(hook, headers={"X-Forwarded-For": 'evil" 200 0.1ms'}).status_code
    finally:
        process.stop()
    assert mine == [200, 200, 200, 503] and forwarded == 200 and lines == 200
    assert garbage == 503  # no usable hop: the proxy's own bucket, already full
    log = "\n".join(access_lines(process))
    assert '198.51.100.7 "POST' in log and '198.51.100.8 "POST' in log
    assert "203.0.113.9" not in log and "evil" not in log


# --- the access log never shows a webhook code or a token ---------------------------------------------------------

def test_the_access_log_masks_the_webhook_code_on_every_path_that_carries_one(tmp_path):
    process = SiplineProcess(tmp_path / "data", "--access-log", env={"SIPLINE_TEST_LOG_LEVEL": "info"}).start()
    code = process.webhook.rstrip("/").rsplit("/", 1)[1]
    paths = [f"/rest/1/{code}/server.time", f"/rest/1/{code}/server.time/extra", f"/rest/1/{code}/a/b/c",
             f"/Rest/1/{code}/server.time", f"/REST/1/{code}/server.time", f"//rest//1//{code}//server.time",
             f"/rest/1/{code}", f"/rest/1/{code}/", f"/rest/{code}/server.time", f"/rEsT/1/{code}",
             f"/rest/1/{code}.json/server.time", f"/b24/rest/1/{code}/server.time"]
    queries = {"auth": "tok-auth-1", "access_token": "tok-access-2", "code": "tok-code-3",
               "refresh_token": "tok-refresh-4", "client_secret": "tok-secret-5"}
    try:
        for path in paths:
            httpx.post(process.base_url + path)
        for path in ("/rest/server.time", "/oauth/token/", "/oauth/authorize/", "/rest/app.info"):
            httpx.get(process.base_url + path, params=queries)
    finally:
        process.stop()
    log = process.stderr()
    assert len(access_lines(process)) == len(paths) + 4
    assert code not in log
    assert not [value for value in queries.values() if value in log]
    assert '"POST /rest/1/***/server.time" 200' in log and '"POST /REST/1/***/server.time" 404' in log
