"""Who sent a request: X-Forwarded-For only from a trusted proxy (client_address.py)."""

from __future__ import annotations

from ipaddress import ip_network

from hypothesis import given, strategies as st

from sipline.rest.client_address import client_address, parse_ip

PROXIES = (ip_network("10.0.0.0/24"), ip_network("127.0.0.1/32"), ip_network("2001:db8::/64"))


def test_without_trusted_proxies_the_header_is_ignored():
    assert client_address("127.0.0.1", ["198.51.100.7"], ()) == "127.0.0.1"


def test_a_peer_outside_the_trusted_networks_cannot_name_another_client():
    assert client_address("192.0.2.50", ["198.51.100.7"], PROXIES) == "192.0.2.50"


def test_the_nearest_hop_not_a_trusted_proxy_is_the_client():
    assert client_address("10.0.0.1", ["203.0.113.9, 198.51.100.7, 10.0.0.2"], PROXIES) == "198.51.100.7"


def test_several_header_lines_are_one_list():
    assert client_address("10.0.0.1", ["203.0.113.9", "198.51.100.7"], PROXIES) == "198.51.100.7"


def test_a_hop_that_is_not_an_address_stops_at_the_proxy_that_wrote_it():
    assert client_address("10.0.0.1", ['evil" 200', "10.0.0.2"], PROXIES) == "10.0.0.2"
    assert client_address("10.0.0.1", ["unknown"], PROXIES) == "10.0.0.1"
    assert client_address("10.0.0.1", [" , "], PROXIES) == "10.0.0.1"


def test_ports_brackets_and_mapped_addresses():
    assert parse_ip("198.51.100.7:4711") == parse_ip("198.51.100.7")
    assert str(parse_ip("[2001:db8::1]:443")) == "2001:db8::1"
    assert client_address("::ffff:10.0.0.1", ["2001:db8::5, 198.51.100.7"], PROXIES) == "198.51.100.7"
    assert client_address("2001:db8::1", ["2001:db8::2", "[2001:db8:1::9]:80"], PROXIES) == "2001:db8:1::9"


@given(st.text(), st.lists(st.text(), max_size=3))
def test_the_answer_is_the_peer_or_an_ip_address(peer, lines):
    answer = client_address("10.0.0.1", lines, PROXIES)
    assert answer == "10.0.0.1" or parse_ip(answer) is not None
    assert client_address(peer, lines, ()) in (peer, str(parse_ip(peer)))
