"""The per-provider breaker (docs/behaviour.md#reg-pacing), pure: when most of a provider's lines
fail as if it were down, hold them, probe with one, and release them paced once it answers.

How it works: each breaker remembers, per line, its last outcome within BREAKER_WINDOW and whether
that outcome says the provider is down (timeout, transport, DNS, a 503). The engine asks hold()
before a line's non-refresh attempt.

    closed ──most lines down──► open ──the provider answered──► recovering ──RELEASE_SPREAD──► closed
                                  ▲                                  │
                                  └────────most lines down───────────┘

While open, the first line to fall due is the probe and goes on its own backoff; the others are
held. The first answer (any outcome but "down") releases the held lines, spread over the release
spread (RELEASE_SPREAD unless set).
State changes carry the wall-clock time they happened at (`since`), for the store and the API.
"""

from __future__ import annotations

from sipline.store.records import BreakerState, ProviderState

BREAKER_WINDOW = 60.0  # docs/behaviour.md#reg-pacing: outcomes counted over this many seconds
BREAKER_MIN_LINES = 3  # docs/behaviour.md#reg-pacing: fewer failing lines never open it (1 of 2 does not)
BREAKER_SHARE = 0.5  # docs/behaviour.md#reg-pacing: at least this share of the lines that had an outcome
RELEASE_SPREAD = 30.0  # docs/behaviour.md#reg-pacing: held lines are released over this many seconds (a setting)

# docs/behaviour.md#reg-pacing: which events move the breaker, from which state
TRANSITIONS: dict[tuple[BreakerState, str], BreakerState] = {
    (BreakerState.CLOSED, "down"): BreakerState.OPEN,
    (BreakerState.RECOVERING, "down"): BreakerState.OPEN,
    (BreakerState.OPEN, "answered"): BreakerState.RECOVERING,
    (BreakerState.RECOVERING, "released"): BreakerState.CLOSED,
}


class Breaker:
    """One provider's breaker. Methods that may change the state return whether they did."""

    __slots__ = (
        "provider",
        "release_spread",
        "state",
        "since",
        "outcomes",
        "pruned_at",
        "held",
        "probe",
        "recovered_at",
    )

    def __init__(self, provider: str, wall: float, release_spread: float = RELEASE_SPREAD) -> None:
        self.provider = provider
        self.release_spread = release_spread
        self.state = BreakerState.CLOSED
        self.since = wall  # wall clock of the last change (or of the breaker's making)
        self.outcomes: dict[int, tuple[float, bool]] = {}  # line id → (when, the provider seemed down)
        self.pruned_at = 0.0  # monotonic: outcomes older than the window were last dropped then
        self.held: set[int] = set()
        self.probe: int | None = None
        self.recovered_at: float | None = None  # monotonic: when recovering ends

    def next_deadline(self) -> float | None:
        return self.recovered_at if self.state is BreakerState.RECOVERING else None

    def record(self) -> ProviderState:
        return ProviderState(self.provider, self.state, self.since)

    def _move(self, event: str, wall: float) -> bool:
        state = TRANSITIONS.get((self.state, event))
        if state is None:
            return False  # the event means nothing in this state (e.g. a failure while open)
        self.state, self.since = state, wall
        return True

    def _prune(self, now: float) -> None:
        """Outcomes older than the window go: the dict holds about the lines of the last minute."""
        self.pruned_at = now
        for line_id, (when, _) in list(self.outcomes.items()):
            if now - when > BREAKER_WINDOW:
                del self.outcomes[line_id]

    def _most_down(self, now: float) -> bool:
        self._prune(now)
        down = sum(1 for _, failed in self.outcomes.values() if failed)
        return down >= BREAKER_MIN_LINES and down >= BREAKER_SHARE * len(self.outcomes)

    def failed(self, line_id: int, now: float, wall: float) -> bool:
        """A line's attempt failed as if the provider were down; True when that opened the breaker."""
        self.outcomes[line_id] = (now, True)
        if self.state is BreakerState.OPEN or not self._most_down(now):
            return False
        self.probe, self.recovered_at = None, None
        return self._move("down", wall)

    def answered(self, line_id: int, now: float, wall: float) -> set[int]:
        """The provider answered one of the line's requests; while open, the held lines to release
        (the breaker is then recovering until the release spread has passed)."""
        self.outcomes[line_id] = (now, False)
        if now - self.pruned_at > BREAKER_WINDOW:
            self._prune(now)  # once a window: refreshes of a provider that never fails would pile up
        if not self._move("answered", wall):
            return set()
        self.outcomes.clear()  # the failures before the answer say nothing of what comes next
        self.probe, self.recovered_at = None, now + self.release_spread
        released, self.held = self.held, set()
        return released

    def handle_timer(self, now: float, wall: float) -> bool:
        """The release is over: closed (True) unless it opened again meanwhile."""
        if self.recovered_at is None or now < self.recovered_at:
            return False
        self.recovered_at = None
        return self._move("released", wall)

    def hold(self, line_id: int) -> bool:
        """True when the line must wait; False lets it go (the breaker is not open, or it is the probe)."""
        if self.state is not BreakerState.OPEN:
            return False
        if self.probe in (None, line_id):
            self.probe = line_id
            return False
        self.held.add(line_id)
        return True

    def forget(self, line_id: int) -> set[int]:
        """A line is gone; if it was the probe, the held lines go again (the first due probes next)."""
        self.outcomes.pop(line_id, None)
        self.held.discard(line_id)
        if self.probe != line_id:
            return set()
        self.probe = None
        released, self.held = self.held, set()
        return released


class Breakers:
    """One breaker per provider (docs/behaviour.md#providers: the next hop, `host[:port]`), and the
    state changes not yet stored."""

    def __init__(self, release_spread: float = RELEASE_SPREAD) -> None:
        self.release_spread = release_spread
        self.by_provider: dict[str, Breaker] = {}
        self.unsaved: dict[str, ProviderState] = {}

    def for_provider(self, provider: str, wall: float) -> Breaker:
        breaker = self.by_provider.get(provider)
        if breaker is None:
            breaker = self.by_provider[provider] = Breaker(provider, wall, self.release_spread)
        return breaker

    def changed(self, breaker: Breaker) -> None:
        self.unsaved[breaker.provider] = breaker.record()

    def take(self) -> list[ProviderState]:
        """The changes for the next store batch (put_back() them if it is not written)."""
        taken = list(self.unsaved.values())
        self.unsaved.clear()
        return taken

    def put_back(self, states: list[ProviderState]) -> None:
        for state in states:
            self.unsaved.setdefault(state.provider, state)  # a newer change wins

    def forget(self, line_id: int) -> list[int]:
        """A line is gone: the lines its breakers release."""
        return [held for breaker in self.by_provider.values() for held in breaker.forget(line_id)]

    def states(self) -> dict[str, BreakerState]:
        return {provider: breaker.state for provider, breaker in self.by_provider.items()}
