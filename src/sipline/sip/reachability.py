"""Which IP addresses are globally reachable, pure: the test behind every destination sipline picks.

"Globally reachable" as RFC 6890 §2.2.2 defines it (the IANA special-purpose address registries
built on it): an address that may be a destination on the public internet. Anything else (loopback,
RFC 1918, carrier-grade NAT, link-local, documentation, multicast, ...) is inside someone's network,
where a tenant's SERVER must not steer sipline.

The tables are written out rather than taken from `ipaddress`' `is_global`, whose answer depends on
the Python release: 3.11 calls 2002::/16, fec0::/10 and 224.0.0.0/4 global.

    IPv4                      -> global unless inside NOT_GLOBAL_V4
    ::ffff:a.b.c.d            -> as a.b.c.d (RFC 4291 §2.5.5.2: the socket sends to the IPv4 address)
    64:ff9b::a.b.c.d          -> as a.b.c.d (RFC 6052 §2.1: a NAT64 translates it to that address)
    other IPv6                -> global only inside 2000::/3 and outside NOT_GLOBAL_V6
    not an IP literal         -> not global (a name would be resolved again, past this test)
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

NOT_GLOBAL_V4 = (
    _V4("0.0.0.0/8"),  # RFC 1122 §3.2.1.3: "this network"
    _V4("10.0.0.0/8"),  # RFC 1918
    _V4("100.64.0.0/10"),  # RFC 6598: shared address space behind carrier-grade NAT
    _V4("127.0.0.0/8"),  # RFC 1122 §3.2.1.3: loopback
    _V4("169.254.0.0/16"),  # RFC 3927: link-local (cloud metadata services live here)
    _V4("172.16.0.0/12"),  # RFC 1918
    _V4("192.0.0.0/24"),  # RFC 6890 §2.2.2: IETF protocol assignments
    _V4("192.0.2.0/24"),  # RFC 5737: TEST-NET-1
    _V4("192.88.99.0/24"),  # RFC 7526: the deprecated 6to4 relay anycast
    _V4("192.168.0.0/16"),  # RFC 1918
    _V4("198.18.0.0/15"),  # RFC 2544: benchmarking
    _V4("198.51.100.0/24"),  # RFC 5737: TEST-NET-2
    _V4("203.0.113.0/24"),  # RFC 5737: TEST-NET-3
    _V4("224.0.0.0/4"),  # RFC 5771: multicast, never a registrar
    _V4("240.0.0.0/4"),  # RFC 1112 §4: reserved, with 255.255.255.255 (RFC 919 broadcast)
)
GLOBAL_UNICAST_V6 = _V6("2000::/3")  # RFC 4291 §2.4, RFC 3587: the only IPv6 space routed on the internet
NOT_GLOBAL_V6 = (
    _V6("2001::/23"),  # RFC 2928: IETF protocol assignments (Teredo, benchmarking, ORCHID)
    _V6("2001:db8::/32"),  # RFC 3849: documentation
    _V6("2002::/16"),  # RFC 3056 6to4, deprecated by RFC 7526: it embeds any IPv4 address, private ones too
    _V6("3fff::/20"),  # RFC 9637: documentation
)
NAT64_PREFIX = _V6("64:ff9b::/96")  # RFC 6052 §2.1: the well-known prefix


BROADCAST = ipaddress.IPv4Address("255.255.255.255")  # RFC 919


@lru_cache(maxsize=4096)
def is_global(address: str) -> bool:
    """True when `address` is an IP literal reachable on the public internet (RFC 6890 §2.2.2)."""
    ip = _reached(address)
    if ip is None:
        return False
    if ip.version == 6:
        return ip in GLOBAL_UNICAST_V6 and not any(ip in network for network in NOT_GLOBAL_V6)
    return not any(ip in network for network in NOT_GLOBAL_V4)


@lru_cache(maxsize=4096)
def is_unicast(address: str) -> bool:
    """True when `address` is an IP literal that names one host: not unspecified, multicast or broadcast."""
    ip = _reached(address)
    return ip is not None and not (ip.is_unspecified or ip.is_multicast or ip == BROADCAST)


def unmapped(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An IPv4-mapped IPv6 address (a dual-stack socket's peer, RFC 4291 §2.5.5.2) as the IPv4
    address it is; any other address as it is."""
    return getattr(ip, "ipv4_mapped", None) or ip


def _reached(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a packet to `address` ends up at: an IPv4-mapped or NAT64 one is the IPv4 address it
    carries; None when `address` is no IP literal."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    ip = unmapped(ip)
    if isinstance(ip, ipaddress.IPv6Address) and ip in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)  # RFC 6052 §2.2: the last 32 bits for a /96
    return ip


@lru_cache(maxsize=4096)
def is_ip_literal(text: str) -> bool:
    """Whether `text` is an IPv4 or IPv6 address (no brackets), not a name."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
