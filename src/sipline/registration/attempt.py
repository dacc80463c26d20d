"""One registration attempt, sans-IO (docs/behaviour.md#cloud-registration).

How it works: the engine resolves targets, then asks `next_request(now)` for
the REGISTER to send and reports what came back with `on_response` or
`on_failure` (Timer F, a refused connection, a failed TLS handshake), until
`outcome` is set. Within the attempt:

- a 401/407 is answered with digest credentials for every challenged realm,
  unless credentials made from a nonce of this very attempt were refused
  without `stale=true` (docs/behaviour.md#reg-digest); at most three challenges;
- a 423 is answered once, with the registrar's Min-Expires (docs/behaviour.md#reg-expiry);
- a timeout, transport failure or 503 moves to the next target, three at most
  (docs/behaviour.md#reg-targets, RFC 3263 §4.3); a 503's Retry-After keeps that target out for a while;
- every request takes the next CSeq of the line's Call-ID (§10.2, §22.2).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from sipline.registration.outcome import (
    TIMEOUT_TEXT,
    ZERO_EXPIRY_TEXT,
    Outcome,
    OutcomeKind,
    clean_phrase,
    response_outcome,
)
from sipline.registration.request import Account, Binding, build_register, contact_uri
from sipline.sip.digest import Challenge, authorization, select_challenges
from sipline.sip.errors import BadRequest
from sipline.sip.grammar import is_digits
from sipline.sip.headers import NameAddr, Via, parse_delta_seconds, parse_params
from sipline.sip.message import Request, Response
from sipline.sip.resolve import Target
from sipline.sip.uri import SipUri

MAX_TARGETS = 3  # docs/behaviour.md#reg-targets: targets tried in one attempt
MAX_CHALLENGES = 3  # docs/behaviour.md#reg-digest: more challenges than this in one attempt is AUTH_FAIL
MAX_MIN_EXPIRES = 86400  # docs/behaviour.md#reg-expiry: a larger Min-Expires is not honoured


@dataclass
class Nonce:
    """A challenge we hold credentials for, and the last nonce-count used with it."""

    challenge: Challenge
    proxy: bool  # 407 / Proxy-Authorization
    count: int = 0


@dataclass
class Session:
    """What a line's REGISTERs share across attempts (docs/behaviour.md#reg-request, docs/behaviour.md#reg-digest, docs/behaviour.md#reg-lifecycle)."""

    call_id: str
    token: str  # the Contact user and `line` parameter, stable for the line's life
    cseq: int = 0
    expires: int = 600  # E_req; a 423's Min-Expires replaces it until the identity changes
    nonces: dict[str, Nonce] = field(default_factory=dict)  # realm → cached challenge
    contact_address: tuple[str, int] | None = None  # learned from Via received/rport (docs/behaviour.md#reg-keepalive)
    registered_contact: str | None = None  # the Contact of our last successful REGISTER
    # the Contact of the last REGISTER sent; the engine stores it before the request leaves, so
    # whoever holds the line next retires it even if we never learnt the outcome (docs/behaviour.md#reg-lifecycle)
    sent_contact: str | None = None

    def next_cseq(self) -> int:
        self.cseq += 1
        return self.cseq


def session_contact(session: Session, transport: str, local: Callable[[str], tuple[str, int]]) -> str:
    """A line's Contact on `transport` (docs/behaviour.md#reg-request): at our learnt public address if any (docs/behaviour.md#reg-keepalive)."""
    host, port = session.contact_address or local(transport)
    return contact_uri(session.token, host, port, transport)


FAILURE_TEXTS = {
    OutcomeKind.TIMEOUT: lambda detail: TIMEOUT_TEXT,
    OutcomeKind.TRANSPORT: lambda detail: detail,
    OutcomeKind.TLS_HANDSHAKE: lambda detail: f"TLS handshake failed: {detail}",
    OutcomeKind.TLS_CERT: lambda detail: f"TLS certificate invalid: {detail}",
    OutcomeKind.FORBIDDEN_TARGET: lambda detail: detail,  # the transport's gate refused the target
}
FAILURE_CODES = {
    OutcomeKind.TIMEOUT: 408,
    OutcomeKind.FORBIDDEN_TARGET: 403,
}  # docs/behaviour.md#reg-status: transport failures report 503


class RegisterAttempt:
    def __init__(
        self,
        account: Account,
        session: Session,
        targets: list[Target],
        *,
        local: Callable[[str], tuple[str, int]],
        rng: random.Random,
        unregister: bool = False,
    ) -> None:
        self.account = account
        self.session = session
        self.targets = targets[:1] if unregister else targets[:MAX_TARGETS]
        self.local = local
        self.rng = rng
        self.unregister = unregister
        self.outcome: Outcome | None = None
        # a challenge answered credentials built with a nonce cached before the attempt: it expired,
        # or the registrar does not take it from this line (the engine tells the two apart)
        self.cached_nonce_refused = False
        self.penalties: list[tuple[Target, int]] = []  # (target, seconds) from 503 Retry-After
        self._index = 0
        self._expires = 0 if unregister else session.expires
        self._challenges = 0
        self._had_423 = False
        self._fresh_realms: set[str] = set()  # realms whose nonce came in this attempt
        self._sent_fresh: dict[str, bool] = {}  # realm → the last request used a nonce of this attempt
        self._sent_at = 0.0
        self._contact = ""
        # docs/behaviour.md#reg-keepalive, docs/behaviour.md#reg-lifecycle: Contacts of ours the registrar may hold besides the one we send, retired with
        # `expires=0` in every request of the attempt (a 401 answers the first before it is applied)
        self._maybe_bound = dict.fromkeys(c for c in (session.registered_contact, session.sent_contact) if c)
        self._pending = True  # a request is waiting to be taken by next_request
        self.branch = ""

    @property
    def target(self) -> Target:
        return self.targets[self._index]

    @property
    def learned_nonce(self) -> bool:
        """A challenge of this attempt gave a nonce (the attempt's outcome says whether it worked)."""
        return bool(self._fresh_realms)

    @property
    def waiting(self) -> bool:
        """The attempt has another request to send (after a challenge, a 423, a failover)."""
        return self._pending and self.outcome is None

    def next_request(self, now: float) -> tuple[Target, Request] | None:
        """The REGISTER to send now, if the attempt wants one."""
        if not self._pending or self.outcome is not None:
            return None
        self._pending = False
        self._sent_at = now
        self.branch = f"z9hG4bK{self.rng.getrandbits(64):016x}"  # RFC 3261 §8.1.1.7 magic cookie
        target = self.target
        via_host, via_port = self.local(target.transport)
        if self._contact:
            self._maybe_bound[self._contact] = None  # a failover may send another Contact than the last
        self._contact = self.session.sent_contact = self.next_contact()
        request = build_register(
            self.account,
            call_id=self.session.call_id,
            cseq=self.session.next_cseq(),
            from_tag=f"{self.rng.getrandbits(48):012x}",
            branch=self.branch,
            via=(target.transport, via_host, via_port),
            contacts=self._contacts(),
            expires=self._expires,
            credentials=self._credentials(),
        )
        return target, request

    def next_contact(self) -> str:
        """The Contact the next request carries."""
        return session_contact(self.session, self.target.transport, self.local)

    def _contacts(self) -> list[Binding]:
        """Ours, and `expires=0` for each other Contact we may have bound (docs/behaviour.md#reg-keepalive, docs/behaviour.md#reg-lifecycle): the last one
        registered, and the last one sent, whose REGISTER's outcome may never have been learnt. An
        un-REGISTER carries `expires=0` for each of them, or for ours when there is none."""
        if self.unregister:
            return [Binding(contact, 0) for contact in self._maybe_bound or (self._contact,)]
        return [Binding(self._contact), *(Binding(c, 0) for c in self._maybe_bound if c != self._contact)]

    def _credentials(self) -> list[tuple[str, str]]:
        headers = []
        self._sent_fresh = {}
        for realm, nonce in self.session.nonces.items():
            nonce.count += 1
            cnonce = f"{self.rng.getrandbits(64):016x}"  # docs/behaviour.md#reg-digest: at least 64 random bits
            value = authorization(
                nonce.challenge,
                method="REGISTER",
                uri=self.account.request_uri,
                username=self.account.username,
                password=self.account.password,
                nc=nonce.count,
                cnonce=cnonce,
            )
            headers.append(("Proxy-Authorization" if nonce.proxy else "Authorization", value))
            self._sent_fresh[realm] = realm in self._fresh_realms
        return headers

    # -- what came back ------------------------------------------------------------------

    def on_response(self, response: Response, now: float) -> None:
        status = response.status
        if status < 200 or self.outcome is not None:
            return
        if status < 300:
            self._succeeded(response)
        elif status in (401, 407):
            self._challenged(response)
        elif status == 423:
            self._interval_too_brief(response)
        elif status == 503:
            retry_after = _seconds(response.headers.get("Retry-After"))
            if retry_after is not None:
                self.penalties.append((self.target, retry_after))
            self._fail_over(response_outcome(status, response.reason, retry_after=retry_after, target=self.target))
        else:
            self.outcome = response_outcome(status, response.reason, target=self.target)

    def on_failure(self, kind: OutcomeKind, detail: str, now: float) -> None:
        """Timer F fired, or the transport could not carry the request."""
        if self.outcome is None:
            message = FAILURE_TEXTS[kind](detail)
            self._fail_over(Outcome(kind, FAILURE_CODES.get(kind, 503), message, target=self.target))

    def _fail_over(self, outcome: Outcome) -> None:
        if self._index + 1 < len(self.targets):
            self._index += 1  # docs/behaviour.md#reg-targets: new transaction, new branch, next CSeq
            self._pending = True
        else:
            self.outcome = outcome  # the attempt's outcome is the last target's

    def _challenged(self, response: Response) -> None:
        proxy = response.status == 407
        header = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        chosen, unsupported = select_challenges(response.headers.get_all(header))
        if unsupported is not None:
            self.outcome = Outcome(
                OutcomeKind.AUTH_UNSUPPORTED, 401, f"Unsupported digest algorithm: {unsupported}", target=self.target
            )
            return
        self._challenges += 1
        limit = 1 if self.unregister else MAX_CHALLENGES
        if (
            not chosen
            or self._challenges > limit
            or any(self._sent_fresh.get(challenge.realm) and not challenge.stale for challenge in chosen)
        ):
            self.outcome = self._auth_failure(
                response
            )  # docs/behaviour.md#reg-digest: e.g. credentials from this attempt's nonce refused
            return
        if any(self._sent_fresh.get(challenge.realm) is False for challenge in chosen):
            self.cached_nonce_refused = True
        for challenge in chosen:
            self.session.nonces[challenge.realm] = Nonce(challenge, proxy)
            self._fresh_realms.add(challenge.realm)
        self._pending = True

    def _auth_failure(self, response: Response) -> Outcome:
        return Outcome(
            OutcomeKind.AUTH_FAIL, response.status, clean_phrase(response.reason, response.status), target=self.target
        )

    def _interval_too_brief(self, response: Response) -> None:
        minimum = _seconds(response.headers.get("Min-Expires"))
        # docs/behaviour.md#reg-expiry: honoured once per attempt, when above what we asked and at most a day
        if self.unregister or self._had_423 or minimum is None or not self._expires < minimum <= MAX_MIN_EXPIRES:
            self.outcome = response_outcome(response.status, response.reason, target=self.target)
            return
        self._had_423 = True
        self._expires = self.session.expires = minimum  # docs/behaviour.md#reg-expiry: keep M as E_req
        self._pending = True

    def _succeeded(self, response: Response) -> None:
        if self.unregister:
            self.outcome = Outcome(OutcomeKind.OK, response.status, "", granted=0, target=self.target)
            return
        granted = self._granted(response)
        kind = OutcomeKind.OK if granted > 0 else OutcomeKind.ZERO_EXPIRY
        self.outcome = Outcome(
            kind,
            response.status,
            "" if granted > 0 else ZERO_EXPIRY_TEXT,
            granted=granted,
            target=self.target,
            sent_at=self._sent_at,
            observed=_observed(response, self.branch),
            min_expires=self.session.expires,
        )
        if granted > 0:
            self.session.registered_contact = self._contact

    def _granted(self, response: Response) -> int:
        """docs/behaviour.md#reg-expiry: our Contact's `expires` in the 2xx, else the Expires header, else what we asked for."""
        token = self.session.token
        grants = []
        echoed = f"<{self._contact}>"
        for value in response.headers.get_all("Contact"):
            if token not in value:
                continue  # not ours: our Contact carries the token as user and `line` (docs/behaviour.md#reg-request)
            if value.startswith(echoed):  # as we sent it (most registrars): only its parameters to read
                params, rest = parse_params(value[len(echoed) :])
                if not rest.strip():
                    if (seconds := _seconds(params.get("expires"))) is not None:
                        grants.append(seconds)
                    continue
            try:
                contact = NameAddr.parse(value)
                uri = SipUri.parse(contact.uri)
            except BadRequest:
                continue
            mine = uri.user == token or uri.params.get("line") == token or uri.equivalent(SipUri.parse(self._contact))
            seconds = _seconds(contact.params.get("expires"))
            if mine and seconds is not None:
                grants.append(seconds)
        if grants:
            return min(grants)
        header = _seconds(response.headers.get("Expires"))
        return self._expires if header is None else header


def _seconds(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_delta_seconds(value)
    except BadRequest:
        return None


def _observed(response: Response, branch: str) -> tuple[str, int] | None:
    """RFC 3581 §4: where the registrar saw our request come from (top Via received/rport)."""
    top = response.headers.get_all("Via")[:1]
    if not top:
        return None
    # our Via, echoed with received/rport added: without its branch it is one of a few values
    head, found, tail = top[0].partition(branch)
    return _observed_in(head + "b" + tail if found else top[0])


@lru_cache(maxsize=1024)
def _observed_in(top_via: str) -> tuple[str, int] | None:
    try:
        via = Via.parse(top_via)
    except BadRequest:
        return None
    rport = via.params.get("rport")
    if not rport or not is_digits(rport, 5):
        return None  # the registrar does not do RFC 3581: nothing learnt
    return via.params.get("received") or via.host, int(rport)
