import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipline.sip.address import ServerAddress
from sipline.sip.resolve import (
    NaptrRecord,
    SrvRecord,
    Target,
    address_targets,
    default_port,
    default_transport,
    literal_target,
    order_naptr,
    order_srv,
    parse_hosts,
    srv_name,
    srv_plan,
)


def server(host="pbx.test", port=None, transport=None, secure=False):
    return ServerAddress(secure, host, port, transport)


@pytest.mark.parametrize(
    ("address", "transport", "port"),
    [
        (server(), "udp", 5060),
        (server(transport="tcp"), "tcp", 5060),
        (server(transport="tls"), "tls", 5061),
        (server(secure=True), "tls", 5061),
        (server(secure=True, transport="tcp"), "tls", 5061),  # RFC 3263 §4.1: SIPS over TCP is TLS
    ],
)
def test_default_transport_and_port(address, transport, port):
    assert default_transport(address) == transport
    assert default_port(transport) == port


@pytest.mark.parametrize(
    ("transport", "secure", "name"),
    [
        ("udp", False, "_sip._udp.pbx.test"),
        ("tcp", False, "_sip._tcp.pbx.test"),
        ("tls", False, "_sips._tcp.pbx.test"),
        ("tcp", True, "_sips._tcp.pbx.test"),
        ("tls", True, "_sips._tcp.pbx.test"),
    ],
)
def test_srv_name(transport, secure, name):
    assert srv_name("pbx.test", transport, secure) == name


def test_srv_name_refuses_secure_udp():
    with pytest.raises(ValueError):
        srv_name("pbx.test", "udp", True)


@pytest.mark.parametrize(
    ("address", "plan"),
    [
        (server(), [("udp", "_sip._udp.pbx.test"), ("tcp", "_sip._tcp.pbx.test")]),
        (server(transport="tcp"), [("tcp", "_sip._tcp.pbx.test")]),
        (server(secure=True), [("tls", "_sips._tcp.pbx.test")]),
    ],
)
def test_srv_plan(address, plan):
    assert srv_plan(address, "pbx.test") == plan


def srv(priority, weight, target, port=5060):
    return SrvRecord(priority, weight, port, target)


def test_srv_ascending_priority():
    records = [srv(30, 0, "c"), srv(10, 5, "a"), srv(20, 5, "b")]
    assert [record.target for record in order_srv(records, random.Random(1))] == ["a", "b", "c"]


def test_srv_weighted_within_priority():
    records = [srv(10, 10, "light"), srv(10, 30, "middle"), srv(10, 60, "heavy"), srv(20, 100, "backup")]
    rng = random.Random(3263)
    firsts = Counter()
    for _ in range(10_000):
        ordered = order_srv(records, rng)
        assert ordered[-1].target == "backup"
        firsts[ordered[0].target] += 1
    # RFC 2782: pick uniform in [0, 100]; the first running sum >= pick goes first, so light wins 0..10
    assert firsts["light"] == pytest.approx(10_000 * 11 / 101, abs=200)
    assert firsts["middle"] == pytest.approx(10_000 * 30 / 101, abs=200)
    assert firsts["heavy"] == pytest.approx(10_000 * 60 / 101, abs=200)


def test_srv_weight_zero_rarely_first():
    records = [srv(10, 100, "weighted"), srv(10, 0, "zero")]
    rng = random.Random(2782)
    firsts = Counter(order_srv(records, rng)[0].target for _ in range(10_000))
    assert 30 < firsts["zero"] < 200  # RFC 2782: 1 chance in sum+1 = 1/101


def test_srv_all_weights_zero_keeps_every_record():
    records = [srv(10, 0, "a"), srv(10, 0, "b")]
    assert sorted(record.target for record in order_srv(records, random.Random(0))) == ["a", "b"]


def test_srv_single_dot_means_not_available():
    assert order_srv([srv(0, 0, ".")], random.Random(0)) == []


def test_srv_dot_among_others_is_dropped():
    assert order_srv([srv(0, 0, "."), srv(1, 0, "a")], random.Random(0)) == [srv(1, 0, "a")]


@given(
    st.lists(st.builds(SrvRecord, st.integers(0, 3), st.integers(0, 50), st.just(5060), st.sampled_from("abcde."))),
    st.integers(),
)
def test_srv_order_is_a_permutation_by_priority(records, seed):
    ordered = order_srv(records, random.Random(seed))
    kept = [record for record in records if record.target != "."]
    assert Counter(ordered) == Counter(kept)
    assert [record.priority for record in ordered] == sorted(record.priority for record in ordered)


def naptr(order, preference, service, replacement, flags="s"):
    return NaptrRecord(order, preference, flags, service, "", replacement)


NAPTR_SET = [
    naptr(20, 10, "SIP+D2U", "_sip._udp.pbx.test"),
    naptr(10, 20, "SIP+D2T", "_sip._tcp.pbx.test"),
    naptr(10, 10, "SIPS+D2T", "_sips._tcp.pbx.test"),
    naptr(5, 10, "SIP+D2S", "_sip._sctp.pbx.test"),  # SCTP: not ours
    naptr(5, 10, "E2U+sip", "_sip._udp.pbx.test"),  # ENUM, not RFC 3263
    naptr(5, 10, "SIP+D2U", "pbx.test", flags="a"),  # "a": an A name, RFC 3263 uses "s" only
    naptr(5, 10, "SIP+D2T", "."),
]


def test_naptr_filtered_and_ordered():
    assert order_naptr(NAPTR_SET, secure=False) == [
        ("tls", "_sips._tcp.pbx.test"),
        ("tcp", "_sip._tcp.pbx.test"),
        ("udp", "_sip._udp.pbx.test"),
    ]


def test_naptr_secure_keeps_only_sips():
    assert order_naptr(NAPTR_SET, secure=True) == [("tls", "_sips._tcp.pbx.test")]


def test_naptr_flags_and_service_case_insensitive():
    assert order_naptr([naptr(1, 1, "sip+d2u", "_sip._udp.x", flags="S")], secure=False) == [("udp", "_sip._udp.x")]


def test_naptr_nothing_usable():
    assert order_naptr(NAPTR_SET[3:], secure=False) == []


@pytest.mark.parametrize(
    ("address", "target"),
    [
        (server("192.0.2.1"), Target("udp", "192.0.2.1", 5060, "192.0.2.1")),
        (server("2001:db8::1", port=5070, transport="tcp"), Target("tcp", "2001:db8::1", 5070, "2001:db8::1")),
        (server("192.0.2.1", secure=True), Target("tls", "192.0.2.1", 5061, "192.0.2.1")),
    ],
)
def test_literal_target(address, target):
    assert literal_target(address) == target


def test_address_targets_keep_the_sip_domain():
    assert address_targets("pbx.test", "tls", 5061, ["192.0.2.1", "2001:db8::1"]) == [
        Target("tls", "192.0.2.1", 5061, "pbx.test"),
        Target("tls", "2001:db8::1", 5061, "pbx.test"),
    ]


def test_parse_hosts():
    text = "# comment\n::1 localhost ip6-localhost\n127.0.0.1\tLocalHost  # trailing\nnot-an-ip name\n\n10.0.0.1 pbx.\n"
    assert parse_hosts(text) == {
        "localhost": ("127.0.0.1", "::1"),  # IPv4 first, as A before AAAA
        "ip6-localhost": ("::1",),
        "pbx": ("10.0.0.1",),
    }
