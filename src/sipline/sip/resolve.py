"""RFC 3263 target selection from DNS records, pure: records in, ordered targets out (docs/behaviour.md#reg-targets).

The asyncio side (`sip/transports/dns.py`) asks the questions; this module decides which ones to ask and
orders what comes back:

    IP literal            -> one target, no DNS                            (RFC 3263 §4.2)
    explicit port         -> A/AAAA of the host                            (RFC 3263 §4.2)
    explicit transport    -> SRV for it, else A/AAAA + default port        (RFC 3263 §4.1, §4.2)
    otherwise             -> NAPTR, else SRV per transport, else A/AAAA    (RFC 3263 §4.1, §4.2)
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass
from itertools import accumulate

from sipline.sip.address import ServerAddress


@dataclass(frozen=True)
class Target:
    transport: str  # "udp" | "tcp" | "tls"
    address: str  # IP literal, IPv6 without brackets
    port: int
    host: str  # the SIP domain (SERVER host): what TLS verifies, RFC 5922 §7.2


@dataclass(frozen=True)
class SrvRecord:
    priority: int
    weight: int
    port: int
    target: str  # without trailing dot; "." is the root


@dataclass(frozen=True)
class NaptrRecord:
    order: int
    preference: int
    flags: str
    service: str
    regexp: str
    replacement: str  # without trailing dot; "." is the root


class ResolutionFailed(Exception):
    """DNS gave no usable target (docs/behaviour.md#reg-targets: NXDOMAIN, NODATA, SERVFAIL, REFUSED, timeout, no addresses)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# RFC 3263 §4.1: the service field names transport and security; D2U = UDP, D2T = TCP.
NAPTR_SERVICES = {"SIP+D2U": "udp", "SIP+D2T": "tcp", "SIPS+D2T": "tls"}
SECURE_NAPTR_SERVICES = {"SIPS+D2T": "tls"}  # RFC 3263 §4.1: a SIPS URI only uses TLS
# RFC 3263 §4.1: "_sips" for SIPS URIs (and TLS); RFC 2782 "_Service._Proto.Name".
SRV_PREFIXES = {
    ("udp", False): "_sip._udp",
    ("tcp", False): "_sip._tcp",
    ("tls", False): "_sips._tcp",
    ("tcp", True): "_sips._tcp",
    ("tls", True): "_sips._tcp",
}


def default_transport(address: ServerAddress) -> str:
    """The explicit transport, else TLS for sips:, else UDP (RFC 3263 §4.1); sips over TCP means TLS."""
    if address.secure:
        return "tls"  # RFC 3263 §4.1: "if the transport parameter is TCP ... for a SIPS URI, TLS"
    return address.transport or "udp"


def default_port(transport: str) -> int:
    return 5061 if transport == "tls" else 5060  # RFC 3261 §19.1.2


def srv_name(host: str, transport: str, secure: bool) -> str:
    """The SRV owner name for `transport` at `host`, e.g. "_sip._udp.example.net".

    Raises:
        ValueError: for a secure UDP lookup, which RFC 3263 §4.1 does not define.
    """
    try:
        return f"{SRV_PREFIXES[transport, secure]}.{host}"
    except KeyError:
        raise ValueError(f"no SRV service for {transport} (secure={secure})") from None


def srv_plan(address: ServerAddress, host: str) -> list[tuple[str, str]]:
    """(transport, SRV name) to query when NAPTR gave nothing usable, in order of preference (RFC 3263 §4.1)."""
    if address.transport is not None or address.secure:
        transport = default_transport(address)
        return [(transport, srv_name(host, transport, address.secure))]
    return [(transport, srv_name(host, transport, False)) for transport in ("udp", "tcp")]


def order_srv(records: list[SrvRecord], rng: random.Random) -> list[SrvRecord]:
    """RFC 2782 "Usage rules": ascending priority, weighted random order within one priority."""
    if len(records) == 1 and records[0].target == ".":
        return []  # RFC 2782: "decidedly not available at this domain"
    ordered: list[SrvRecord] = []
    for priority in sorted({record.priority for record in records}):
        group = [record for record in records if record.priority == priority and record.target != "."]
        ordered += _weighted_order(group, rng)
    return ordered


def _weighted_order(group: list[SrvRecord], rng: random.Random) -> list[SrvRecord]:
    # RFC 2782: weight-0 records first, pick uniform in [0, sum], take the first running sum >= it, repeat.
    remaining = sorted(group, key=lambda record: record.weight != 0)
    ordered = []
    while remaining:
        pick = rng.randint(0, sum(record.weight for record in remaining))
        sums = accumulate(record.weight for record in remaining)
        ordered.append(remaining.pop(next(index for index, total in enumerate(sums) if total >= pick)))
    return ordered


def order_naptr(records: list[NaptrRecord], secure: bool) -> list[tuple[str, str]]:
    """(transport, SRV name) from the usable NAPTR records, by (order, preference) (RFC 3263 §4.1, RFC 3403 §4.1).

    Usable: flag "s" (the replacement is an SRV name) and a SIP service we speak.
    """
    services = SECURE_NAPTR_SERVICES if secure else NAPTR_SERVICES
    usable = [
        record
        for record in records
        if record.flags.lower() == "s" and record.service.upper() in services and record.replacement not in ("", ".")
    ]
    usable.sort(key=lambda record: (record.order, record.preference))
    return [(services[record.service.upper()], record.replacement) for record in usable]


def literal_target(address: ServerAddress) -> Target:
    """The one target of an IP-literal SERVER (RFC 3263 §4.2: no DNS)."""
    transport = default_transport(address)
    return Target(transport, address.host, address.port or default_port(transport), address.host)


def address_targets(host: str, transport: str, port: int, addresses: list[str]) -> list[Target]:
    return [Target(transport, address, port, host) for address in addresses]


def parse_hosts(text: str) -> dict[str, tuple[str, ...]]:
    """hosts(5): lower-cased name -> IPv4 then IPv6 addresses (as A before AAAA); invalid addresses are skipped."""
    names: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        address, *aliases = line.split("#", 1)[0].split() or [""]
        try:
            ipaddress.ip_address(address)
        except ValueError:
            continue
        for name in aliases:
            key = name.lower().rstrip(".")
            names[key] = (*names.get(key, ()), address)
    return {name: tuple(sorted(addresses, key=lambda address: ":" in address)) for name, addresses in names.items()}
