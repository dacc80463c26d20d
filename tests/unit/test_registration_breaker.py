"""The per-provider breaker inside the registration core (docs/behaviour.md#reg-pacing,
docs/behaviour.md#line-history, docs/behaviour.md#providers), with a hand-stepped clock."""

from __future__ import annotations

from sipline.registration.schedule import Retries
from sipline.registration.settings import EngineSettings
from sipline.sip.message import Request, Response
from sipline.sip.parse import parse_message
from sipline.sip.responses import encode_response
from sipline.sip.transaction import Timers
from sipline.store.records import BreakerState, Cause, ProviderState, RegistrationUpdate, StatusResult
from tests.unit.test_registration_core import WALL, Harness, Network, Registrar, line_rows

PROVIDER = "192.0.2.10"
# as the interop tests run: Timer F 0.64 s, first retry within 0.3–0.6 s, release over 5 s
SETTINGS = EngineSettings(startup_spread=0.1, new_line_spread=0.2, timers=Timers.for_t1(0.01),
                          retries=Retries(transient=0.6, rejected=6.0), breaker_release_spread=5.0)


class Provider(Registrar):
    """Grants every REGISTER while up; while down its requests are lost (see `fate`); `refuse` answers 403."""

    def __init__(self) -> None:
        super().__init__(challenge=False)
        self.down = False
        self.refuse = False

    def answer(self, request: Request, now: float) -> Response:
        if self.refuse:
            self.requests.append((now, request))
            return parse_message(encode_response(request, 403, "Forbidden", to_tag="t"))
        return super().answer(request, now)


class LossyNetwork(Network):
    """Loses every request while the provider is down, and those of the lines named in `lost`."""

    def __init__(self, provider: Provider) -> None:
        super().__init__(provider, delay=0.001)
        self.provider = provider
        self.lost: set[str] = set()  # Call-IDs

    def send(self, data: bytes, now: float) -> None:
        request = parse_message(data)
        if self.provider.down or request.headers.get("Call-ID") in self.lost:
            self.sent += 1
            return
        super().send(data, now)


class Recording(Harness):
    """Keeps every history entry and every breaker state the core hands to the store."""

    def __init__(self, count: int, provider: Provider) -> None:
        self.entries: dict[int, list] = {}
        self.states: list[ProviderState] = []
        super().__init__(line_rows(count), LossyNetwork(provider), SETTINGS)

    def write(self, updates: list[RegistrationUpdate]) -> None:
        for update in updates:
            self.entries.setdefault(update.line_id, []).extend(update.history)
        self.states += self.core.provider_writes()
        super().write(updates)

    def service(self) -> None:
        super().service()
        self.states += self.core.provider_writes()

    def breaker(self):
        return self.core.breakers.by_provider[PROVIDER]

    def causes(self, line_id: int) -> list[Cause]:
        return [entry.cause for entry in self.entries.get(line_id, [])]


def test_most_lines_timing_out_open_it_one_probes_then_the_held_lines_go_spread():
    provider = Provider()
    provider.down = True
    harness = Recording(6, provider)
    harness.run_until(2.0)  # every first REGISTER timed out (the first alone: the others waited for its nonce)
    breaker = harness.breaker()
    assert breaker.state is BreakerState.OPEN
    assert [state.state for state in harness.states] == [BreakerState.OPEN]
    harness.run_until(20.0)
    probe = breaker.probe
    assert probe is not None and breaker.held == set(range(1, 7)) - {probe}
    sent_while_open = harness.network.sent
    for line_id in breaker.held:
        machine = harness.core.lines[line_id]
        assert machine.next_attempt_at is None and not machine.attempting
        assert harness.status(line_id) is StatusResult.ERROR and harness.stored[line_id].status_code == 408
    harness.run_until(40.0)
    assert harness.network.sent > sent_while_open  # the probe keeps trying, alone

    provider.down = False
    recovered_from = harness.now
    harness.run_until(recovered_from + 20.0)  # the probe's backoff (< 20 s here) lets it through
    assert harness.status(probe) is StatusResult.SUCCESS
    assert breaker.state in (BreakerState.RECOVERING, BreakerState.CLOSED)
    harness.run_until(recovered_from + 30.0)
    assert breaker.state is BreakerState.CLOSED
    assert [state.state for state in harness.states] == [BreakerState.OPEN, BreakerState.RECOVERING,
                                                        BreakerState.CLOSED]
    assert harness.states[-1].since - harness.states[-2].since == 5.0  # closed once the release spread passed
    assert all(harness.status(line_id) is StatusResult.SUCCESS for line_id in range(1, 7))
    released_at = sorted(at for at, request in provider.requests
                         if request.headers.get("Call-ID") != f"call-{probe}")
    assert len(released_at) == 5 and released_at[-1] - released_at[0] > 1.0  # spread, not a burst
    assert released_at[-1] - released_at[0] <= 5.0
    for line_id in breaker.held | (set(range(1, 7)) - {probe}):
        assert harness.causes(line_id)[-1] is Cause.PROVIDER_RECOVERED
    assert harness.causes(probe)[-1] is Cause.REGISTERED


def test_rejections_do_not_open_it():
    provider = Provider()
    provider.refuse = True
    harness = Recording(6, provider)
    harness.run_until(30.0)
    assert all(harness.status(line_id) is StatusResult.ERROR for line_id in range(1, 7))
    assert harness.breaker().state is BreakerState.CLOSED and harness.states == []


def test_a_minority_timing_out_does_not_open_it():
    provider = Provider()
    harness = Recording(8, provider)
    harness.run_until(1.0)
    assert all(harness.status(line_id) is StatusResult.SUCCESS for line_id in range(1, 9))
    # three lines' next REGISTERs are lost (of 8 that answered within the window)
    harness.network.lost = {"call-1", "call-2", "call-3"}
    for line_id in (1, 2, 3):
        harness.core.register_now(line_id, harness.now)
    harness.service()
    harness.run_until(4.0)  # each timed out, and again on its retries
    assert [harness.status(line_id) for line_id in (1, 2, 3)] == [StatusResult.ERROR] * 3
    assert harness.breaker().state is BreakerState.CLOSED


def test_a_live_binding_that_ends_while_held_says_provider_down():
    provider = Provider()
    provider.expires = 60
    harness = Recording(4, provider)
    harness.run_until(1.0)
    provider.down = True
    harness.run_until(1.0 + 60.0 + 5.0)  # refreshes fail; the breaker holds the retries; the bindings end
    breaker = harness.breaker()
    assert breaker.state is BreakerState.OPEN
    held = sorted(breaker.held)
    assert held and all(harness.status(line_id) is StatusResult.ERROR for line_id in held)
    assert all(harness.causes(line_id)[-1] is Cause.PROVIDER_DOWN for line_id in held)
    assert harness.states[0].since > WALL
