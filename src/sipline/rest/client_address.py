"""Who sent a request: the TCP peer, or the client a trusted proxy names in X-Forwarded-For.

Only a peer inside a `--trusted-proxy` network may name another address (
docs/behaviour.md#rest-client-address): the list is read from the right, each proxy appending the address it received from,
and the first hop not itself a trusted proxy is the client. A hop that is not an IP address
ends the walk at the proxy that wrote it, so nothing a client makes up reaches a log line
or a rate-limit key.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from sipline.sip.reachability import unmapped

Networks = tuple[IPv4Network | IPv6Network, ...]


def client_address(peer: str, forwarded_for: Iterable[str], trusted: Networks) -> str:
    """`forwarded_for`: every X-Forwarded-For line in order (RFC 9110 §5.3: one comma-separated list)."""
    hops = [hop.strip() for line in forwarded_for for hop in line.split(",") if hop.strip()]
    client = parse_ip(peer)
    if client is None:
        return peer
    while hops and any(client in network for network in trusted):
        hop = parse_ip(hops.pop())
        if hop is None:
            break
        client = hop
    return str(client)


def parse_ip(text: str) -> IPv4Address | IPv6Address | None:
    """An address as proxies write it: `192.0.2.1`, `192.0.2.1:80`, `2001:db8::1` or `[2001:db8::1]:80`;
    an IPv4-mapped IPv6 address (a dual-stack socket's peer) as the IPv4 address it is."""
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ip_address(text)
    except ValueError:
        return None
    return unmapped(address)
