"""Which addresses sipline may originate traffic to (sip/reachability.py): RFC 6890 "globally reachable"."""

import pytest

from sipline.sip.reachability import is_global, is_unicast

NOT_GLOBAL = [
    "100.100.100.200",  # RFC 6598 shared space: a cloud's metadata service answers here
    "100.64.0.1",
    "100.127.255.254",
    "2002::1",  # 6to4
    "2002:a00:1::1",  # 6to4 around 10.0.0.1
    "2002:808:808::1",  # even around a public address: 6to4 is deprecated (RFC 7526)
    "fec0::1",  # site-local
    "feff::1",
    "::ffff:10.0.0.1",  # IPv4-mapped: the socket sends to 10.0.0.1
    "::ffff:127.0.0.1",
    "::ffff:100.100.100.200",
    "64:ff9b::a00:1",  # NAT64 around 10.0.0.1
    "64:ff9b:1::1",  # local-use NAT64 prefix (RFC 8215)
    "0.0.0.0",
    "0.1.2.3",
    "::",
    "192.0.2.1",
    "192.0.2.255",
    "198.51.100.7",
    "203.0.113.9",
    "2001:db8::1",
    "3fff::1",  # documentation (RFC 9637)
    "127.0.0.1",
    "127.255.255.254",
    "::1",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.10",
    "169.254.169.254",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "ff02::1",
    "ff0e::1",
    "255.255.255.255",
    "240.0.0.1",
    "198.18.0.1",
    "192.0.0.9",
    "192.88.99.1",
    "2001::1",  # Teredo
    "2001:2::1",  # benchmarking
    "::a00:1",  # IPv4-compatible, deprecated (RFC 4291 §2.5.5.1)
    "::808:808",
    "100::1",  # discard-only
    "5f00::1",  # outside 2000::/3
    "sip.example.com",  # a name is resolved again, past the test
    "",
    "1.2.3",
    "[2001:4860::1]",
]

GLOBAL = [
    "8.8.8.8",
    "1.1.1.1",
    "100.63.255.255",  # just below 100.64.0.0/10
    "100.128.0.0",  # just above it
    "172.15.255.255",
    "172.32.0.0",
    "192.0.3.1",
    "203.0.114.1",
    "193.0.14.129",
    "2001:4860:4860::8888",
    "2a00:1450:4001:82a::200e",
    "2600::1",
    "2001:200::1",  # just past 2001::/23
    "::ffff:8.8.8.8",  # IPv4-mapped public address
    "64:ff9b::808:808",  # NAT64 around 8.8.8.8 (an IPv6-only host behind DNS64)
]


@pytest.mark.parametrize("address", NOT_GLOBAL)
def test_not_globally_reachable_addresses_are_refused(address):
    assert is_global(address) is False


@pytest.mark.parametrize("address", GLOBAL)
def test_globally_reachable_addresses_pass(address):
    assert is_global(address) is True


@pytest.mark.parametrize(("address", "unicast"), [
    ("127.0.0.1", True), ("192.168.1.10", True), ("::1", True), ("8.8.8.8", True), ("::ffff:10.0.0.1", True),
    ("0.0.0.0", False), ("::", False), ("224.0.0.1", False), ("ff02::1", False), ("255.255.255.255", False),
    ("::ffff:224.0.0.1", False), ("pbx.example.com", False),
])
def test_unicast_names_one_host(address, unicast):
    assert is_unicast(address) is unicast
