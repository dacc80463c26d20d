"""Stateless digest nonces and nonce-count replay protection (docs/behaviour.md#office-digest), pure.

A nonce is hex(issue time 8 B ‖ random 8 B ‖ first 16 B of HMAC-SHA256(secret,
time ‖ random ‖ realm ‖ addressee)): any process that holds the secret can check one
without having issued it. The addressee is the source IP, the username and the
algorithm the challenge was sent to and for: an answer from another IP, for another
user or with another algorithm than the one offered is INVALID (docs/behaviour.md#office-digest: only an offered
algorithm is accepted; docs/behaviour.md#office-abuse: a nonce fetched at one address cannot be spent at others).
Secrets come from the master key and the rotation period they fall in, so every
sipline process of an installation derives the same ones; a nonce is accepted
under the current secret and the one before (docs/behaviour.md#office-digest: the previous secret stays valid
at least one nonce lifetime).

    check(nonce) ─► INVALID  bad encoding or HMAC: a fresh challenge, counted as a failure
                 ├► STALE    good HMAC, older than LIFETIME (or from the future): stale=true
                 └► VALID

Nonce counts (RFC 7616 §3.4.5): with qop, a nonce is accepted again only with a
higher nc; without qop, once. The one exception is a retransmission of the request
last accepted (same Via branch, Call-ID and CSeq: a UDP PBX whose 200 was lost),
which is let through to be answered again; the binding rules make it change nothing
(docs/behaviour.md#office-bindings: same Call-ID and CSeq). A nonce answered wrongly is burnt: it gives one guess
at a password, not one per nonce count. The table is an LRU of at most MAX_TRACKED
nonces alive for LIFETIME; a nonce pushed out of it counts as stale.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from enum import Enum

LIFETIME = 300.0  # docs/behaviour.md#office-digest: seconds a nonce is good for
FUTURE_SKEW = 3.0  # docs/behaviour.md#office-digest: an issue time further ahead than this is stale
ROTATION = 3600.0  # seconds per secret; must exceed LIFETIME so the previous secret covers old nonces
MAX_TRACKED = 100_000  # docs/behaviour.md#office-digest: nonce-count table size
RANDOM_POOL = 4096
_MICROSECONDS = 1_000_000  # the issue time is kept in microseconds
_BURNT = 2**32  # above any nonce count (RFC 7616 §3.4: 8 hex digits): every later use is a replay


@dataclass(frozen=True)
class Addressee:
    """Whom a nonce was issued to: the source IP, the username (To user) and the algorithm offered."""

    ip: str
    username: str
    algorithm: str

    def encoded(self) -> bytes:
        return f"\0{self.ip}\0{self.username}\0{self.algorithm}".encode()


class NonceState(Enum):
    VALID = "valid"
    STALE = "stale"
    INVALID = "invalid"


class NonceUse(Enum):
    ACCEPTED = "accepted"
    RETRANSMITTED = "retransmitted"  # the request last accepted with this nonce, again
    REPLAYED = "replayed"  # nc not above the last one accepted, or a second use without qop
    FORGOTTEN = "forgotten"  # pushed out of the table: treated as stale (docs/behaviour.md#office-digest)


class Nonces:
    def __init__(self, master_key: bytes, *, lifetime: float = LIFETIME, rotation: float = ROTATION) -> None:
        if rotation <= lifetime:
            raise ValueError("secrets must live longer than nonces")
        self._master = master_key
        self.lifetime = lifetime
        self.rotation = rotation
        self._secrets: dict[int, hmac.HMAC] = {}  # epoch → HMAC keyed with its secret
        # nonce → (issued, last nc, the request that used it)
        self._counts: OrderedDict[str, tuple[float, int, Hashable]] = OrderedDict()
        self._forgotten_up_to = float("-inf")  # issue time of the newest nonce pushed out of the table
        self._pool, self._pool_at = b"", 0

    def issue(self, realm: str, now: float, to: Addressee, random_bytes: bytes | None = None) -> str:
        """A fresh nonce for `realm` and `to`; `random_bytes` (8 bytes) come from the system CSPRNG unless given."""
        if random_bytes is None:
            random_bytes = self._random8()
        body = int(now * _MICROSECONDS).to_bytes(8, "big") + random_bytes
        return (body + self._mac(self._epoch(now), body, realm, to)).hex()

    def check(self, nonce: str, realm: str, now: float, by: Addressee) -> NonceState:
        """Whether `nonce` was issued by us for `realm` to `by` (INVALID if not), and is still fresh."""
        try:
            raw = bytes.fromhex(nonce)
        except ValueError:
            return NonceState.INVALID
        if len(raw) != 32 or raw.hex() != nonce:  # exactly as issued: no other spelling of the same bytes
            return NonceState.INVALID
        body, mac = raw[:16], raw[16:]
        issued = int.from_bytes(body[:8], "big") / _MICROSECONDS
        epoch = self._epoch(now)
        if not any(hmac.compare_digest(mac, self._mac(e, body, realm, by)) for e in (epoch, epoch - 1)):
            return NonceState.INVALID
        if now - issued > self.lifetime or issued - now > FUTURE_SKEW:
            return NonceState.STALE
        return NonceState.VALID

    def use(self, nonce: str, nc: int | None, now: float, request: Hashable = None) -> NonceUse:
        """Record a use of a VALID nonce (`nc` None when the client sent no qop) by `request`, which
        names a request and its retransmissions (Via branch, Call-ID, CSeq)."""
        self._expire(now)
        previous = self._counts.get(nonce)
        if previous is None:
            issued = _issued(nonce)
            if issued <= self._forgotten_up_to:
                return NonceUse.FORGOTTEN
            self._add(nonce, issued, nc or 0, request)
            return NonceUse.ACCEPTED
        issued, last, last_request = previous
        if request is not None and request == last_request and (nc or 0) == last:
            return NonceUse.RETRANSMITTED
        if nc is None or nc <= last:
            return (
                NonceUse.REPLAYED
            )  # docs/behaviour.md#office-digest: without qop a nonce serves once; with qop nc must grow
        self._counts[nonce] = (issued, nc, request)
        return NonceUse.ACCEPTED

    def burn(self, nonce: str, now: float) -> None:
        """A VALID nonce was answered with a wrong response: every later use of it is REPLAYED."""
        self._expire(now)
        issued = _issued(nonce)
        if nonce in self._counts:
            self._counts[nonce] = (issued, _BURNT, None)
        elif issued > self._forgotten_up_to:
            self._add(nonce, issued, _BURNT, None)

    def _add(self, nonce: str, issued: float, nc: int, request: Hashable) -> None:
        if len(self._counts) >= MAX_TRACKED:
            _, (dropped, _, _) = self._counts.popitem(last=False)
            self._forgotten_up_to = max(self._forgotten_up_to, dropped)
        self._counts[nonce] = (issued, nc, request)

    def _expire(self, now: float) -> None:
        """Entries are in order of first use, close to issue order: drop those past their lifetime."""
        while self._counts:
            nonce, (issued, _, _) = next(iter(self._counts.items()))
            if now - issued <= self.lifetime:
                return
            del self._counts[nonce]

    def _random8(self) -> bytes:
        """8 bytes of os.urandom, drawn 4 KiB at a time: one system call per 512 nonces."""
        if self._pool_at >= len(self._pool):
            self._pool, self._pool_at = os.urandom(RANDOM_POOL), 0
        self._pool_at += 8
        return self._pool[self._pool_at - 8 : self._pool_at]

    def _epoch(self, now: float) -> int:
        return int(now // self.rotation)

    def _mac(self, epoch: int, body: bytes, realm: str, to: Addressee) -> bytes:
        """HMAC-SHA256 under the epoch's secret, from a keyed state made once per secret."""
        keyed = self._secrets.get(epoch)
        if keyed is None:
            secret = hmac.digest(self._master, b"sipline registrar nonce " + str(epoch).encode(), "sha256")
            self._secrets = {e: s for e, s in self._secrets.items() if e >= epoch - 1}
            keyed = self._secrets[epoch] = hmac.new(secret, digestmod=hashlib.sha256)
        mac = keyed.copy()
        mac.update(body + realm.encode() + to.encoded())
        return mac.digest()[:16]


def issued_at(nonce: str) -> float:
    """The issue time written in a nonce that `check` found VALID or STALE."""
    return _issued(nonce)


def _issued(nonce: str) -> float:
    return int(nonce[:16], 16) / _MICROSECONDS
