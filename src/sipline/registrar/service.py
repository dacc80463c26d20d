"""The office registrar: REGISTER at INCOMING_SERVER (docs/behaviour.md#office-registrar), the glue around the rules.

Processing order (docs/behaviour.md#office-order): abuse checks (before any credential work) → Request-URI
is ours → Require options → usernames and realms of a sane length (else 400, before
any state is kept for them) → digest authentication → the authenticated user is
the To user → Contact/Expires → binding rules → 200. A request without
credentials is simply challenged, it is not a failure. The challenge offers the
algorithms of the line named in To (its own, else its portal's, else the service's
`algorithms`), and each nonce is bound to the source IP, the user and its
algorithm (nonce.py).

Authenticated REGISTERs are group-committed: those that arrive within
COMMIT_DELAY of each other are checked against the bindings in the store and
written in one transaction, and their answers leave after the commit — a 200 is never sent for a binding that is
not on disk.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass

from sipline.registrar import bindings as rules
from sipline.registrar.abuse import AbuseLimits, Guard, SecurityEvent
from sipline.registrar.addressing import (
    MAX_USERNAME,
    credentials_for,
    loggable,
    same_target,
    to_host,
    to_user,
    unsupported_options,
    uri_target,
)
from sipline.registrar.changes import Logged, commit, log_changes, sweep
from sipline.registrar.nat import PING_INTERVAL, NatPinger
from sipline.registrar.nonce import Addressee, Nonces, NonceState, NonceUse, issued_at
from sipline.sip import digest
from sipline.sip.errors import BadExtension, BadRequest, Forbidden, NotFound, SipError, Unauthorized
from sipline.sip.message import Request
from sipline.sip.responses import encode_error, encode_response
from sipline.sip.trace import Trace
from sipline.sip.transports.manager import SipTransport, Source
from sipline.store.database import MISSING, Database
from sipline.store.records import Binding, OfficeUser
from sipline.store.repository import Repository
from sipline.store.topics import OFFICE_USER, PORTAL_REALMS

log = logging.getLogger("sipline.registrar")
security = logging.getLogger("sipline.security")

SWEEP_INTERVAL = 1.0  # docs/behaviour.md#office-status: expired bindings go within 5 s
REALMS = (PORTAL_REALMS,)  # cache key of the portals' own INCOMING_SERVERs, with their digest algorithms
COMMIT_DELAY = 0.002  # seconds a REGISTER waits for others to share its commit


@dataclass(frozen=True)
class RegistrarSettings:
    realm: str  # INCOMING_SERVER of portals without their own
    addresses: frozenset[str] = frozenset()  # our listen and public addresses: also accepted in the Request-URI
    algorithms: tuple[str, ...] = (
        "MD5",
    )  # docs/behaviour.md#office-digest: challenge order, for lines and portals without their own
    limits: rules.Limits = rules.Limits()
    abuse: AbuseLimits = AbuseLimits()
    ping_interval: float = PING_INTERVAL  # docs/behaviour.md#office-nat


@dataclass
class _Pending:
    request: Request
    source: Source
    user: OfficeUser
    register: rules.Register
    outcome: rules.Outcome | None = None
    error: SipError | None = None


class Registrar:
    def __init__(
        self,
        db: Database,
        transport: SipTransport,
        settings: RegistrarSettings,
        master_key: bytes,
        *,
        wall: Callable[[], float] = time.time,
        trace: Trace | None = None,
    ) -> None:
        self.db = db
        self.trace = trace if trace is not None else Trace()  # docs/behaviour.md#line-trace
        self.transport = transport
        self.settings = settings
        self.wall = wall
        self.nonces = Nonces(master_key)
        self.guard = Guard(settings.abuse)
        # what became of each REGISTER, as (decision, reason) for /metrics: accepted, challenged,
        # refused (a failed authentication or an error answer), dropped (unanswered: abuse limits)
        self.decisions: Counter[tuple[str, str]] = Counter()
        self._pending: list[_Pending] = []
        self._committing = False
        self._bound: set[tuple[str, str]] = (
            set()
        )  # (login, source IP) holding a binding (docs/behaviour.md#office-abuse exemption)
        self._tasks: set[asyncio.Task] = set()
        self._sweeper: asyncio.Task | None = None
        self.pinger = NatPinger(db, transport, settings.realm, interval=settings.ping_interval, wall=wall)
        # Unknown users are checked against this, so that they cost what a known user costs (docs/behaviour.md#office-digest).
        self._decoy = {alg: secrets.token_hex(32 if alg != "MD5" else 16) for alg in digest.KEPT}

    async def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep())
        self.pinger.start()

    async def stop(self) -> None:
        self.pinger.stop()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for task in list(self._tasks):
            task.cancel()

    # -- docs/behaviour.md#office-order ------------------------------------------------------------------------------------

    def handle(self, request: Request, source: Source) -> None:
        try:
            self._received(request, source)
        except SipError as error:
            self._refuse(request, source, error)

    def _received(self, request: Request, source: Source) -> None:
        """Raises: SipError, the answer to send."""
        realms = self.db.recall(REALMS)
        if realms is MISSING:  # once after a change of portals: read them, then carry on
            self._spawn(self._load_realms(request, source))
            return
        now = self.wall()
        if not self.guard.admit(source.address, now):
            self.decisions["dropped", "blocked"] += 1  # docs/behaviour.md#office-abuse: blocked or flooding: no answer
            return
        realm = self._realm(request, realms)  # type: ignore[arg-type]
        if realm is None:
            raise NotFound("not our realm")  # docs/behaviour.md#office-order step 1: we do not proxy REGISTER
        unsupported = unsupported_options(request)
        if unsupported:
            raise BadExtension(unsupported)
        credentials = credentials_for(request, realm)
        named = to_user(request)
        if named is not None and len(named) > MAX_USERNAME:
            raise BadRequest("To user too long")  # docs/behaviour.md#office-abuse: before any state is kept for it
        username = credentials.username if credentials is not None else named
        if username is None:
            raise self._challenge(source, realm, "", self._realm_algorithms(realm), stale=False)
        key = (OFFICE_USER, username)
        found = self.db.recall(key)
        if found is MISSING:
            self._spawn(self._look_up(key, request, source, realm, credentials))
        else:
            self._identified(request, source, realm, credentials, found)  # type: ignore[arg-type]

    async def _look_up(
        self, key: tuple[str, str], request: Request, source: Source, realm: str, credentials: digest.Credentials | None
    ) -> None:
        found = await self.db.cached(key, lambda repo: repo.office_user(key[1]))
        try:
            self._identified(request, source, realm, credentials, found)
        except SipError as error:
            self._refuse(request, source, error)

    def _identified(
        self,
        request: Request,
        source: Source,
        realm: str,
        credentials: digest.Credentials | None,
        found: tuple[OfficeUser, str | None] | None,
    ) -> None:
        """`found`: the office line the username names, with its portal's INCOMING_SERVER.
        Raises: SipError, the answer to send."""
        user = found[0] if found is not None and (found[1] or self.settings.realm).lower() == realm else None
        if user is None:
            self._decide(request, source, realm, credentials, None)
            return
        self._traced(user.line_id, request.wire, request, source, outgoing=False)
        try:
            self._decide(request, source, realm, credentials, user)
        except SipError as error:
            self._refuse(request, source, error, user.line_id)

    def _decide(
        self,
        request: Request,
        source: Source,
        realm: str,
        credentials: digest.Credentials | None,
        user: OfficeUser | None,
    ) -> None:
        """Raises: SipError, the answer to send."""
        algorithms = (user.algorithms if user else None) or self._realm_algorithms(realm)
        if credentials is not None:
            self._authenticated(request, source, realm, credentials, user, algorithms)
            return
        username = to_user(request) or ""
        if self.guard.may_challenge(source.address, username, self.wall(), (username, source.address) in self._bound):
            raise self._challenge(source, realm, username, algorithms, stale=False)
        self.decisions["dropped", "challenge_limited"] += 1  # docs/behaviour.md#office-abuse: this IP had its challenge

    async def _load_realms(self, request: Request, source: Source) -> None:
        await self.db.cached(REALMS, lambda repo: repo.portal_realms())
        self.handle(request, source)

    def _realm(self, request: Request, portal_realms: dict[str, tuple[str, ...] | None]) -> str | None:
        """docs/behaviour.md#office-identity, docs/behaviour.md#office-order step 1: the realm is an INCOMING_SERVER: the service's or a portal's own. The
        Request-URI names one, or one of our addresses, and then the To host says which."""
        target = uri_target(request.uri)
        if target is None:
            return None
        host, default = target[1], self.settings.realm
        if host in portal_realms:
            return host
        if host != default and host not in self.settings.addresses:
            return None
        named = to_host(request)
        return named if named in portal_realms else default

    def _realm_algorithms(self, realm: str) -> tuple[str, ...]:
        """docs/behaviour.md#office-digest: what an unknown username is challenged with: the realm's portal's choice, else the service's."""
        realms = self.db.recall(REALMS)
        chosen = realms.get(realm) if isinstance(realms, dict) else None
        return chosen or self.settings.algorithms

    def _authenticated(
        self,
        request: Request,
        source: Source,
        realm: str,
        credentials: digest.Credentials,
        user: OfficeUser | None,
        algorithms: tuple[str, ...],
    ) -> None:
        """`user`: the office line of the digest username in this realm, None if there is none.
        Raises: SipError, the answer to send."""
        now = self.wall()
        username = credentials.username
        # docs/behaviour.md#office-digest: only the algorithm offered with this nonce, to this source, for this user
        state = self.nonces.check(
            credentials.nonce, realm, now, Addressee(source.address, username, credentials.algorithm)
        )
        if not same_target(credentials.uri, request.uri):
            raise BadRequest("the digest uri is not the Request-URI")  # docs/behaviour.md#office-digest
        holds_binding = (username, source.address) in self._bound
        if state is not NonceState.INVALID and not self.guard.may_verify(
            source.address, username, issued_at(credentials.nonce), now, holds_binding
        ):
            self.decisions["dropped", "verify_limited"] += 1  # docs/behaviour.md#office-abuse: not this slot's nonce
            return
        stored = self._ha1(user, realm, credentials.algorithm) if user else self._decoy.get(credentials.algorithm, "")
        good = state is not NonceState.INVALID and _verify(credentials, stored)
        if not good:
            if state is NonceState.VALID:
                self.nonces.burn(credentials.nonce, now)  # one guess per nonce, whatever its nc
            self._failed(
                source,
                realm,
                username,
                algorithms,
                "wrong credentials" if state is not NonceState.INVALID else "bad nonce",
            )
            return
        if state is NonceState.STALE:
            raise self._challenge(
                source, realm, username, algorithms, stale=True
            )  # docs/behaviour.md#office-digest: not a failure
        headers = request.headers
        use = self.nonces.use(
            credentials.nonce,
            credentials.nc if credentials.qop else None,
            now,
            (headers.get("Via"), headers.get("Call-ID"), headers.get("CSeq")),
        )
        if use is NonceUse.FORGOTTEN:
            raise self._challenge(source, realm, username, algorithms, stale=True)
        if use is NonceUse.REPLAYED:
            self._failed(source, realm, username, algorithms, "replayed nonce count")
            return
        if user is None or to_user(request) != username:
            self._failed(source, realm, username, algorithms, "not the To user", forbidden=True)
            return
        register = rules.read_register(
            request,
            transport=source.transport,
            source=(source.address, source.port),
            local=source.local,
            algorithm=credentials.algorithm,
        )
        self._pending.append(_Pending(request, source, user, register))
        if not self._committing:
            self._committing = True
            self._running_loop().call_later(COMMIT_DELAY, lambda: self._spawn(self._commit()))

    def _ha1(self, user: OfficeUser, realm: str, algorithm: str) -> str:
        if user.realm == realm and algorithm in user.ha1:
            return user.ha1[algorithm]
        # docs/behaviour.md#office-identity: computed anew when the realm (INCOMING_SERVER) or the password changed, and kept
        ha1 = digest.ha1_kept(user.login, realm, user.password)
        self._spawn(self.db.write(lambda repo: repo.store_ha1(user.line_id, realm, ha1), touches=(OFFICE_USER,)))
        return ha1.get(algorithm, "")

    def _failed(
        self,
        source: Source,
        realm: str,
        username: str,
        algorithms: tuple[str, ...],
        reason: str,
        *,
        forbidden: bool = False,
    ) -> None:
        """docs/behaviour.md#office-digest, docs/behaviour.md#office-abuse: counted, logged, and answered like any other failure (a fresh challenge, or 403);
        while the user is guarded, the challenge only when this IP may have one (abuse.py).
        Raises: Forbidden or Unauthorized, the answer to send."""
        now = self.wall()
        self._log(SecurityEvent(now, source.address, source.port, source.transport, username, reason))
        if self.guard.failed(source.address, username, now):
            until = self.guard.blocked_until(source.address)
            self._log(
                SecurityEvent(
                    now, source.address, source.port, source.transport, username, f"blocked for {until - now:.0f} s"
                )
            )
        if forbidden:
            raise Forbidden(reason)  # counted as refused by _refuse
        self.decisions["refused", reason.replace(" ", "_")] += 1
        if self.guard.may_challenge(source.address, username, now, (username, source.address) in self._bound):
            raise self._challenge(source, realm, username, algorithms, stale=False)
        self.decisions["dropped", "challenge_limited"] += 1

    def _challenge(
        self, source: Source, realm: str, username: str, algorithms: tuple[str, ...], *, stale: bool
    ) -> Unauthorized:
        """docs/behaviour.md#office-digest: one challenge per algorithm, each with its own fresh nonce for this source, user and
        algorithm; never 407 for REGISTER."""
        now = self.wall()
        flag = ", stale=true" if stale else ""
        nonces = [self.nonces.issue(realm, now, Addressee(source.address, username, alg)) for alg in algorithms]
        return Unauthorized(
            [
                f'Digest realm="{realm}", nonce="{nonce}", algorithm={alg}, qop="auth"{flag}'
                for nonce, alg in zip(nonces, algorithms, strict=True)
            ]
        )

    # -- the store ------------------------------------------------------------------------------

    async def _commit(self) -> None:
        batch, self._pending = self._pending, []
        now = self.wall()
        try:
            saved, changes = await self.db.write(lambda repo: self._apply(repo, batch, now), touches=())
            for line_id, bindings in saved.items():
                self.db.keep((rules.CACHE_TOPIC, line_id), bindings)
            log_changes(changes)
        except Exception:
            log.exception("registrar commit failed; %d REGISTERs answered 500", len(batch))
            for item in batch:
                item.outcome, item.error = None, SipError("store unavailable")
        finally:
            self._committing = False
            if self._pending:
                self._committing = True
                self._spawn(self._commit())
        for item in batch:
            self._answer(item, now)

    def _apply(
        self, repo: Repository, batch: list[_Pending], now: float
    ) -> tuple[dict[int, list[Binding]], list[Logged]]:
        """The batch's bindings written with their history; returns every line's bindings as committed,
        and the changes to log."""
        line_ids = {item.user.line_id for item in batch}
        current: dict[int, list[Binding]] = {}
        for line_id in line_ids:
            kept = self.db.recall((rules.CACHE_TOPIC, line_id))
            if kept is not MISSING:
                current[line_id] = kept  # type: ignore[assignment]
        current |= repo.bindings_of(sorted(line_ids - current.keys()))
        before = dict(current)
        for item in batch:  # in arrival order, each on top of the one before
            line_id = item.user.line_id
            try:
                item.outcome = rules.apply(current[line_id], item.register, now, self.settings.limits)
            except SipError as error:
                item.error = error
                continue
            if item.outcome.changed:
                current[line_id] = item.outcome.bindings
        changed = {line_id: bindings for line_id, bindings in current.items() if bindings is not before[line_id]}
        config_ids = {item.user.line_id: item.user.config_id for item in batch}
        return current, commit(repo, before, changed, config_ids, now)

    def _answer(self, item: _Pending, now: float) -> None:
        request, source = item.request, item.source
        if item.error is not None:
            self._refuse(request, source, item.error, item.user.line_id)
            return
        outcome = item.outcome
        assert outcome is not None
        key = (item.user.login, source.address)
        if outcome.bindings:
            self._bound.add(key)
        else:
            self._bound.discard(key)
        if source.flow is not None:
            self.transport.accepted.keep(
                source.flow,
                rules.remaining_over(outcome.bindings, (source.address, source.port), source.transport, now),
            )
        headers = [("Contact", line) for line in rules.contact_lines(outcome, now)]
        headers.append(("Date", rules.http_date(int(now))))
        headers += [("Path", path) for path in item.register.path]
        self.decisions["accepted", ""] += 1
        self._send(
            request,
            source,
            lambda to_tag, at: encode_response(request, 200, "OK", to_tag=to_tag, source=at, headers=headers),
            item.user.line_id,
        )

    def peer_gone(self, peer: tuple[str, int]) -> None:
        """docs/behaviour.md#office-nat: a PBX's TCP/TLS connection closed; its bindings stay, marked unreachable."""
        self._spawn(self.db.write(lambda repo: repo.connection_closed(*peer), touches=(rules.CACHE_TOPIC,)))

    async def _sweep(self) -> None:
        """docs/behaviour.md#office-status: expired bindings leave the store within SWEEP_INTERVAL."""
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            try:
                log_changes(await self.db.write(lambda repo: sweep(repo, self.wall()), touches=()))
            except Exception:
                log.exception("sweeping expired bindings failed; trying again")

    # -- helpers -------------------------------------------------------------------------------------

    def _refuse(self, request: Request, source: Source, error: SipError, line_id: int | None = None) -> None:
        challenged = isinstance(error, Unauthorized)  # after a failure too: _failed counted the failure
        self.decisions[("challenged", "") if challenged else ("refused", error.reason.lower().replace(" ", "_"))] += 1
        self._send(request, source, lambda to_tag, at: encode_error(request, error, to_tag=to_tag, source=at), line_id)

    def _send(
        self,
        request: Request,
        source: Source,
        encode: Callable[[str, tuple[str, int]], bytes],
        line_id: int | None = None,
    ) -> None:
        """`encode(to_tag, source address)` makes the response; `line_id`: the office line it answers for."""
        to_tag = hashlib.sha1(f"{request.headers.get('Call-ID')}".encode()).hexdigest()[:10]
        try:
            response = encode(to_tag, (source.address, source.port))
        except SipError:  # a top Via or To we cannot parse, or CR/LF in a value
            self.transport.stats["dropped_malformed"] += 1
            return
        self.transport.reply(source, response)
        if line_id is not None:
            self._traced(line_id, response, request, source, outgoing=True)

    def _traced(self, line_id: int, data: bytes, request: Request, source: Source, *, outgoing: bool) -> None:
        """docs/behaviour.md#line-trace: a REGISTER of the line's PBX, or our answer; the top Via names the transaction."""
        entry = (self.wall(), outgoing, source.transport, source.local, (source.address, source.port), data)
        self.trace.record(line_id, request.headers.get("Via"), entry)

    def _log(self, event: SecurityEvent) -> None:
        fields = asdict(event)
        fields["username"] = loggable(event.username)
        security.warning(json.dumps(fields, sort_keys=True))

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _verify(credentials: digest.Credentials, stored_ha1: str) -> bool:
    try:
        return digest.verify(credentials, method="REGISTER", stored_ha1=stored_ha1)
    except digest.DigestError:
        return False
