"""Non-INVITE client transaction (RFC 3261 §17.1.2), sans-IO.

How it works: the caller creates a transaction with the request's bytes, sends
what `datagrams_to_send(now)` returns, and calls `handle_timer(now)` at
`next_deadline()`. Over UDP the request is resent at T1, 2·T1, … capped at T2
(every T2 once a provisional answer came); Timer F (64·T1) ends it with
TimedOut. A final response moves it to COMPLETED, where it lingers for Timer K
(T4 over UDP, none over TCP/TLS) to absorb retransmitted responses.

    TRYING ──1xx──► PROCEEDING ──final──► COMPLETED ──Timer K──► TERMINATED
      │  └──────────────final─────────────────┘
      └─(either) Timer F / transport error ──────────────────────► TERMINATED
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from sipline.sip.message import Response


class State(Enum):
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    TERMINATED = "terminated"


@dataclass(frozen=True)
class Timers:
    """RFC 3261 Appendix A: T1 500 ms, T2 4 s, T4 5 s (§17.1.2.2 uses them)."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    @classmethod
    def for_t1(cls, t1: float) -> Timers:
        """The timers of a link whose round trip is estimated as `t1` (§17.1.1.1 lets T1 be set, e.g.
        higher on a slow link): T2 and T4 keep their proportions to the default T1 (8×, 10×), so the
        retransmission pattern (11 sends over UDP) and Timer F (64·T1) keep their shape."""
        return cls(t1, t1 * (cls.t2 / cls.t1), t1 * (cls.t4 / cls.t1))


@dataclass(frozen=True)
class ResponseReceived:
    response: Response


@dataclass(frozen=True)
class TimedOut:
    """Timer F fired: no final response (§17.1.2.2); the TU treats it as 408."""


@dataclass(frozen=True)
class TransportFailed:
    reason: str


Event = ResponseReceived | TimedOut | TransportFailed

# (state, what happened) → next state; a pair that is absent leaves the transaction as it is.
TRANSITIONS: dict[tuple[State, str], State] = {
    (State.TRYING, "provisional"): State.PROCEEDING,
    (State.TRYING, "final"): State.COMPLETED,
    (State.PROCEEDING, "provisional"): State.PROCEEDING,
    (State.PROCEEDING, "final"): State.COMPLETED,
    (State.TRYING, "timer_f"): State.TERMINATED,
    (State.PROCEEDING, "timer_f"): State.TERMINATED,
    (State.TRYING, "transport_error"): State.TERMINATED,
    (State.PROCEEDING, "transport_error"): State.TERMINATED,
    (State.COMPLETED, "timer_k"): State.TERMINATED,
}


class ClientTransaction:
    __slots__ = (
        "request",
        "reliable",
        "timers",
        "state",
        "_events",
        "_outgoing",
        "_interval",
        "timer_e_deadline",
        "timer_f_deadline",
        "timer_k_deadline",
        "sends",
    )

    def __init__(self, request: bytes, *, reliable: bool, now: float, timers: Timers = Timers()) -> None:
        self.request = request
        self.reliable = reliable
        self.timers = timers
        self.state = State.TRYING
        self._events: list[Event] = []
        self._outgoing: list[bytes] = [request]
        self._interval = timers.t1
        self.sends = 0
        # §17.1.2.2: Timer E only over unreliable transports; Timer F always
        self.timer_e_deadline: float | None = None if reliable else now + timers.t1
        self.timer_f_deadline: float | None = now + 64 * timers.t1
        self.timer_k_deadline: float | None = None

    def datagrams_to_send(self, now: float) -> list[bytes]:
        outgoing, self._outgoing = self._outgoing, []
        self.sends += len(outgoing)
        return outgoing

    def next_deadline(self) -> float | None:
        earliest = None
        for deadline in (self.timer_e_deadline, self.timer_f_deadline, self.timer_k_deadline):
            if deadline is not None and (earliest is None or deadline < earliest):
                earliest = deadline
        return earliest

    def next_event(self) -> Event | None:
        return self._events.pop(0) if self._events else None

    @property
    def terminated(self) -> bool:
        return self.state is State.TERMINATED

    def receive(self, response: Response, now: float) -> None:
        """A response matched to this transaction (§17.1.3); retransmissions in COMPLETED are absorbed."""
        kind = "provisional" if response.status < 200 else "final"
        if self._move(kind):
            self._events.append(ResponseReceived(response))
            if self.state is State.PROCEEDING and not self.reliable:
                self._interval = self.timers.t2  # §17.1.2.2: retransmit every T2 once proceeding
            if self.state is State.COMPLETED:
                self.timer_e_deadline = self.timer_f_deadline = None
                self.timer_k_deadline = now + (0 if self.reliable else self.timers.t4)

    def handle_timer(self, now: float) -> None:
        if self.timer_k_deadline is not None and now >= self.timer_k_deadline:
            self._move("timer_k")
            self.timer_k_deadline = None
        elif self.timer_f_deadline is not None and now >= self.timer_f_deadline:
            self._move("timer_f")
            self.timer_e_deadline = self.timer_f_deadline = None
            self._events.append(TimedOut())
        elif self.timer_e_deadline is not None and now >= self.timer_e_deadline:
            self._outgoing.append(self.request)
            if self.state is State.TRYING:
                self._interval = min(2 * self._interval, self.timers.t2)
            self.timer_e_deadline = now + self._interval

    def transport_failed(self, reason: str, now: float) -> None:
        """The transport could not deliver the request (§8.1.3.1): connection refused, ICMP, reset."""
        if self._move("transport_error"):
            self.timer_e_deadline = self.timer_f_deadline = None
            self._events.append(TransportFailed(reason))

    def _move(self, happened: str) -> bool:
        next_state = TRANSITIONS.get((self.state, happened))
        if next_state is None:
            return False
        self.state = next_state
        return True
