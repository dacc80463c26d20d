"""What a cloud line's REGISTER looks like (docs/behaviour.md#reg-request).

REGISTER sip:SERVER-HOST[:port][;transport=t] SIP/2.0
Via: SIP/2.0/T our-host:port;branch=z9hG4bK…;rport        (RFC 3581 §3)
Route: <sip:OUTBOUND_PROXY;lr>                              (only with a proxy, §8.1.2)
From: <sip:LOGIN@SERVER-HOST>;tag=…    To: <sip:LOGIN@SERVER-HOST>
Call-ID, CSeq n REGISTER, Contact: <sip:TOKEN@addr:port;transport=t;line=TOKEN>
Expires: E, Authorization / Proxy-Authorization per challenged realm
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote

from sipline import __version__
from sipline.sip.address import ServerAddress, parse_server_address
from sipline.sip.message import Headers, Request

USER_AGENT = f"sipline/{__version__}"
# RFC 3261 §25.1: user = 1*( unreserved / escaped / user-unreserved )
_USER_SAFE = "-_.!~*'()&=+$,;?/"
_PLAIN_USER = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/]+\Z")  # needs no escaping


@dataclass(frozen=True)
class Account:
    """A cloud line as the registration needs it; `identity` changes start a new Call-ID (docs/behaviour.md#reg-lifecycle)."""

    server: ServerAddress
    proxy: ServerAddress | None
    login: str
    auth_user: str | None
    password: str
    # Derived once, when the line is loaded or changed: every REGISTER needs them, and a
    # cached_property (Python 3.11) takes a lock on each first use, ~4 µs a line in a start-up burst.
    request_uri: str = field(init=False, compare=False, repr=False)
    provider: str = field(init=False, compare=False, repr=False)  # whom the REGISTERs go to (below)
    aor: str = field(init=False, compare=False, repr=False)
    hop_name: str = field(init=False, compare=False, repr=False)  # docs/behaviour.md#providers: its breaker's name

    def __post_init__(self) -> None:  # object.__setattr__: the dataclass idiom for a frozen class
        request_uri = uri_of(self.server)
        object.__setattr__(self, "request_uri", request_uri)
        # the Request-URI, by way of the outbound proxy if any: lines of one provider share its nonces
        object.__setattr__(self, "provider", f"{request_uri} {uri_of(self.proxy)}" if self.proxy else request_uri)
        scheme = "sips" if self.server.secure else "sip"
        user = self.login if _PLAIN_USER.match(self.login) else quote(self.login, safe=_USER_SAFE)
        object.__setattr__(self, "aor", f"{scheme}:{user}@{_host(self.server.host)}")
        object.__setattr__(self, "hop_name", (self.proxy or self.server).hostport)

    @classmethod
    def from_fields(
        cls, server: str, proxy: str | None, login: str, auth_user: str | None, password: str | None
    ) -> Account:
        """Raises: InvalidAddress for a SERVER or proxy the REST layer should have refused."""
        return cls(
            server=parse_server_address(server),
            proxy=parse_server_address(proxy) if proxy else None,
            login=login,
            auth_user=auth_user or None,
            password=password or "",
        )

    @property
    def identity(self) -> tuple[object, ...]:
        return (self.server, self.proxy, self.login, self.auth_user)

    @property
    def username(self) -> str:
        """docs/behaviour.md#reg-digest: the digest username is AUTH_USER when set, else LOGIN."""
        return self.auth_user or self.login

    @property
    def next_hop(self) -> ServerAddress:
        """Where requests go: the outbound proxy when there is one (docs/behaviour.md#reg-request)."""
        return self.proxy or self.server


def uri_of(address: ServerAddress, *, loose_route: bool = False) -> str:
    scheme = "sips" if address.secure else "sip"
    port = f":{address.port}" if address.port else ""
    transport = f";transport={address.transport}" if address.transport else ""
    lr = ";lr" if loose_route else ""
    return f"{scheme}:{_host(address.host)}{port}{transport}{lr}"


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def contact_uri(token: str, host: str, port: int, transport: str) -> str:
    """docs/behaviour.md#reg-request: `sip:TOKEN@ADDR:PORT;transport=T;line=TOKEN` — TOKEN finds the line again (docs/behaviour.md#reg-inbound-match)."""
    return f"sip:{token}@{_host(host)}:{port};transport={transport};line={token}"


@dataclass(frozen=True)
class Binding:
    """A Contact we put in a REGISTER, with `expires` only when it differs from the Expires header."""

    uri: str
    expires: int | None = None


def build_register(
    account: Account,
    *,
    call_id: str,
    cseq: int,
    from_tag: str,
    branch: str,
    via: tuple[str, str, int],
    contacts: list[Binding],
    expires: int,
    credentials: list[tuple[str, str]],
) -> Request:
    transport, host, port = via
    fields = [
        ("Via", f"SIP/2.0/{transport.upper()} {_host(host)}:{port};branch={branch};rport"),
        ("Max-Forwards", "70"),
    ]
    if account.proxy is not None:
        fields.append(("Route", f"<{uri_of(account.proxy, loose_route=True)}>"))
    aor = account.aor
    fields += [
        ("From", f"<{aor}>;tag={from_tag}"),
        ("To", f"<{aor}>"),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} REGISTER"),
    ]
    for binding in contacts:
        suffix = "" if binding.expires is None else f";expires={binding.expires}"
        fields.append(("Contact", f"<{binding.uri}>{suffix}"))
    fields.append(("Expires", str(expires)))
    fields += credentials
    fields.append(("User-Agent", USER_AGENT))
    return Request("REGISTER", account.request_uri, Headers.of(fields))
