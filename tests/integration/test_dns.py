"""DnsResolver against a real DNS server on loopback (tests/peers/dns.py); never real DNS."""

import asyncio
import random
import socket
import time

import pytest

from sipline.sip.address import parse_server_address
from sipline.sip.resolve import ResolutionFailed, Target
from sipline.sip.transports.dns import DnsResolver
from tests.peers.dns import LoopbackDns


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server():
    with LoopbackDns() as dns_server:
        yield dns_server


def resolver_for(server, **options) -> DnsResolver:
    return DnsResolver([server.address], **{"hosts_file": None, "rng": random.Random(0), **options})


def resolve(resolver: DnsResolver, text: str) -> list[Target]:
    return asyncio.run(resolver.resolve(parse_server_address(text)))


def failure(resolver: DnsResolver, text: str) -> str:
    with pytest.raises(ResolutionFailed) as caught:
        resolve(resolver, text)
    return caught.value.reason


def add_pbx(server, ttl=60):
    """pbx.test: NAPTR to TCP then UDP, SRV for both, two hosts with A and AAAA."""
    server.set("pbx.test", "NAPTR", [(20, 10, "s", "SIP+D2U", "", "_sip._udp.pbx.test"),
                                     (10, 10, "s", "SIP+D2T", "", "_sip._tcp.pbx.test")], ttl)
    server.set("_sip._udp.pbx.test", "SRV", [(10, 0, 5070, "a.pbx.test")], ttl)
    server.set("_sip._tcp.pbx.test", "SRV", [(10, 0, 5080, "b.pbx.test")], ttl)
    server.set("a.pbx.test", "A", ["127.0.0.2"], ttl)
    server.set("b.pbx.test", "A", ["127.0.0.3"], ttl)
    server.set("b.pbx.test", "AAAA", ["::1"], ttl)


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("127.0.0.1", Target("udp", "127.0.0.1", 5060, "127.0.0.1")),
        ("[::1]:5070", Target("udp", "::1", 5070, "::1")),
        ("sip:127.0.0.1;transport=tcp", Target("tcp", "127.0.0.1", 5060, "127.0.0.1")),
        ("sips:127.0.0.1", Target("tls", "127.0.0.1", 5061, "127.0.0.1")),
    ],
)
def test_ip_literal_asks_nothing(server, text, target):
    assert resolve(resolver_for(server), text) == [target]
    assert server.queries == []


def test_explicit_port_asks_only_a_and_aaaa(server):
    add_pbx(server)
    assert resolve(resolver_for(server), "b.pbx.test:5090") == [
        Target("udp", "127.0.0.3", 5090, "b.pbx.test"),
        Target("udp", "::1", 5090, "b.pbx.test"),
    ]
    assert sorted(server.queries) == [("b.pbx.test", "A"), ("b.pbx.test", "AAAA")]


def test_explicit_transport_uses_its_srv(server):
    add_pbx(server)
    assert resolve(resolver_for(server), "sip:pbx.test;transport=udp") == [Target("udp", "127.0.0.2", 5070, "pbx.test")]
    assert ("pbx.test", "NAPTR") not in server.queries
    assert ("_sip._tcp.pbx.test", "SRV") not in server.queries


@pytest.mark.parametrize(("transport", "port"), [("tcp", 5060), ("tls", 5061)])
def test_explicit_transport_without_srv_uses_default_port(server, transport, port):
    server.set("plain.test", "A", ["127.0.0.4"])
    targets = resolve(resolver_for(server), f"sip:plain.test;transport={transport}")
    assert targets == [Target(transport, "127.0.0.4", port, "plain.test")]
    assert server.queries[0] == ("_sip._tcp.plain.test" if transport == "tcp" else "_sips._tcp.plain.test", "SRV")


def test_naptr_then_srv_then_addresses(server):
    add_pbx(server)
    assert resolve(resolver_for(server), "pbx.test") == [
        Target("tcp", "127.0.0.3", 5080, "pbx.test"),  # NAPTR order 10
        Target("tcp", "::1", 5080, "pbx.test"),
        Target("udp", "127.0.0.2", 5070, "pbx.test"),  # NAPTR order 20
    ]
    assert server.queries[:3] == [("pbx.test", "NAPTR"), ("_sip._tcp.pbx.test", "SRV"), ("_sip._udp.pbx.test", "SRV")]


def test_unusable_naptr_falls_back_to_srv(server):
    add_pbx(server)
    server.set("pbx.test", "NAPTR", [(10, 10, "s", "SIP+D2S", "", "_sip._sctp.pbx.test")])
    targets = resolve(resolver_for(server), "pbx.test")
    assert [target.transport for target in targets] == ["udp", "tcp", "tcp"]


def test_without_naptr_srv_udp_then_tcp(server):
    add_pbx(server)
    server.set("pbx.test", "NAPTR", [])
    server.set("pbx.test", "MX", [])  # the name exists: NAPTR is NODATA
    assert resolve(resolver_for(server), "pbx.test") == [
        Target("udp", "127.0.0.2", 5070, "pbx.test"),
        Target("tcp", "127.0.0.3", 5080, "pbx.test"),
        Target("tcp", "::1", 5080, "pbx.test"),
    ]
    assert server.queries[:3] == [("pbx.test", "NAPTR"), ("_sip._udp.pbx.test", "SRV"), ("_sip._tcp.pbx.test", "SRV")]


def test_srv_by_priority_then_weight(server):
    server.set("_sip._udp.pri.test", "SRV", [(20, 0, 5060, "backup.pri.test"), (10, 0, 5060, "main.pri.test")])
    server.set("main.pri.test", "A", ["127.0.0.5"])
    server.set("backup.pri.test", "A", ["127.0.0.6"])
    assert [target.address for target in resolve(resolver_for(server), "pri.test")] == ["127.0.0.5", "127.0.0.6"]


def test_without_srv_a_then_aaaa_on_default_port(server):
    server.set("plain.test", "A", ["127.0.0.4"])
    server.set("plain.test", "AAAA", ["::1"])
    assert resolve(resolver_for(server), "plain.test.") == [
        Target("udp", "127.0.0.4", 5060, "plain.test"),
        Target("udp", "::1", 5060, "plain.test"),
    ]


def test_aaaa_only_is_enough(server):
    server.set("six.test", "AAAA", ["::1"])
    assert resolve(resolver_for(server), "six.test") == [Target("udp", "::1", 5060, "six.test")]


def test_sips_uses_sips_naptr_only(server):
    add_pbx(server)
    server.set("pbx.test", "NAPTR", [(10, 10, "s", "SIP+D2U", "", "_sip._udp.pbx.test"),
                                     (20, 10, "s", "SIPS+D2T", "", "_sips._tcp.pbx.test")])
    server.set("_sips._tcp.pbx.test", "SRV", [(10, 0, 5061, "b.pbx.test")])
    assert resolve(resolver_for(server), "sips:pbx.test") == [
        Target("tls", "127.0.0.3", 5061, "pbx.test"),
        Target("tls", "::1", 5061, "pbx.test"),
    ]


def test_sips_without_naptr_asks_sips_tcp(server):
    server.set("_sips._tcp.secure.test", "SRV", [(10, 0, 5063, "tls.secure.test")])
    server.set("tls.secure.test", "A", ["127.0.0.7"])
    assert resolve(resolver_for(server), "sips:secure.test") == [Target("tls", "127.0.0.7", 5063, "secure.test")]
    assert ("_sip._udp.secure.test", "SRV") not in server.queries


def test_sips_without_srv_is_tls_on_5061(server):
    server.set("secure.test", "A", ["127.0.0.7"])
    assert resolve(resolver_for(server), "sips:secure.test") == [Target("tls", "127.0.0.7", 5061, "secure.test")]


def test_srv_dot_target_means_no_service(server):
    server.set("_sip._udp.closed.test", "SRV", [(0, 0, 0, ".")])
    server.set("closed.test", "A", ["127.0.0.8"])
    assert failure(resolver_for(server), "closed.test") == "no addresses"
    assert ("closed.test", "A") not in server.queries  # RFC 2782: no fallback to the host's address


def test_dead_srv_target_is_skipped(server):
    server.set("_sip._udp.half.test", "SRV", [(10, 0, 5060, "gone.half.test"), (20, 0, 5060, "up.half.test")])
    server.set("up.half.test", "A", ["127.0.0.9"])
    assert resolve(resolver_for(server), "half.test") == [Target("udp", "127.0.0.9", 5060, "half.test")]


def test_srv_targets_without_addresses_fail_with_the_reason(server):
    server.set("_sip._udp.hollow.test", "SRV", [(10, 0, 5060, "gone.hollow.test")])
    assert failure(resolver_for(server), "hollow.test") == "NXDOMAIN"


def test_hosts_file_names_skip_dns(server, tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n::1 localhost\n127.0.0.10 PBX.local\n")
    resolver = resolver_for(server, hosts_file=hosts)
    assert resolve(resolver, "localhost") == [
        Target("udp", "127.0.0.1", 5060, "localhost"),
        Target("udp", "::1", 5060, "localhost"),
    ]
    assert resolve(resolver, "sips:pbx.local:5071") == [Target("tls", "127.0.0.10", 5071, "pbx.local")]
    assert server.queries == []


def test_srv_target_from_hosts_file(server, tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.11 box.local\n")
    server.set("_sip._tcp.mixed.test", "SRV", [(10, 0, 5099, "box.local")])
    targets = resolve(resolver_for(server, hosts_file=hosts), "sip:mixed.test;transport=tcp")
    assert targets == [Target("tcp", "127.0.0.11", 5099, "mixed.test")]
    assert server.queries == [("_sip._tcp.mixed.test", "SRV")]


def test_nxdomain_fails_fast(server):
    started = time.monotonic()
    assert failure(resolver_for(server), "nowhere.test") == "NXDOMAIN"
    assert time.monotonic() - started < 1
    assert server.queries == [("nowhere.test", "NAPTR")]  # RFC 8020: nothing below it to ask


def test_invalid_names_never_reach_a_server(server):
    assert failure(resolver_for(server), "sip.example.invalid") == "NXDOMAIN"  # RFC 6761 §6.4
    assert failure(resolver_for(server), "INVALID.") == "NXDOMAIN"
    assert server.queries == []


def test_nodata_everywhere_fails(server):
    server.set("mail.test", "MX", [])
    assert failure(resolver_for(server), "mail.test:5060") == "NODATA"


@pytest.mark.parametrize("rcode", ["SERVFAIL", "REFUSED"])
def test_server_failure(server, rcode):
    server.fail("broken.test", rcode)
    assert failure(resolver_for(server), "broken.test") == rcode


def test_failing_srv_query_fails(server):
    server.set("broken.test", "A", ["127.0.0.2"])
    server.fail("_sip._udp.broken.test", "SERVFAIL")
    assert failure(resolver_for(server), "broken.test") == "SERVFAIL"


def test_dropped_name_times_out_per_query(server):
    server.drop("silent.test")
    started = time.monotonic()
    assert failure(resolver_for(server, query_timeout=0.3), "silent.test") == "timeout"
    assert 0.25 < time.monotonic() - started < 0.9


def test_total_timeout_keeps_what_was_found(server):
    server.set("_sip._udp.slow.test", "SRV", [(10, 0, 5060, "fast.slow.test"), (20, 0, 5060, "mute.slow.test")])
    server.set("fast.slow.test", "A", ["127.0.0.2"])
    server.drop("mute.slow.test")
    started = time.monotonic()
    targets = resolve(resolver_for(server, query_timeout=2, total_timeout=0.4), "slow.test")
    assert targets == [Target("udp", "127.0.0.2", 5060, "slow.test")]
    assert time.monotonic() - started < 1.2


def test_total_timeout_without_targets_fails(server):
    server.set("_sip._udp.slow.test", "SRV", [(10, 0, 5060, "mute.slow.test")])
    server.drop("mute.slow.test")
    assert failure(resolver_for(server, query_timeout=2, total_timeout=0.4), "slow.test") == "timeout"


def test_unreachable_nameserver_fails_cleanly():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()
    resolver = DnsResolver([closed], query_timeout=0.3, hosts_file=None)
    assert failure(resolver, "pbx.test") == "timeout"  # dnspython ignores the ICMP and waits


def test_name_dnspython_refuses_fails_cleanly(server):
    assert failure(resolver_for(server), "a" * 64 + ".test") == "LabelTooLong"  # RFC 1035 §2.3.4: 63 octets
    assert server.queries == []


def test_missing_hosts_file_means_dns_only(server, tmp_path):
    server.set("plain.test", "A", ["127.0.0.4"])
    resolver = resolver_for(server, hosts_file=tmp_path / "absent")
    assert resolve(resolver, "plain.test:5060") == [Target("udp", "127.0.0.4", 5060, "plain.test")]


def test_positive_answers_cached_for_their_ttl(server):
    add_pbx(server, ttl=10)
    clock = Clock()
    resolver = resolver_for(server, clock=clock)
    first = resolve(resolver, "pbx.test")
    asked = len(server.queries)
    server.set("b.pbx.test", "A", ["127.0.0.99"], ttl=10)
    clock.now += 9.9
    assert resolve(resolver, "pbx.test") == first
    assert len(server.queries) == asked
    clock.now += 0.1
    assert resolve(resolver, "pbx.test")[0].address == "127.0.0.99"
    negative = ("a.pbx.test", "AAAA")  # NODATA: still held for the negative TTL
    assert sorted(server.queries[asked:]) == sorted(query for query in server.queries[:asked] if query != negative)


@pytest.mark.parametrize(("negative_ttl", "held"), [(300, 30), (5, 5)])
def test_negative_answers_cached_at_most_30s(server, negative_ttl, held):
    clock = Clock()
    resolver = resolver_for(server, clock=clock, negative_ttl=negative_ttl)
    assert failure(resolver, "late.test") == "NXDOMAIN"
    server.set("late.test", "A", ["127.0.0.12"])
    clock.now += held - 0.1
    assert failure(resolver, "late.test") == "NXDOMAIN"
    assert server.queries == [("late.test", "NAPTR")]
    clock.now += 0.1
    assert resolve(resolver, "late.test") == [Target("udp", "127.0.0.12", 5060, "late.test")]


def test_timeouts_are_cached_too(server):
    server.drop("silent.test")
    clock = Clock()
    resolver = resolver_for(server, clock=clock, query_timeout=0.3)
    assert failure(resolver, "silent.test") == "timeout"
    asked = len(server.queries)
    started = time.monotonic()
    assert failure(resolver, "silent.test") == "timeout"
    assert time.monotonic() - started < 0.1 and len(server.queries) == asked
