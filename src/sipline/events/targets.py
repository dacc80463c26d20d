"""Where a handler may be (docs/behaviour.md#event-bind): the one check of a HANDLER URL, made when it is
bound and again before every connection to it.

A handler URL obeys the rule of a cloud line's SERVER (docs/behaviour.md#reg-private-targets): it leads
only to globally reachable addresses unless the operator allows private ones. A name is resolved and
every address it stands for must be allowed; a name that does not resolve is refused too.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from sipline.events.errors import UnsupportedScheme, WrongHandlerUrl
from sipline.sip.grammar import HOSTNAME
from sipline.sip.reachability import is_global, is_ip_literal, is_unicast

MAX_URL = 2048  # event_handler.handler's width; Bitrix24 keeps EVENT_HANDLER in a VARCHAR(2048) too
RESOLVE_TIMEOUT = 2.0  # seconds a bind waits for DNS: a handler's name is a common one, answered at once
_SCHEMES = {"http": 80, "https": 443}
_UNSAFE = re.compile(r"[\x00-\x20\x7f]")  # spaces and control characters (CR, LF): never in a URL (RFC 3986 §2)

Resolver = Callable[[str, int], Awaitable[list[str]]]


@dataclass(frozen=True)
class HandlerTarget:
    """A handler URL that passed the check, and the addresses it was found at (connect to these: a second
    lookup could answer otherwise)."""

    url: str
    scheme: str
    host: str  # without brackets, lower case
    port: int
    addresses: tuple[str, ...]


async def check_handler_url(url: str, allow_private: bool, resolve: Resolver | None = None) -> HandlerTarget:
    """The target of `url`, every address of which sipline may post to.

    Raises:
        UnsupportedScheme: not http or https.
        WrongHandlerUrl: malformed, too long, with user info, or leading to an address not allowed
            (or to none: the name does not resolve).
    """
    parts = parse_handler_url(url)
    host, port = parts.hostname or "", parts.port or _SCHEMES[parts.scheme.lower()]
    if is_ip_literal(host):
        addresses = [host]
    else:
        addresses = await (resolve or resolve_host)(host, port)
    refused = [address for address in addresses if not (is_unicast(address) and (allow_private or is_global(address)))]
    if refused:
        raise WrongHandlerUrl(f"HANDLER leads to {refused[0]}, which is not globally reachable")
    return HandlerTarget(url, parts.scheme.lower(), host, port, tuple(addresses))


def parse_handler_url(url: str) -> SplitResult:
    """`url` split, if it has the form of a handler URL (no lookup).

    Raises: UnsupportedScheme, WrongHandlerUrl.
    """
    if len(url) > MAX_URL:
        raise WrongHandlerUrl(f"HANDLER is longer than {MAX_URL} characters")
    if _UNSAFE.search(url) or not url.isascii():
        raise WrongHandlerUrl("HANDLER holds a space, a control or a non-ASCII character")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise WrongHandlerUrl(f"HANDLER is not a URL ({error})") from None
    if parts.scheme.lower() not in _SCHEMES:
        raise UnsupportedScheme()
    if "@" in parts.netloc:
        raise WrongHandlerUrl("HANDLER carries user info")
    host = parts.hostname or ""
    if not host or not (is_ip_literal(host) or re.fullmatch(HOSTNAME, host)) or port == 0:
        raise WrongHandlerUrl("HANDLER has no valid host")
    return parts


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` stands for, by the system's resolver, within RESOLVE_TIMEOUT.

    Raises: WrongHandlerUrl when it does not resolve.
    """
    loop = asyncio.get_running_loop()
    try:
        found = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout=RESOLVE_TIMEOUT)
    except (OSError, TimeoutError):
        found = []
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    if not addresses:
        raise WrongHandlerUrl(f"HANDLER's host {host} does not resolve")
    return addresses
