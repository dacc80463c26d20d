"""One tenant's voximplant.sip.get never freezes the others: while the heaviest filters allowed run
(and a heavier one is refused), /healthz and a SIP OPTIONS answer within 100 ms at the p99
(README, REST limits; the bounds themselves are tested in test_work_limits.py)."""

from __future__ import annotations

import socket
import threading
import time
from itertools import product

import httpx
import orjson
import pytest

from tests.integration.server import SiplineProcess

LINES = 2000
PROBE_EVERY = 0.01  # seconds between the probes of each prober
P99_LIMIT = 0.100
OPTIONS = (
    "OPTIONS sip:ping@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKload{n};rport\r\n"
    "From: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:ping@127.0.0.1>\r\nCall-ID: load{n}\r\nCSeq: 1 OPTIONS\r\n"
    "Content-Length: 0\r\n\r\n"
)
# short words that occur in no TITLE, LOGIN or SERVER: every line is tested against every one
NEEDLES = ["".join(letters) for letters in product("qxzjwkyv", repeat=4)][:500]


def worst_filter() -> dict[str, object]:
    """The most work one call may ask for: two lists of 500, the first matching every line."""
    return {"!%TITLE": NEEDLES, "?LOGIN": "|".join(NEEDLES)}


def worst_command() -> str:
    values = "&".join(f"FILTER[!%25TITLE][]={needle}" for needle in NEEDLES)
    return f"voximplant.sip.get?{values}&FILTER[?LOGIN]={'|'.join(NEEDLES)}"


class Prober(threading.Thread):
    """Asks every PROBE_EVERY seconds and records each answer's round trip. An answer later than
    the next probe was due also stands for the probes a stalled server kept waiting, as they
    would have seen it (coordinated omission, corrected as HdrHistogram's expected interval does);
    a prober that falls behind on its own (a loaded machine) starts its schedule over instead."""

    def __init__(self, ask, close) -> None:
        super().__init__(daemon=True)
        self.ask = ask
        self.close = close
        self.delays: list[float] = []
        self.failures = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        due = time.monotonic()
        while not self.stopping.is_set():
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            sent = time.monotonic()
            try:
                self.ask()
            except (OSError, httpx.HTTPError, AssertionError):
                self.failures += 1
            delay = time.monotonic() - sent
            self.delays += [delay - PROBE_EVERY * missed for missed in range(int(delay / PROBE_EVERY) + 1)]
            due = max(due + PROBE_EVERY, time.monotonic())
        self.close()

    def p99(self) -> float:
        ordered = sorted(self.delays)
        return ordered[int(len(ordered) * 0.99)]


def health_prober(server: SiplineProcess) -> Prober:
    client = httpx.Client(timeout=30)

    def ask() -> None:
        assert client.get(f"{server.base_url}/healthz").status_code == 200

    return Prober(ask, client.close)


def options_prober(server: SiplineProcess) -> Prober:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(30)
    numbers = iter(range(10**9))

    def ask() -> None:
        sock.sendto(OPTIONS.format(n=next(numbers)).encode(), ("127.0.0.1", server.sip_port))
        assert sock.recv(65536).startswith(b"SIP/2.0 200 OK")

    return Prober(ask, sock.close)


@pytest.fixture
def crowded(tmp_path):
    """A portal of LINES office lines (its limit raised to hold them); no SIP flood guard, since
    the prober is one source sending hundreds of OPTIONS a second."""
    server = SiplineProcess(tmp_path / "data", "--max-lines", str(LINES), "--flood-requests", "0").start()
    with httpx.Client(timeout=60) as client:
        for first in range(0, LINES, 50):
            commands = [f"voximplant.sip.add?TYPE=office&SERVER=pbx.example.invalid&LOGIN=u{n}&TITLE=Office%20{n}"
                        for n in range(first, first + 50)]
            answer = client.post(server.webhook + "batch", json={"halt": 1, "cmd": commands}).json()
            assert not answer["result"]["result_error"], answer
        client.post(server.webhook + "voximplant.sip.get")  # the portal's lines read once, as in steady use
    yield server
    server.stop()


def json_body(value: object) -> dict[str, object]:
    """Encoded before the probers start: this process's own work must not delay their samples."""
    return {"content": orjson.dumps(value), "headers": {"Content-Type": "application/json"}}


def test_health_and_sip_stay_fast_while_the_heaviest_filters_run(crowded):
    call, batch_call = crowded.webhook + "voximplant.sip.get", crowded.webhook + "batch"
    too_big, worst = json_body({"FILTER": {"%TITLE": NEEDLES * 40}}), json_body({"FILTER": worst_filter()})
    worst_batch = json_body({"cmd": [worst_command()] * 50})
    probers = [health_prober(crowded), options_prober(crowded)]
    for prober in probers:
        prober.start()
    time.sleep(0.5)  # the probers' first samples: the server idle
    with httpx.Client(timeout=300) as client:
        too_many = client.post(call, **too_big)
        singles = [client.post(call, **worst) for _ in range(3)]
        batches = [client.post(batch_call, **worst_batch) for _ in range(3)]
    for prober in probers:
        prober.stopping.set()
        prober.join()
    health, options = probers
    assert health.failures == options.failures == 0
    assert health.p99() < P99_LIMIT, f"/healthz p99 {health.p99():.3f} s over {len(health.delays)} probes"
    assert options.p99() < P99_LIMIT, f"OPTIONS p99 {options.p99():.3f} s over {len(options.delays)} probes"
    assert too_many.status_code == 400 and too_many.json()["error"] == "ERROR_ARGUMENT"
    assert [(answer.status_code, answer.json()["result"]) for answer in singles] == [(200, [])] * 3
    for batch in batches:  # bounded in all: five of the heaviest filters, then each is refused
        assert batch.json()["result"]["result"] == [[]] * 5
        errors = batch.json()["result"]["result_error"]
        assert len(errors) == 45 and {error["error"] for error in errors.values()} == {"ERROR_ARGUMENT"}
