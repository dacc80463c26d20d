"""Nonces shared between the lines of one provider (docs/behaviour.md#reg-digest), sans-IO.

A provider is the same Request-URI and outbound proxy (Account.provider). A
line's first REGISTER carries credentials built with the nonce another line's
REGISTER was last accepted with, so a start-up or failover storm costs one
transaction per line instead of two. This extends docs/behaviour.md#reg-digest, which allows preemptive
credentials on refreshes. A registrar that binds nonces to a user or a dialog
answers with a fresh challenge, answered as docs/behaviour.md#reg-digest says; when that happens to a
nonce shared less than NONCE_TRUST ago (not one that merely expired) and the
line then succeeds, the provider gets no shared nonces any more. While no nonce
is known for a provider, one line's attempt learns it and the first REGISTERs
of the others wait for that attempt (at most PROBE_WAIT).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sipline.registration.attempt import Nonce
from sipline.registration.line import LineRegistration
from sipline.registration.sending import Job
from sipline.registration.timers import TimerHeap

log = logging.getLogger("sipline.registration")

NONCE_TRUST = 30.0  # seconds: a shared nonce refused sooner was bound to its line, not expired
PROBE_WAIT = 1.0  # seconds first REGISTERs wait at most for another line to learn the provider's nonce


@dataclass
class Learning:
    """One line's attempt learns a provider's nonce; the first REGISTERs of others wait for it."""

    provider: str
    learner: Job
    until: float
    held: list[Job] = field(default_factory=list)

    def next_deadline(self) -> float:
        return self.until


class NonceSharing:
    def __init__(self, timers: TimerHeap, probe_wait: float = PROBE_WAIT) -> None:
        self.timers = timers
        self.probe_wait = probe_wait
        # Account.provider → (realm → nonce, when it was shared)
        self._shared: dict[str, tuple[dict[str, Nonce], float]] = {}
        self._unshared: set[str] = set()  # providers that refused a shared nonce
        self._learning: dict[str, Learning] = {}

    def wait_for_nonce(self, job: Job, now: float) -> bool:
        """A first REGISTER to a provider whose nonce no line knows: the first becomes the learner,
        the others wait for its outcome. Returns whether this one waits."""
        assert job.line is not None
        provider = job.line.account.provider
        if provider in self._unshared or provider in self._shared:
            return False
        learning = self._learning.get(provider)
        if learning is None:
            learning = self._learning[provider] = Learning(provider, job, now + self.probe_wait)
            self.timers.push(learning.until, learning)
            return False
        job.waited = True
        learning.held.append(job)
        return True

    def ended(self, job: Job) -> list[Job]:
        """The job's attempt has an outcome: if it was learning its provider's nonce, the jobs that
        waited for it go now (with its nonce, if it worked)."""
        assert job.line is not None
        learning = self._learning.get(job.line.account.provider)
        if learning is None or learning.learner is not job:
            return []
        return self._learnt(learning.provider)

    def expired(self, learning: Learning) -> list[Job]:
        """The learner is slow, or was dropped: the waiting jobs go without its nonce."""
        if self._learning.get(learning.provider) is not learning:
            return []
        return self._learnt(learning.provider)

    def _learnt(self, provider: str) -> list[Job]:
        return self._learning.pop(provider).held

    def borrow(self, machine: LineRegistration) -> bool:
        """The line's first request answers the provider's shared nonce, if there is one."""
        shared = self._shared.get(machine.account.provider)
        if not shared:
            return False
        machine.session.nonces.update(
            shared[0]
        )  # the same Nonce objects: one nc sequence per nonce (docs/behaviour.md#reg-digest)
        return True

    def share(self, job: Job, now: float) -> None:
        """A REGISTER was accepted: the nonce it carried, if the registrar issued it in this attempt,
        is the one other lines of the provider use first; a provider that refused a shared nonce
        from a line whose own challenge then worked gets none any more."""
        assert job.line is not None
        key = job.line.account.provider
        if key in self._unshared:
            return
        shared = self._shared.get(key)
        if job.borrowed and job.attempt.cached_nonce_refused and shared and now - shared[1] < NONCE_TRUST:
            self._unshared.add(key)
            self._shared.pop(key, None)
            log.info(
                "%s refused a nonce issued for another line: its lines answer their own challenges",
                job.line.account.request_uri,
            )
        elif job.attempt.learned_nonce:
            self._shared[key] = dict(job.line.session.nonces), now
