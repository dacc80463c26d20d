"""A cloud line's status changes: what the store keeps of them (docs/behaviour.md#line-history) and how
they are logged (docs/behaviour.md#reg-log), sans-IO.

The line machine (line.py) tells its LineHistory of every change of its status, with the cause,
and of every failed attempt that left the status as it was. The history keeps the changes until
the engine's next store batch takes them (writes.py), and logs each at once: INFO, or WARNING for
a failure whose code the line has not warned of within WARN_AGAIN_AFTER; a repeated failure that
changes nothing is logged only when that warning is due again. Decisions take `now` (monotonic) from
the caller, so a test steps the clock by hand.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sipline.registration.outcome import Outcome, OutcomeKind
from sipline.store.records import Cause, StatusChange, StatusResult

log = logging.getLogger("sipline.registration")

WARN_AGAIN_AFTER = 600.0  # docs/behaviour.md#reg-log: a failure's repeats warn once per line and code per 10 min
PENDING_KEPT = 100  # entries held while the store cannot take them: what the store would keep anyway

CAUSES: dict[OutcomeKind, Cause] = {
    OutcomeKind.OK: Cause.REGISTERED,
    OutcomeKind.DNS_FAIL: Cause.DNS,
    OutcomeKind.TIMEOUT: Cause.TIMEOUT,
    OutcomeKind.TRANSPORT: Cause.TRANSPORT,
    OutcomeKind.TLS_HANDSHAKE: Cause.TLS,
    OutcomeKind.TLS_CERT: Cause.TLS,
    OutcomeKind.SERVER: Cause.SERVER_ERROR,
    OutcomeKind.ZERO_EXPIRY: Cause.ZERO_EXPIRY,
    OutcomeKind.AUTH_FAIL: Cause.CHALLENGE_REFUSED,
    OutcomeKind.AUTH_UNSUPPORTED: Cause.CHALLENGE_UNSUPPORTED,
    OutcomeKind.REJECTED: Cause.REJECTED,
    OutcomeKind.FORBIDDEN_TARGET: Cause.TARGET_REFUSED,
}
# written by the change itself, in its own transaction (telephony: an update resets the registration)
RECORDED_ELSEWHERE = frozenset({Cause.LINE_UPDATED})


def cause_of(outcome: Outcome) -> Cause:
    return CAUSES[outcome.kind]


class LineHistory:
    """One line's changes not yet stored, and the failures it has warned of (code → when)."""

    __slots__ = ("config_id", "portal", "pending", "warned")

    def __init__(self, config_id: int, portal: str) -> None:
        self.config_id = config_id
        self.portal = portal
        self.pending: list[StatusChange] = []
        self.warned: dict[int, float] | None = None  # made on the first failure: most lines never fail

    def changed(self, entry: StatusChange, provider: str, now: float | None) -> None:
        """The status became `entry`'s; `now` is given with failures (the warning's pacing needs it)."""
        if entry.cause not in RECORDED_ELSEWHERE:
            self.noted(entry)
        level = logging.INFO
        if entry.result is StatusResult.ERROR and now is not None and self._warn_due(entry.code, now):
            level = logging.WARNING
        if log.isEnabledFor(level):
            self._log(level, entry.result.value, entry.code, entry.message, entry.cause, provider, "")

    def failed(self, outcome: Outcome, status: StatusResult, provider: str, now: float) -> None:
        """An attempt failed and left the status `status` as it was: logged only when a warning of
        its code is due (docs/behaviour.md#reg-log)."""
        if self._warn_due(outcome.code, now) and log.isEnabledFor(logging.WARNING):
            self._log(
                logging.WARNING, "failed", outcome.code, outcome.message, cause_of(outcome), provider, status.value
            )

    def noted(self, entry: StatusChange) -> None:
        """An entry for the store that is not logged (a lease taken over: the keeper logs those)."""
        self.pending.append(entry)
        if len(self.pending) > PENDING_KEPT:
            del self.pending[0]

    def take(self) -> Sequence[StatusChange]:
        """The entries for the next store batch (put_back() them if it is not written)."""
        if not self.pending:
            return ()
        taken, self.pending = self.pending, []
        return taken

    def put_back(self, entries: Sequence[StatusChange]) -> None:
        self.pending[:0] = entries
        del self.pending[:-PENDING_KEPT]

    def _warn_due(self, code: int, now: float) -> bool:
        if self.warned is None:
            self.warned = {}
        last = self.warned.get(code)
        if last is not None and now - last < WARN_AGAIN_AFTER:
            return False
        self.warned[code] = now
        return True

    def _log(self, level: int, result: str, code: int, message: str, cause: Cause, provider: str, stays: str) -> None:
        # e.g. "line 12 (portal a.example): error 403 Forbidden (challenge refused)"
        log.log(
            level,
            "line %d (portal %s): %s %d%s (%s)%s",
            self.config_id,
            self.portal,
            result,
            code,
            f" {message}" if message else "",
            cause.value,
            f"; the status stays {stays}" if stays else "",
            extra={
                "config_id": self.config_id,
                "portal": self.portal,
                "code": code,
                "reason": message,
                "cause": cause.value,
                "provider": provider,
            },
        )
