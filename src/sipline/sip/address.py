"""Where a line registers: SERVER as the REST API accepts it (docs/behaviour.md#reg-request).

Accepted forms: `host`, `host:port`, `[v6]:port`, or a `sip:`/`sips:` URI without
user part, with at most a `;transport=udp|tcp|tls` parameter.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from sipline.sip.grammar import HOST, PORT

_SERVER = re.compile(
    rf"(?:(?P<scheme>sips?):)?(?P<host>{HOST})(?::(?P<port>{PORT}))?(?:;transport=(?P<transport>[A-Za-z]+))?\Z",
    re.IGNORECASE,
)
TRANSPORTS = ("udp", "tcp", "tls")


class InvalidAddress(ValueError):
    pass


@dataclass(frozen=True)
class ServerAddress:
    secure: bool  # sips: URI
    host: str  # IPv6 without brackets
    port: int | None
    transport: str | None

    @property
    def is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    @property
    def hostport(self) -> str:
        """`host[:port]` as written, host in lower case, IPv6 in brackets: the name of a provider
        (docs/behaviour.md#providers)."""
        host = f"[{self.host}]" if ":" in self.host else self.host.lower()
        return host if self.port is None else f"{host}:{self.port}"


def provider_name(server: str, outbound_proxy: str | None) -> str:
    """The provider a line's REGISTERs go to: its outbound proxy if it has one, else its SERVER
    (docs/behaviour.md#providers); the text as it is when it does not parse."""
    text = outbound_proxy or server
    try:
        return parse_server_address(text).hostport
    except InvalidAddress:
        return text


def parse_server_address(text: str) -> ServerAddress:
    """Raises: InvalidAddress when `text` is not one of the accepted forms."""
    match = _SERVER.match(text)
    if not match:
        raise InvalidAddress(text)
    scheme = (match["scheme"] or "sip").lower()
    transport = match["transport"].lower() if match["transport"] else None
    if match["transport"] and not match["scheme"]:
        raise InvalidAddress(text)  # URI parameters need a URI
    if transport is not None and (transport not in TRANSPORTS or (scheme == "sips" and transport == "udp")):
        raise InvalidAddress(text)
    host = match["host"]
    _check_host(host)
    port = int(match["port"]) if match["port"] else None
    if port is not None and not 0 < port < 65536:
        raise InvalidAddress(text)
    return ServerAddress(scheme == "sips", host.strip("[]"), port, transport)


def _check_host(host: str) -> None:
    try:
        if host.startswith("["):
            ipaddress.IPv6Address(host[1:-1])
        elif host.replace(".", "").isdigit():
            ipaddress.IPv4Address(host)
    except ValueError:
        raise InvalidAddress(host) from None
    if len(host) > 253:
        raise InvalidAddress(host)
