"""What waits to be sent and what is in flight (docs/behaviour.md#reg-pacing), sans-IO.

A `Job` is one attempt (a line's REGISTER, or an un-REGISTER) waiting for a
pacing slot or holding one; a `Txn` is its current client transaction. The
`SendQueue` decides which jobs the pacer admits now: refreshes first (global
bucket only), then every host in turn within its limits; an attempt already
under way (a challenge answered, a failover) goes before new ones.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from sipline.registration.attempt import RegisterAttempt, Session
from sipline.registration.line import LineRegistration
from sipline.registration.pacing import Pacer
from sipline.registration.request import Account
from sipline.sip.address import ServerAddress
from sipline.sip.errors import BadRequest
from sipline.sip.headers import parse_cseq
from sipline.sip.message import Response
from sipline.sip.resolve import Target
from sipline.sip.transaction import ClientTransaction

_BRANCH = re.compile(r";\s*branch\s*=\s*([^;,\s]+)", re.IGNORECASE)


@dataclass(frozen=True)
class Datagram:
    """Bytes for the transport; `branch` None is a UDP keep-alive (CRLFCRLF, no transaction)."""

    target: Target
    data: bytes
    branch: str | None


@dataclass(frozen=True)
class DnsQuery:
    """The runner resolves `address` and answers with resolved() or resolve_failed()."""

    address: ServerAddress
    line: LineRegistration | None  # None: an un-REGISTER of `account`/`session`
    generation: int = 0
    account: Account | None = None
    session: Session | None = None


@dataclass
class Job:
    """An attempt waiting for, or holding, a pacing slot; `line` is None for an un-REGISTER."""

    line: LineRegistration | None
    attempt: RegisterAttempt
    generation: int
    host: str
    refresh: bool
    borrowed: bool = False  # the first request carried credentials with another line's nonce
    waited: bool = False  # it waited for another line to learn the provider's nonce (no second wait)

    def first_without_nonce(self) -> bool:
        """The attempt's first request, and the line knows no nonce to answer with up front."""
        return not self.attempt.branch and not self.line.session.nonces  # type: ignore[union-attr]

    def is_current(self, lines: dict[int, LineRegistration]) -> bool:
        """The job's line is still held and unchanged since the job began (always, for an un-REGISTER)."""
        line = self.line
        return line is None or (self.generation == line.generation and lines.get(line.line_id) is line)


@dataclass
class Txn:
    txn: ClientTransaction
    job: Job
    target: Target
    branch: str
    failure: str = "transport"  # how a transport error is reported (TransportError.kind)

    def next_deadline(self) -> float | None:
        return self.txn.next_deadline()


class InFlight:
    """The client transactions in flight, by the branch of their top Via."""

    def __init__(self) -> None:
        self._by_branch: dict[str, Txn] = {}

    def add(self, record: Txn) -> None:
        self._by_branch[record.branch] = record

    def get(self, branch: str) -> Txn | None:
        return self._by_branch.get(branch)

    def end(self, record: Txn) -> bool:
        """Returns whether it was in flight (its pacing slot comes free)."""
        return self._by_branch.pop(record.branch, None) is not None

    def __contains__(self, branch: str) -> bool:
        return branch in self._by_branch

    def items(self) -> list[tuple[str, Txn]]:
        return list(self._by_branch.items())

    def values(self) -> list[Txn]:
        return list(self._by_branch.values())

    def match(self, response: Response, stats: Counter[str]) -> Txn | None:
        """The REGISTER transaction a response answers (§17.1.3); what matches none is counted."""
        top = response.headers.get("Via")
        found = _BRANCH.search(top) if top else None
        record = self._by_branch.get(found.group(1)) if found else None
        if record is None:
            stats["unmatched_responses"] += 1
            return None
        try:
            if parse_cseq(response.headers.get("CSeq") or "")[1] != "REGISTER":
                return None
        except BadRequest:
            stats["dropped_malformed"] += 1
            return None
        return record


@dataclass
class Wake:
    """A timer entry that only re-runs the pacing queue."""

    at: float = field(default=0.0)

    def next_deadline(self) -> float:
        return self.at


class SendQueue:
    def __init__(self, pacer: Pacer) -> None:
        self.pacer = pacer
        self._refreshes: deque[Job] = deque()
        self._waiting: dict[str, deque[Job]] = {}  # host → jobs held back by its limits

    def add(self, job: Job) -> None:
        queue = self._refreshes if job.refresh else self._waiting.setdefault(job.host, deque())
        if job.attempt.branch:
            queue.appendleft(job)
        else:
            queue.append(job)

    def admitted(self, now: float) -> Iterator[Job]:
        """The jobs that may go now, each holding a slot until `pacer.done(job.host)`."""
        while self._refreshes and self.pacer.admit(self._refreshes[0].host, True, now):
            yield self._refreshes.popleft()
        progress = True
        while progress and self._waiting:
            progress = False
            for host in list(self._waiting):
                queue = self._waiting[host]
                if self.pacer.admit(host, False, now):
                    yield queue.popleft()
                    progress = True
                if not queue:
                    del self._waiting[host]

    def wake_at(self, now: float) -> float | None:
        """When tokens are back for what still waits. None when nothing waits, or what waits is
        short of slots (a finishing transaction runs the queue again)."""
        if not (self._refreshes or self._waiting) or self.pacer.total_in_flight >= self.pacer.settings.in_flight:
            return None
        hosts = ([self._refreshes[0].host] if self._refreshes else []) + list(self._waiting)
        ready = [at for at in (self.pacer.ready_at(host, now) for host in hosts) if at > now]
        return min(ready) if ready else None
