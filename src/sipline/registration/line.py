"""One cloud line's registration over time, sans-IO (docs/behaviour.md#cloud-registration).

How it works: the machine holds when the line should next register
(`next_attempt_at`) and its STATUS_* (docs/behaviour.md#reg-status). The engine starts an attempt when
one is due and hands its outcome to `finish`, which sets the status and the
next time: a refresh after a success (docs/behaviour.md#reg-expiry), backoff with jitter after a
transient failure, the slow schedule after a rejection (docs/behaviour.md#reg-retry). A change of
SERVER, proxy, LOGIN or AUTH_USER starts a new Call-ID; a PASSWORD change keeps
it (docs/behaviour.md#reg-lifecycle). Outcomes of an attempt begun before a change are ignored.

    status:  wait ─sending─► in_progress ──OK──► success ◄──OK── error
               │                  └──failure──► error ◄──(R, or D passed)── success
               └──────────failure──────────────┘
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sipline.registration import schedule
from sipline.registration.attempt import Session
from sipline.registration.history import LineHistory, cause_of
from sipline.registration.outcome import FailureClass, Outcome, OutcomeKind
from sipline.registration.request import Account
from sipline.sip.identity import new_call_id
from sipline.sip.resolve import Target
from sipline.store.records import Cause, StatusChange, StatusResult

DEFAULT_EXPIRES = 600  # docs/behaviour.md#reg-request: requested expiry by default


@dataclass(frozen=True)
class Status:
    result: StatusResult
    code: int
    message: str
    updated_at: float  # wall clock: LAST_UPDATED


def new_session(token: str, rng: random.Random) -> Session:
    return Session(call_id=new_call_id(rng), token=token, expires=DEFAULT_EXPIRES)


class LineRegistration:
    __slots__ = (
        "line_id",
        "reg_id",
        "account",
        "session",
        "status",
        "rng",
        "next_attempt_at",
        "binding_deadline",
        "sticky",
        "generation",
        "attempting",
        "transient_failures",
        "rejected_failures",
        "last_failure",
        "public_address",
        "nat_learned",
        "changed",
        "retries",
        "history",
        "breaker_note",
    )

    def __init__(
        self,
        line_id: int,
        reg_id: int,
        account: Account,
        session: Session,
        status: Status,
        *,
        rng: random.Random,
        first_attempt_at: float,
        public_address: bool = False,
        retries: schedule.Retries = schedule.Retries(),
        history: LineHistory | None = None,
    ) -> None:
        self.line_id = line_id
        self.reg_id = reg_id
        self.account = account
        self.session = session
        self.status = status
        self.rng = rng
        self.next_attempt_at: float | None = first_attempt_at
        self.binding_deadline: float | None = None  # D (monotonic); unknown after a restart
        self.sticky: Target | None = None  # docs/behaviour.md#reg-targets: where refreshes go after a 2xx
        self.generation = 0  # bumped by every change; outcomes of older attempts are dropped
        self.attempting = False
        self.transient_failures = 0
        self.rejected_failures = 0
        self.last_failure: Outcome | None = None
        self.public_address = (
            public_address  # --sip-public set: do not learn from Via (docs/behaviour.md#reg-keepalive)
        )
        self.nat_learned = False
        self.changed = False  # status differs from what the store has
        self.retries = retries  # the first waits after a failure (docs/behaviour.md#reg-retry)
        self.history = history or LineHistory(line_id, "")  # docs/behaviour.md#line-history
        # docs/behaviour.md#line-history: PROVIDER_DOWN while a breaker holds the line, PROVIDER_RECOVERED
        # once it released it, until the line's next outcome
        self.breaker_note: Cause | None = None

    # -- time ---------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earlier of the next attempt and, while a live binding is failing, its expiry (docs/behaviour.md#reg-status)."""
        deadlines = [self.next_attempt_at] if self.next_attempt_at is not None else []
        if self._failing_while_registered():
            deadlines.append(self.binding_deadline)  # type: ignore[arg-type]
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float, wall: float) -> bool:
        """Returns True when an attempt is due now (the engine then paces and starts it)."""
        if self._failing_while_registered() and now >= self.binding_deadline:  # type: ignore[operator]
            failure: Outcome = self.last_failure  # type: ignore[assignment]
            held = self.breaker_note is Cause.PROVIDER_DOWN  # no refresh went: the breaker held it
            cause = Cause.PROVIDER_DOWN if held else cause_of(failure)
            self._set_status(StatusResult.ERROR, failure.code, failure.message, wall, cause, now)
        return self.next_attempt_at is not None and now >= self.next_attempt_at and not self.attempting

    def _failing_while_registered(self) -> bool:
        return (
            self.status.result is StatusResult.SUCCESS
            and self.last_failure is not None
            and self.binding_deadline is not None
        )

    @property
    def is_refresh(self) -> bool:
        """A scheduled refresh of a live binding (the pacing lets these through first, docs/behaviour.md#reg-pacing)."""
        return self.status.result is StatusResult.SUCCESS and self.last_failure is None

    # -- attempts --------------------------------------------------------------------------------

    def begin(self) -> int:
        """An attempt is due and joins the admission queue (docs/behaviour.md#reg-pacing); returns the generation to hand
        back to finish()."""
        self.attempting = True
        self.next_attempt_at = None
        return self.generation

    def sending(self, wall: float) -> None:
        """A REGISTER of the attempt leaves the admission queue: a first cycle is `in_progress` (docs/behaviour.md#reg-status)."""
        if self.status.result is StatusResult.WAIT:
            self._set_status(StatusResult.IN_PROGRESS, 0, "", wall, Cause.REGISTERING)

    def finish(self, outcome: Outcome, generation: int, now: float, wall: float) -> None:
        if generation != self.generation:
            return  # begun before a change (docs/behaviour.md#reg-lifecycle): not reported
        self.attempting = False
        if outcome.kind is OutcomeKind.OK:
            self._succeeded(outcome, now, wall)
        else:
            self._failed(outcome, now, wall)
        self.breaker_note = None

    def _succeeded(self, outcome: Outcome, now: float, wall: float) -> None:
        self.transient_failures = self.rejected_failures = 0
        self.last_failure = None
        self.sticky = outcome.target
        sent_at = outcome.sent_at if outcome.sent_at is not None else now
        granted = outcome.granted or self.session.expires
        self.binding_deadline = sent_at + granted
        self.next_attempt_at = sent_at + schedule.refresh_delay(granted, self.rng)
        again = self.status.result is StatusResult.SUCCESS  # docs/behaviour.md#line-history: "refreshed"
        cause = Cause.REFRESHED if again else Cause.REGISTERED
        if not again and self.breaker_note is Cause.PROVIDER_RECOVERED:
            cause = Cause.PROVIDER_RECOVERED  # docs/behaviour.md#line-history: a line the breaker released
        self._set_status(StatusResult.SUCCESS, outcome.code, "", wall, cause)
        observed = outcome.observed
        if observed and not self.public_address and not self.nat_learned and self._behind_nat(observed):
            # docs/behaviour.md#reg-keepalive: re-register once with the address the registrar saw; the old Contact is retired in it
            self.session.contact_address = observed
            self.nat_learned = True
            self.next_attempt_at = now

    def _behind_nat(self, observed: tuple[str, int]) -> bool:
        registered = self.session.registered_contact or ""
        host, port = observed
        return f"@{host}:{port};" not in registered and f"@[{host}]:{port};" not in registered

    def _failed(self, outcome: Outcome, now: float, wall: float) -> None:
        self.last_failure = outcome
        if outcome.target is not None and outcome.target == self.sticky:
            self.sticky = None  # docs/behaviour.md#reg-targets: full selection again after the sticky target failed
        registered = self.status.result is StatusResult.SUCCESS
        binding_left = self.binding_deadline - now if registered and self.binding_deadline else None
        if outcome.failure_class is FailureClass.REJECTED:
            delay = schedule.rejected_delay(self.rejected_failures, self.rng, self.retries.rejected)
            self.rejected_failures += 1
            self._set_status(StatusResult.ERROR, outcome.code, outcome.message, wall, cause_of(outcome), now)
        else:
            delay = schedule.transient_delay(
                self.transient_failures, outcome.retry_after, binding_left, self.rng, self.retries.transient
            )
            self.transient_failures += 1
            if not (registered and binding_left and binding_left > 0):
                self._set_status(StatusResult.ERROR, outcome.code, outcome.message, wall, cause_of(outcome), now)
            else:  # docs/behaviour.md#reg-log: still registered, the failure is logged all the same
                self.history.failed(outcome, self.status.result, self.account.provider, now)
        self.next_attempt_at = now + delay

    # -- changes -----------------------------------------------------------------------------------

    def reconfigure(self, account: Account, now: float, wall: float) -> tuple[Account, Session, Target | None] | None:
        """New settings from the API (docs/behaviour.md#reg-lifecycle). Returns the old (account, session, target) to unregister, if any."""
        old_account, old_session, old_target = self.account, self.session, self.sticky
        may_be_bound = self.status.result is StatusResult.SUCCESS or self.attempting
        self.account = account
        if account.identity != old_account.identity:
            self.session = new_session(old_session.token, self.rng)
            self.sticky = None
            self.binding_deadline = None
            self.nat_learned = False
        else:
            self.session.nonces.clear()  # a PASSWORD change keeps the Call-ID and the binding
        self._restart(now, wall, Cause.LINE_UPDATED)
        if account.identity != old_account.identity and may_be_bound:
            return old_account, old_session, old_target
        return None

    def register_now(self, now: float, wall: float) -> None:
        """The operator's "re-register now": counters reset, status wait, attempt at once."""
        self._restart(now, wall, Cause.REGISTER_NOW)

    def _restart(self, now: float, wall: float, cause: Cause) -> None:
        self.generation += 1
        self.attempting = False
        self.transient_failures = self.rejected_failures = 0
        self.last_failure = None
        self.breaker_note = None
        self.next_attempt_at = now
        self._set_status(StatusResult.WAIT, 0, "", wall, cause)

    def _set_status(
        self, result: StatusResult, code: int, message: str, wall: float, cause: Cause, now: float | None = None
    ) -> None:
        """`now` with failures: the history paces their warnings by it (docs/behaviour.md#reg-log)."""
        current = self.status
        if (current.result, current.code, current.message) != (result, code, message):
            self.status = Status(result, code, message, wall)  # LAST_UPDATED moves only on change
            self.changed = True
            self.history.changed(StatusChange(wall, result, code, message, cause), self.account.provider, now)
        elif now is not None and self.last_failure is not None:  # the same failure again
            self.history.failed(self.last_failure, result, self.account.provider, now)
