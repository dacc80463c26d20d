"""RFC 3263 lookups with dnspython's asyncio stub resolver; what to ask and how to order it is sip/resolve.py.

Every answer, positive or negative, is cached by (name, type) on the injected clock: positive ones for their TTL,
negative ones (NXDOMAIN, NODATA, SERVFAIL, REFUSED, timeout) for at most 30 s (docs/behaviour.md#reg-targets). Names in
the hosts file are answered from it and never asked of DNS, like the system resolver's "files" source.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.resolver

from sipline.sip.address import ServerAddress
from sipline.sip.resolve import (
    NaptrRecord,
    ResolutionFailed,
    SrvRecord,
    Target,
    address_targets,
    default_port,
    default_transport,
    literal_target,
    order_naptr,
    order_srv,
    parse_hosts,
    srv_plan,
)

NEGATIVE_TTL_CAP = 30.0  # docs/behaviour.md#reg-targets: "negative ones ≤ 30 s"
ABSENT = ("NXDOMAIN", "NODATA")  # the name or the type does not exist: go on to the next step
# Why a query failed, first match wins; NoNameservers carries each server's rcode instead (see _failure).
_FAILURES: tuple[tuple[type[Exception], str], ...] = (
    (dns.resolver.NXDOMAIN, "NXDOMAIN"),
    (dns.resolver.NoAnswer, "NODATA"),
    (dns.exception.Timeout, "timeout"),
)
_RECORDS: dict[str, Callable[[Any], object]] = {
    "A": lambda rdata: rdata.address,
    "AAAA": lambda rdata: rdata.address,
    "SRV": lambda rdata: SrvRecord(rdata.priority, rdata.weight, rdata.port, _name(rdata.target)),
    "NAPTR": lambda rdata: NaptrRecord(
        rdata.order,
        rdata.preference,
        _text(rdata.flags),
        _text(rdata.service),
        _text(rdata.regexp),
        _name(rdata.replacement),
    ),
}
Answer = list[Any] | str  # the records, or why there are none
ServiceSets = list[tuple[str, list[SrvRecord]]]  # (transport, SRV records), only sets that exist


class DnsResolver:
    """Turns a SERVER into the targets to try, in order (docs/behaviour.md#reg-targets, RFC 3263 §4)."""

    def __init__(
        self,
        nameservers: list[tuple[str, int]] | None = None,
        *,
        query_timeout: float = 5.0,  # docs/behaviour.md#reg-targets: each query ≤ 5 s
        total_timeout: float = 10.0,  # docs/behaviour.md#reg-targets: whole resolution ≤ 10 s
        negative_ttl: float = NEGATIVE_TTL_CAP,
        hosts_file: Path | None = Path("/etc/hosts"),
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`nameservers` None means the system's (/etc/resolv.conf); the hosts file is read once, here."""
        self._resolver = _stub_resolver(nameservers, query_timeout)
        self._total_timeout = total_timeout
        self._negative_ttl = min(negative_ttl, NEGATIVE_TTL_CAP)
        self._hosts = _read_hosts(hosts_file)
        self._rng = rng or random.Random()
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, Answer]] = {}

    async def resolve(self, address: ServerAddress) -> list[Target]:
        """All targets for `address`, best first; the caller caps how many it tries (RFC 3263 §4.3).

        Raises:
            ResolutionFailed: no usable target; `reason` names the DNS failure (docs/behaviour.md#reg-targets DNS_FAIL).
        """
        if address.is_ip:
            return [literal_target(address)]  # RFC 3263 §4.2: no DNS for an IP literal
        if address.host.rstrip(".").lower().rpartition(".")[2] == "invalid":
            raise ResolutionFailed("NXDOMAIN")  # RFC 6761 §6.4: answered here, never sent to a server
        found: list[Target] = []
        try:
            async with asyncio.timeout(self._total_timeout):
                await self._collect(address, found)
        except TimeoutError:
            if not found:
                raise ResolutionFailed("timeout") from None
        return found  # on the total timeout: what had been found by then

    async def _collect(self, address: ServerAddress, found: list[Target]) -> None:
        host = address.host.rstrip(".")
        transport = default_transport(address)
        # RFC 3263 §4.2: a port means A/AAAA only; a hosts-file name has no SRV or NAPTR to find
        if address.port is not None or host.lower() in self._hosts:
            port = address.port or default_port(transport)
            found += address_targets(host, transport, port, await self._addresses(host))
            return
        services = await self._services(address, host)
        if not services:  # RFC 3263 §4.2: no SRV, so A/AAAA at the default port
            found += address_targets(host, transport, default_port(transport), await self._addresses(host))
            return
        await self._collect_srv(host, services, found)

    async def _services(self, address: ServerAddress, host: str) -> ServiceSets:
        if address.transport is None:  # RFC 3263 §4.1: NAPTR only when the URI names no transport
            # RFC 8020 §2: after NXDOMAIN nothing exists below the name, so no SRV either
            naptr = await self._records(host, "NAPTR", absent=("NODATA",))
            services = await self._srv_sets(order_naptr(naptr, address.secure))
            if services:
                return services
        return await self._srv_sets(srv_plan(address, host))

    async def _srv_sets(self, plan: list[tuple[str, str]]) -> ServiceSets:
        sets = [(transport, await self._records(name, "SRV")) for transport, name in plan]
        return [(transport, records) for transport, records in sets if records]

    async def _collect_srv(self, host: str, services: ServiceSets, found: list[Target]) -> None:
        failure = ResolutionFailed("no addresses")
        for transport, records in services:
            for record in order_srv(records, self._rng):
                try:
                    addresses = await self._addresses(record.target)
                except ResolutionFailed as error:
                    failure = error  # one dead SRV target does not sink the others
                    continue
                found += address_targets(host, transport, record.port, addresses)
        if not found:
            raise failure

    async def _addresses(self, name: str) -> list[str]:
        """A then AAAA addresses; one type missing is fine. Raises ResolutionFailed when neither gives any."""
        if name.lower() in self._hosts:
            return list(self._hosts[name.lower()])
        results = await asyncio.gather(self._query(name, "A"), self._query(name, "AAAA"), return_exceptions=True)
        addresses = [address for result in results if isinstance(result, list) for address in result]
        if not addresses:
            raise next((result for result in results if isinstance(result, BaseException)), ResolutionFailed("NODATA"))
        return addresses

    async def _records(self, name: str, rdtype: str, absent: tuple[str, ...] = ABSENT) -> list[Any]:
        """Records of one type, [] when `absent` says so. Raises ResolutionFailed on any other failure."""
        try:
            return await self._query(name, rdtype)
        except ResolutionFailed as error:
            if error.reason in absent:
                return []
            raise

    async def _query(self, name: str, rdtype: str) -> list[Any]:
        key = (name.lower(), rdtype)
        cached = self._cache.get(key)
        if cached is None or cached[0] <= self._clock():
            cached = self._cache[key] = await self._ask(name, rdtype)
        answer = cached[1]
        if isinstance(answer, str):
            raise ResolutionFailed(answer)
        return answer

    async def _ask(self, name: str, rdtype: str) -> tuple[float, Answer]:
        try:
            answer = await self._resolver.resolve(name, rdtype, search=False)
        except (dns.exception.DNSException, OSError, ValueError) as error:  # none of dnspython's errors escape
            return self._clock() + self._negative_ttl, _failure(error)
        records = [_RECORDS[rdtype](rdata) for rdata in answer]
        return self._clock() + answer.chaining_result.minimum_ttl, records


def _stub_resolver(nameservers: list[tuple[str, int]] | None, query_timeout: float) -> dns.asyncresolver.Resolver:
    try:
        resolver = dns.asyncresolver.Resolver(configure=nameservers is None)
    except dns.resolver.NoResolverConfiguration:
        resolver = dns.asyncresolver.Resolver(configure=False)  # no servers: each query fails "no nameservers"
    if nameservers is not None:
        resolver.nameservers = [dns.nameserver.Do53Nameserver(ip, port) for ip, port in nameservers]
    resolver.timeout = resolver.lifetime = query_timeout  # no dnspython cache (the default): ours runs on `clock`
    return resolver


def _read_hosts(path: Path | None) -> dict[str, tuple[str, ...]]:
    try:
        return parse_hosts(path.read_text(encoding="utf-8", errors="replace")) if path else {}
    except OSError:
        return {}


def _failure(error: Exception) -> str:
    for kind, reason in _FAILURES:
        if isinstance(error, kind):
            return reason
    if isinstance(error, dns.resolver.NoNameservers):  # each server's answer: an rcode name or an exception
        answers = [entry[3] for entry in error.kwargs.get("errors", [])]
        return str(answers[-1]) if answers and isinstance(answers[-1], str) else "no nameserver answered"
    return type(error).__name__


def _name(name: dns.name.Name) -> str:
    return "." if name == dns.name.root else name.to_text(omit_final_dot=True)


def _text(value: bytes) -> str:
    return value.decode("ascii", "replace")
