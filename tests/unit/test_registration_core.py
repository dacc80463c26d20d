"""The registration core (registration/core.py) with a hand-stepped clock: no sockets, no asyncio.

A scripted registrar answers every REGISTER the core asks to send; the network
between them can drop, delay, duplicate and reorder datagrams. Store writes are
taken as the runner takes them and acknowledged at once.
"""

from __future__ import annotations

import heapq
import random
import time
from collections import Counter
from collections.abc import Callable

from sipline.registration.core import RegistrationCore
from sipline.registration.pacing import PacingSettings
from sipline.registration.schedule import Retries
from sipline.registration.settings import EngineSettings
from sipline.sip.headers import parse_cseq
from sipline.sip.message import Request, Response
from sipline.sip.parse import parse_message
from sipline.sip.responses import encode_response
from sipline.sip.transaction import Timers
from sipline.store.records import Line, LineType, Registration, RegistrationUpdate, StatusResult

SERVER = "192.0.2.10"
CHALLENGE = 'Digest realm="example.net", nonce="{nonce}", qop="auth", algorithm=MD5'
WALL = 1_700_000_000.0


def line_rows(count: int, server: str = SERVER) -> list[tuple[Line, Registration]]:
    rows = []
    for line_id in range(1, count + 1):
        line = Line(id=line_id, config_id=line_id, portal_id=1, app_id="", type=LineType.CLOUD, title=f"l{line_id}",
                    server=server, login=f"u{line_id}", password="secret", auth_user=None, outbound_proxy=None,
                    detect_line_number="N", line_detect_header_order="", reg_id=line_id, incoming_login=None,
                    incoming_password=None, registration_status_code=None, registration_error_message=None)
        registration = Registration(reg_id=line_id, line_id=line_id, status_result=StatusResult.WAIT, status_code=0,
                                    error_message="", last_updated=WALL, call_id=f"call-{line_id}",
                                    contact_token=f"l{line_id:016x}")
        rows.append((line, registration))
    return rows


class Registrar:
    """Challenges a REGISTER without credentials (once per login when `challenge`), grants the rest."""

    def __init__(self, *, challenge: bool = True, expires: int = 600) -> None:
        self.challenge = challenge
        self.expires = expires
        self.requests: list[tuple[float, Request]] = []

    def answer(self, request: Request, now: float) -> Response:
        self.requests.append((now, request))
        if self.challenge and "Authorization" not in request.headers:
            header = ("WWW-Authenticate", CHALLENGE.format(nonce="n1"))
            return parse_message(encode_response(request, 401, "Unauthorized", to_tag="t", headers=[header]))
        contact = request.headers.get_all("Contact")[0].split(";expires")[0]
        granted = ("Contact", f"{contact};expires={self.expires}")
        return parse_message(encode_response(request, 200, "OK", to_tag="t", headers=[granted]))


class Network:
    """What the core sends reaches the registrar after `delay`; its answer comes back after
    `delay` too. `fate(index)` decides per request datagram: "drop", "duplicate" (the answer
    arrives twice, the copy late) or "deliver"."""

    def __init__(self, registrar: Registrar, *, delay: float = 0.01,
                 fate: Callable[[int], str] = lambda index: "deliver") -> None:
        self.registrar = registrar
        self.delay = delay
        self.fate = fate
        self.sent = 0
        self.in_transit: list[tuple[float, int, Response]] = []

    def send(self, data: bytes, now: float) -> None:
        index, self.sent = self.sent, self.sent + 1
        fate = self.fate(index)
        if fate == "drop":
            return
        request = parse_message(data)
        assert isinstance(request, Request)
        response = self.registrar.answer(request, now + self.delay)
        heapq.heappush(self.in_transit, (now + 2 * self.delay, index, response))
        if fate == "duplicate":
            heapq.heappush(self.in_transit, (now + 2 * self.delay + 1.0, index, response))

    def next_arrival(self) -> float | None:
        return self.in_transit[0][0] if self.in_transit else None

    def arrived(self, now: float) -> list[Response]:
        due = []
        while self.in_transit and self.in_transit[0][0] <= now:
            due.append(heapq.heappop(self.in_transit)[2])
        return due


class Harness:
    """The runner's part, by hand: the clock moves only from one deadline or arrival to the next."""

    def __init__(self, rows: list[tuple[Line, Registration]], network: Network,
                 settings: EngineSettings = EngineSettings()) -> None:
        self.now = 0.0
        self.network = network
        self.stats: Counter[str] = Counter()
        self.stored: dict[int, RegistrationUpdate] = {}
        self.core = RegistrationCore(settings, now=0.0, rng=random.Random(7), wall=lambda: WALL + self.now,
                                     local=lambda transport: ("198.51.100.1", 5060), permits=lambda address: True,
                                     stats=self.stats)
        self.core.resume(rows, self.now)
        self.write(self.core.store_writes(everything=True))
        self.core.schedule_all()
        self.service()

    def write(self, updates: list[RegistrationUpdate]) -> None:
        for update in updates:
            self.stored[update.line_id] = update
        self.core.writes_stored(updates, self.now)

    def service(self) -> None:
        while True:
            datagrams, updates = self.core.datagrams_to_send(), self.core.store_writes()
            assert not self.core.dns_queries()  # IP literals only
            if not (datagrams or updates):
                return
            for datagram in datagrams:
                self.network.send(datagram.data, self.now)
            self.write(updates)

    def run_until(self, end: float) -> None:
        while True:
            times = [at for at in (self.core.next_deadline(), self.network.next_arrival()) if at is not None]
            if not times or min(times) > end:
                self.now = end
                return
            self.now = max(self.now, min(times))
            for response in self.network.arrived(self.now):
                self.core.receive(response, None, self.now)
                self.service()
            self.core.handle_timer(self.now)
            self.service()

    def status(self, line_id: int) -> StatusResult:
        return self.core.lines[line_id].status.result

    def stored_status(self, line_id: int) -> StatusResult:
        return self.stored[line_id].status_result


def cseqs(requests: list[tuple[float, Request]]) -> list[int]:
    return [parse_cseq(request.headers.get("CSeq"))[0] for _, request in requests]


def test_register_without_challenge():
    registrar = Registrar(challenge=False)
    harness = Harness(line_rows(1), Network(registrar))
    harness.run_until(10.0)  # the first attempt comes within the start-up spread (5 s)
    assert harness.status(1) is StatusResult.SUCCESS and harness.stored_status(1) is StatusResult.SUCCESS
    assert len(registrar.requests) == 1
    assert harness.stored[1].registered_contact is not None
    assert harness.stored[1].cseq_reserved >= 1000  # a block reserved before anything was sent


def test_challenge_then_ok():
    registrar = Registrar(challenge=True)
    harness = Harness(line_rows(1), Network(registrar))
    harness.run_until(10.0)
    assert harness.status(1) is StatusResult.SUCCESS
    first, second = (request for _, request in registrar.requests)
    assert "Authorization" not in first.headers and 'nonce="n1"' in second.headers.get("Authorization")
    assert cseqs(registrar.requests)[1] == cseqs(registrar.requests)[0] + 1
    assert first.headers.get("Call-ID") == second.headers.get("Call-ID") == "call-1"


def test_refresh_before_expiry():
    registrar = Registrar(challenge=False, expires=120)
    harness = Harness(line_rows(1), Network(registrar))
    harness.run_until(400.0)
    times = [at for at, _ in registrar.requests]
    assert len(times) >= 4
    for earlier, later in zip(times, times[1:]):
        assert 5.0 <= later - earlier < 120  # each refresh before the binding (120 s) runs out (docs/behaviour.md#reg-expiry)
    assert harness.status(1) is StatusResult.SUCCESS
    assert cseqs(registrar.requests) == sorted(set(cseqs(registrar.requests)))  # CSeq only goes up


def test_timeout_then_retry():
    registrar = Registrar(challenge=False)
    silent = 11  # the first transaction (sent at 0, 0.5, 1.5, 3.5 … 31.5 s) is lost: it times out
    harness = Harness(line_rows(1), Network(registrar, fate=lambda index: "drop" if index < silent else "deliver"))
    harness.run_until(5.0 + 33.0)  # past Timer F (64 × T1 = 32 s)
    assert harness.status(1) is StatusResult.ERROR and harness.stored[1].status_code == 408
    assert harness.network.sent >= 7  # retransmitted (Timer E) while it waited
    harness.run_until(5.0 + 33.0 + 60.0)  # docs/behaviour.md#reg-retry class T: retried within 15–30 s
    assert harness.status(1) is StatusResult.SUCCESS and harness.stored_status(1) is StatusResult.SUCCESS


def test_short_settings_shorten_exactly_the_delays_they_name():
    """As the interop tests run (FAST): a resumed line goes within the start-up spread, Timer F comes
    after 64·T1, the retry within the retry interval, a new line within the new-line spread."""
    settings = EngineSettings(startup_spread=0.1, new_line_spread=0.2, timers=Timers.for_t1(0.01),
                              retries=Retries(transient=0.6, rejected=6.0))
    registrar = Registrar(challenge=False)
    network = Network(registrar, delay=0.001, fate=lambda index: "drop" if index < 11 else "deliver")
    harness = Harness(line_rows(1), network, settings)
    harness.run_until(0.1 + 0.64 + 0.001)
    assert harness.status(1) is StatusResult.ERROR and network.sent == 11  # T1 10 ms: 11 sends in 0.64 s
    harness.run_until(0.1 + 0.64 + 0.6 + 0.01)
    assert harness.status(1) is StatusResult.SUCCESS and network.sent == 12
    added_at = harness.now
    harness.core.add_lines(line_rows(2)[1:], added_at)
    harness.service()
    harness.run_until(added_at + 0.2 + 0.01)
    assert harness.status(2) is StatusResult.SUCCESS
    assert added_at <= registrar.requests[-1][0] <= added_at + 0.2 + 0.001


def test_a_dropped_request_is_retransmitted():
    registrar = Registrar(challenge=True)
    harness = Harness(line_rows(1), Network(registrar, fate=lambda index: "drop" if index in (0, 2) else "deliver"))
    harness.run_until(10.0)
    assert harness.status(1) is StatusResult.SUCCESS
    assert harness.network.sent == 4  # each lost request sent again after T1
    assert len(registrar.requests) == 2


def test_duplicated_and_late_answers_are_harmless():
    """Every answer arrives twice, the copy a second late: after the next request went (reordered)."""
    registrar = Registrar(challenge=True)
    harness = Harness(line_rows(3), Network(registrar, fate=lambda index: "duplicate"))
    harness.run_until(20.0)
    assert all(harness.status(line_id) is StatusResult.SUCCESS for line_id in (1, 2, 3))
    assert harness.stats["unmatched_responses"] > 0  # the late copies match no transaction any more
    assert len(registrar.requests) <= 3 * 2  # no attempt was started again by a copy


def test_forgotten_line_is_not_retransmitted():
    registrar = Registrar(challenge=False)
    harness = Harness(line_rows(1), Network(registrar, fate=lambda index: "drop"))
    harness.run_until(5.5)
    sent = harness.network.sent
    assert sent >= 1
    harness.core.forget(1, harness.now, unregister=False)
    harness.service()
    harness.run_until(60.0)
    assert harness.network.sent == sent and 1 not in harness.core.lines


def test_storm_of_10000_lines_completes_within_pacing():
    count = 10_000
    pacing = PacingSettings(rate=1000.0, burst=1000.0, host_rate=1000.0, host_burst=100.0, host_in_flight=200,
                            in_flight=1000)
    registrar = Registrar(challenge=True)
    started = time.process_time()
    harness = Harness(line_rows(count), Network(registrar), EngineSettings(pacing=pacing))
    harness.run_until(30.0)
    cpu = time.process_time() - started
    assert all(harness.stored_status(line_id) is StatusResult.SUCCESS for line_id in range(1, count + 1))
    # one line learnt the nonce; the others answered it up front: one transaction each (nonces.py)
    assert len(registrar.requests) == count + 1
    per_second = Counter(int(at) for at, _ in registrar.requests)
    assert max(per_second.values()) <= pacing.rate + pacing.burst
    print(f"storm: {count} lines, {cpu:.2f} s CPU")
    assert cpu < 20.0, cpu  # a few hundred µs per line, mostly building, parsing and signing SIP messages
