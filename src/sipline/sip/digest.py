"""SIP digest authentication, sans-IO (RFC 3261 §22; RFC 2617; RFC 7616; RFC 8760).

Client (docs/behaviour.md#reg-digest): a 401/407 carries WWW-/Proxy-Authenticate values; `select_challenges`
parses them and keeps, per realm, the top-most challenge whose algorithm is in `ALGORITHMS`.
`authorization` turns one challenge, the password, the method and Request-URI, a nonce count and
a random cnonce from the caller into the value of the Authorization / Proxy-Authorization header.

Registrar (docs/behaviour.md#office-digest): `parse_credentials` reads an Authorization value and `verify` checks
its response against the HA1 stored for the user (`ha1`), in constant time. Nonce issue, expiry
and nc replay checks belong to the caller.

All hashes are lower-case hex over UTF-8 text:
    HA1      = H(username:realm:password), then H(HA1:nonce:cnonce) for a -sess algorithm
    HA2      = H(method:uri), or H(method:uri:H(body)) for qop=auth-int
    response = H(HA1:nonce:nc:cnonce:qop:HA2), or H(HA1:nonce:HA2) when no qop was offered
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass


class DigestError(ValueError):
    """A challenge or credentials header that cannot be parsed or used."""


def _hex(name: str) -> Callable[[bytes], str]:
    return lambda data: hashlib.new(name, data).hexdigest()


# RFC 7616 §6.1 (IANA "Hash Algorithms for HTTP Digest Authentication"), adopted for SIP by RFC 8760 §2.
# A "-sess" name hashes with its base and adds the session step of RFC 7616 §3.4.2.
ALGORITHMS: dict[str, Callable[[bytes], str]] = {
    "MD5": _hex("md5"),
    "MD5-sess": _hex("md5"),
    "SHA-256": _hex("sha256"),
    "SHA-256-sess": _hex("sha256"),
    "SHA-512-256": _hex("sha512_256"),
    "SHA-512-256-sess": _hex("sha512_256"),
}
_CANONICAL = {name.lower(): name for name in ALGORITHMS}  # RFC 3261 §7.3.1: token values are case-insensitive
_DEFAULT_ALGORITHM = "MD5"  # RFC 2617 §3.2.1: "If this is not present it is assumed to be MD5."
# docs/behaviour.md#reg-digest: "auth" whenever offered; "auth-int" only when it is the only usable option.
_QOP_PREFERENCE = ("auth", "auth-int")

# RFC 3261 §25.1: LWS = [*WSP CRLF] 1*WSP and SWS = [LWS]. A fold (CRLF before WSP) means one SP
# (§7.3.1): values are unfolded first (_FOLD), and the expressions below then need no CRLF.
# A fold starts where a run of WSP does: a search that began inside the run would walk it again.
_FOLD = re.compile(r"(?<![ \t])[ \t]*\r\n(?=[ \t])")
_LWS = r"[ \t]+"
_SWS = r"[ \t]*"
# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
_TOKEN = r"[A-Za-z0-9.!%*_+`'~-]+"
# quoted-string = SWS DQUOTE *(qdtext / quoted-pair) DQUOTE
# qdtext = LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII;  quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
# Control characters other than HTAB are refused, escaped or not: realm, nonce and opaque are echoed
# into our own requests, so a parsed challenge must be safe to send back.
# Possessive: a run of qdtext is taken whole and never given back (no backtracking on a long nonce).
_QDTEXT = r'(?:[^"\\\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]++|\\[\t\x20-\x7e])*+'
# auth-param = token EQUAL ( token / quoted-string ), separated by COMMA (RFC 2617 §1.2); EQUAL and
# COMMA allow SWS on both sides. The list is well-formed when its parameters, each with what follows it
# (a comma, or the end), cover the text without a gap: _PARAM_LIST, anchored, and linear since a comma
# or the end closes each parameter in one way only. Then findall takes them apart. findall alone would
# try every position of a gap as a new start: the square of a long run that never meets its "=".
_PARAMS = re.compile(rf'({_SWS}({_TOKEN}){_SWS}={_SWS}(?:({_TOKEN})|"({_QDTEXT})"){_SWS}(?:,|\Z))')
_PARAM_LIST = re.compile(rf"(?:{_PARAMS.pattern})+")
_SCHEME = re.compile(rf"{_SWS}(?P<scheme>{_TOKEN}){_LWS}")
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
_UNSENDABLE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_NONCE_COUNT = re.compile(r"[0-9a-f]{8}\Z")  # RFC 3261 §25.1: nonce-count = "nc" EQUAL 8LHEX


@dataclass(frozen=True)
class Challenge:
    realm: str
    nonce: str
    algorithm: str  # canonical spelling when supported, else as received
    qop: tuple[str, ...]  # offered qop tokens, lower-case
    opaque: str | None
    stale: bool
    supported: bool  # algorithm is in ALGORITHMS


@dataclass  # not frozen: one per authenticated request, and a frozen class costs twice as much to make
class Credentials:
    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str  # canonical
    qop: str | None
    nc: int | None
    cnonce: str | None
    opaque: str | None


def _auth_params(text: str, pos: int) -> dict[str, str]:
    """The auth-param list from `pos` on, as {lower-case name: unquoted value}."""
    if not _PARAM_LIST.fullmatch(text, pos) or text.endswith(","):
        raise DigestError("malformed auth-param list")
    found = _PARAMS.findall(text, pos)
    # RFC 3261 §7.3.1: parameter names are case-insensitive
    params = {
        name.lower(): token or (_QUOTED_PAIR.sub(r"\1", quoted) if "\\" in quoted else quoted)
        for _, name, token, quoted in found
    }
    if len(params) != len(found):
        raise DigestError("repeated parameter")  # RFC 7235 §2.1: "MUST only occur once"
    return params


def _digest_params(value: str, *required: str) -> dict[str, str]:
    if "\n" in value:
        value = _FOLD.sub(" ", value)
    match = _SCHEME.match(value)
    if match is None or match["scheme"].lower() != "digest":  # RFC 3261 §22.4: SIP uses only Digest
        raise DigestError("not a Digest header")
    params = _auth_params(value, match.end())
    missing = [name for name in required if name not in params]
    if missing:
        raise DigestError("missing " + ", ".join(missing))
    return params


def _canonical(algorithm: str) -> str:
    try:
        return _CANONICAL[algorithm.lower()]
    except KeyError:
        raise DigestError(f"unsupported algorithm {algorithm!r}") from None


def parse_challenge(value: str) -> Challenge:
    """Parse one WWW-Authenticate or Proxy-Authenticate header value.

    Raises:
        DigestError: the scheme is not Digest, the syntax is broken, or realm or nonce is missing.
    """
    params = _digest_params(value, "realm", "nonce")
    algorithm = params.get("algorithm", _DEFAULT_ALGORITHM)
    offered = (token.strip(" \t").lower() for token in params.get("qop", "").split(","))
    return Challenge(
        realm=params["realm"],
        nonce=params["nonce"],
        algorithm=_CANONICAL.get(algorithm.lower(), algorithm),
        qop=tuple(token for token in offered if token),  # RFC 2617 §3.2.1: qop-options = 1#qop-value
        opaque=params.get("opaque"),
        stale=params.get("stale", "").lower() == "true",  # RFC 7616 §3.3: stale is case-insensitive
        supported=algorithm.lower() in _CANONICAL,
    )


def _parsed(values: Iterable[str]) -> Iterator[Challenge]:
    for value in values:
        try:
            yield parse_challenge(value)
        except DigestError:
            continue  # one broken header must not hide a usable one beside it


def select_challenges(values: list[str]) -> tuple[list[Challenge], str | None]:
    """Choose, per realm, the challenge to answer (docs/behaviour.md#reg-digest; RFC 3261 §22.3).

    Returns one challenge per realm in first-seen order: the top-most one with a supported
    algorithm. The second item is the algorithm of the first realm that has none, else None.
    Values that do not parse are skipped.
    """
    challenges = list(_parsed(values))
    chosen: list[Challenge] = []
    unsupported: str | None = None
    for realm in dict.fromkeys(challenge.realm for challenge in challenges):
        offers = [challenge for challenge in challenges if challenge.realm == realm]
        usable = next((challenge for challenge in offers if challenge.supported), None)
        if usable is not None:
            chosen.append(usable)
        elif unsupported is None:
            unsupported = offers[0].algorithm
    return chosen, unsupported


def _choose_qop(offered: tuple[str, ...]) -> str | None:
    if not offered:
        return None  # RFC 2617 §3.2.2.1: no qop directive, RFC 2069 compatible response
    for qop in _QOP_PREFERENCE:
        if qop in offered:
            return qop
    raise DigestError(f"no supported qop in {offered}")


def _nonce_count(nc: int | None) -> str:
    if nc is None or not 0 < nc <= 0xFFFFFFFF:
        raise DigestError(f"nonce count out of range: {nc}")
    return f"{nc:08x}"  # RFC 7616 §3.4: 8 hex digits, 00000001 for a nonce's first use


def _quote(value: str) -> str:
    if not value.isprintable() and _UNSENDABLE.search(value):  # printable text has no control character
        raise DigestError(f"control character in {value!r}")
    if '"' in value or "\\" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"')  # RFC 3261 §25.1 quoted-pair
    return f'"{value}"'


def _render(credentials: Credentials) -> str:
    text = (
        f"Digest username={_quote(credentials.username)}, realm={_quote(credentials.realm)}, "
        f"nonce={_quote(credentials.nonce)}, uri={_quote(credentials.uri)}, "
        f"response={_quote(credentials.response)}, algorithm={credentials.algorithm}"
    )
    if credentials.qop is not None:
        text += f", qop={credentials.qop}, nc={_nonce_count(credentials.nc)}, cnonce={_quote(credentials.cnonce or '')}"
    if credentials.opaque is not None:
        text += f", opaque={_quote(credentials.opaque)}"  # RFC 7616 §3.4: returned unchanged
    return text


def authorization(
    challenge: Challenge,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    nc: int,
    cnonce: str,
    body: bytes = b"",
) -> str:
    """The Authorization / Proxy-Authorization value answering `challenge` (RFC 3261 §22.2-22.3).

    `uri` is the Request-URI exactly as sent; `nc` counts uses of this nonce from 1; `cnonce` is
    fresh randomness from the caller; `body` matters only for qop=auth-int.

    Raises:
        DigestError: the algorithm is unsupported, no offered qop is usable, a -sess algorithm
            comes without qop, nc is outside 1..2**32-1, or a quoted value holds a control character.
    """
    qop = _choose_qop(challenge.qop)
    with_qop = qop is not None  # RFC 2617 §3.2.2: nc and cnonce are sent only with a qop
    draft = Credentials(
        username=username,
        realm=challenge.realm,
        nonce=challenge.nonce,
        uri=uri,
        response="",
        algorithm=challenge.algorithm,
        qop=qop,
        nc=nc if with_qop else None,
        cnonce=cnonce if with_qop else None,
        opaque=challenge.opaque,
    )
    secret = ha1(challenge.algorithm, username, challenge.realm, password)
    draft.response = expected_response(draft, method=method, stored_ha1=secret, body=body)
    return _render(draft)


def _parse_nonce_count(text: str | None) -> int | None:
    if text is None:
        return None
    if not _NONCE_COUNT.match(text) or int(text, 16) == 0:
        raise DigestError(f"malformed nc {text!r}")
    return int(text, 16)


def parse_credentials(value: str) -> Credentials:
    """Parse one Authorization or Proxy-Authorization header value.

    Raises:
        DigestError: the scheme is not Digest, the syntax is broken, a required parameter is
            missing, the algorithm or qop is unsupported, or nc is not 8 lower-case hex digits.
    """
    params = _digest_params(value, "username", "realm", "nonce", "uri", "response")
    qop = params["qop"].lower() if "qop" in params else None
    if qop is not None and qop not in _QOP_PREFERENCE:
        raise DigestError(f"unsupported qop {qop!r}")
    if qop is not None and not {"nc", "cnonce"} <= params.keys():
        raise DigestError("qop without nc and cnonce")  # RFC 7616 §3.4: both MUST be sent with qop
    return Credentials(
        params["username"],
        params["realm"],
        params["nonce"],
        params["uri"],
        params["response"],
        algorithm=_canonical(params.get("algorithm", _DEFAULT_ALGORITHM)),
        qop=qop,
        nc=_parse_nonce_count(params.get("nc")),
        cnonce=params.get("cnonce"),
        opaque=params.get("opaque"),
    )


KEPT = ("MD5", "SHA-256", "SHA-512-256")  # a registrar keeps an HA1 for each (docs/behaviour.md#office-identity)
# docs/behaviour.md#office-digest: what a registrar may challenge with; the -sess variants need no HA1 of their own but are never offered
CHALLENGE_ALGORITHMS = {name.lower(): name for name in KEPT}


def algorithm_list(text: str) -> tuple[str, ...]:
    """A comma-separated list of challenge algorithms (e.g. "SHA-256,MD5"), canonical and in order.

    Raises:
        DigestError: an empty list, a repeated name, or a name not in CHALLENGE_ALGORITHMS.
    """
    chosen = tuple(CHALLENGE_ALGORITHMS.get(item.strip().lower(), "") for item in text.split(","))
    if not chosen or "" in chosen or len(set(chosen)) != len(chosen):
        raise DigestError(f"{text[:40]!r} is not a list of {', '.join(KEPT)}")
    return chosen


def ha1_kept(username: str, realm: str, password: str) -> dict[str, str]:
    """docs/behaviour.md#office-identity: what a registrar stores for a user instead of the password, one HA1 per KEPT algorithm."""
    return {algorithm: ha1(algorithm, username, realm, password) for algorithm in KEPT}


def ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    """Hex H(username:realm:password) with the algorithm's hash: the secret a registrar stores (docs/behaviour.md#office-identity).

    A -sess name gives the same value as its base; its session step needs the nonce and cnonce and
    happens in `expected_response`.

    Raises:
        DigestError: `algorithm` is not in ALGORITHMS.
    """
    return ALGORITHMS[_canonical(algorithm)](f"{username}:{realm}:{password}".encode())  # RFC 7616 §3.4.2


def _a2(digest: Callable[[bytes], str], method: str, uri: str, qop: str | None, body: bytes) -> str:
    if qop == "auth-int":
        return f"{method}:{uri}:{digest(body)}"  # RFC 7616 §3.4.3: H(entity-body)
    if qop in (None, "auth"):
        return f"{method}:{uri}"  # RFC 7616 §3.4.3; RFC 2617 §3.2.2.3 without qop
    raise DigestError(f"unsupported qop {qop!r}")


def expected_response(credentials: Credentials, *, method: str, stored_ha1: str, body: bytes = b"") -> str:
    """The response a client holding `stored_ha1` (see `ha1`) must have sent (RFC 7616 §3.4.1).

    Raises:
        DigestError: hand-built credentials that `parse_credentials` would refuse.
    """
    name = _canonical(credentials.algorithm)
    digest, nonce, cnonce, qop = ALGORITHMS[name], credentials.nonce, credentials.cnonce, credentials.qop
    secret = stored_ha1
    if name.endswith("-sess"):
        if cnonce is None:
            raise DigestError(f"{name} needs a cnonce, hence a qop")
        secret = digest(f"{stored_ha1}:{nonce}:{cnonce}".encode())  # RFC 7616 §3.4.2
    ha2 = digest(_a2(digest, method, credentials.uri, qop, body).encode())
    if qop is None:
        return digest(f"{secret}:{nonce}:{ha2}".encode())  # RFC 2617 §3.2.2.1, RFC 2069 compatible
    if cnonce is None:
        raise DigestError("qop without cnonce")
    return digest(f"{secret}:{nonce}:{_nonce_count(credentials.nc)}:{cnonce}:{qop}:{ha2}".encode())  # RFC 7616 §3.4.1


def verify(credentials: Credentials, *, method: str, stored_ha1: str, body: bytes = b"") -> bool:
    """Whether `credentials.response` is right for `stored_ha1`, compared in constant time.

    Nonce authenticity, staleness and nc replay are the caller's checks (docs/behaviour.md#office-digest).

    Raises:
        DigestError: as `expected_response`.
    """
    expected = expected_response(credentials, method=method, stored_ha1=stored_ha1, body=body)
    return hmac.compare_digest(expected.encode(), credentials.response.encode())
