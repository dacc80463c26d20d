"""SIP and SIPS URIs (RFC 3261 §19.1): parse, render, compare."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote as percent_decode

from sipline.sip.errors import BadRequest
from sipline.sip.grammar import HOST, PORT
from sipline.sip.headers import parse_params, render_params

# SIP-URI = "sip:" [ userinfo ] hostport uri-parameters [ headers ]
_URI = re.compile(rf"(?P<scheme>sips?):(?:(?P<userinfo>[^@]*)@)?(?P<host>{HOST})(?::(?P<port>{PORT}))?", re.IGNORECASE)
# parameters whose presence in one URI and absence in the other makes them differ (§19.1.4)
_MUST_MATCH = ("user", "ttl", "method", "maddr", "transport")


@dataclass(slots=True)
class SipUri:
    scheme: str  # "sip" or "sips", lower-case
    host: str  # as written; IPv6 without brackets
    user: str | None = None
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: str = ""  # the part after "?", kept as written

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Raises: BadRequest for anything but a sip:/sips: URI."""
        body, _, headers = text.strip().partition("?")
        match = _URI.match(body)
        if not match:
            raise BadRequest(f"not a SIP URI: {text!r}")
        params, rest = parse_params(body[match.end() :])
        if rest:
            raise BadRequest(f"malformed SIP URI parameters: {text!r}")
        port = int(match["port"]) if match["port"] else None
        if port is not None and not 0 < port < 65536:
            raise BadRequest(f"SIP URI port out of range: {text!r}")
        user = match["userinfo"]
        return cls(
            scheme=match["scheme"].lower(),
            host=match["host"].strip("[]"),
            user=user.partition(":")[0] if user is not None else None,
            port=port,
            params=params,
            headers=headers,
        )

    @property
    def host_port(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.port else host

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user is not None else ""
        headers = f"?{self.headers}" if self.headers else ""
        return f"{self.scheme}:{user}{self.host_port}{render_params(self.params)}{headers}"

    def equivalent(self, other: SipUri) -> bool:
        """URI comparison of RFC 3261 §19.1.4 (the parts a registrar uses to match Contacts)."""
        if (self.scheme, self.port) != (other.scheme, other.port):
            return False
        if _decoded(self.user) != _decoded(other.user) or self.host.lower() != other.host.lower():
            return False
        for name in set(self.params) | set(other.params):
            mine, theirs = self.params.get(name, _ABSENT), other.params.get(name, _ABSENT)
            if mine is _ABSENT or theirs is _ABSENT:
                if name in _MUST_MATCH:
                    return False
            elif _lower(mine) != _lower(theirs):
                return False
        return self.headers == other.headers


_ABSENT = object()


def _decoded(user: str | None) -> str | None:
    return None if user is None else percent_decode(user)


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value
