import pytest

from sipline.sip.address import InvalidAddress, ServerAddress, parse_server_address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sip.example.net", ServerAddress(False, "sip.example.net", None, None)),
        ("sip.example.net.", ServerAddress(False, "sip.example.net.", None, None)),
        ("sip.example.net:5080", ServerAddress(False, "sip.example.net", 5080, None)),
        ("192.0.2.1", ServerAddress(False, "192.0.2.1", None, None)),
        ("[2001:db8::1]", ServerAddress(False, "2001:db8::1", None, None)),
        ("[2001:db8::1]:5061", ServerAddress(False, "2001:db8::1", 5061, None)),
        ("sip:sip.example.net;transport=TCP", ServerAddress(False, "sip.example.net", None, "tcp")),
        ("sips:sip.example.net:5061", ServerAddress(True, "sip.example.net", 5061, None)),
        ("sips:sip.example.net;transport=tcp", ServerAddress(True, "sip.example.net", None, "tcp")),
        ("a-b.c-d.example", ServerAddress(False, "a-b.c-d.example", None, None)),
    ],
)
def test_accepted(text, expected):
    assert parse_server_address(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "sip:", "host:", "host:abc", "host:0", "host:65536", "host:123456", "1.2.3", "256.1.1.1", "[::1", "[::g]",
     "::1", "sip:user@host", "host;transport=udp", "sips:host;transport=udp", "sip:host;transport=ws",
     "sip:host;lr", "-host", "host-", "ex ample.net", "host/path", "sip.example.123", "a..b", "tel:+123"],
)
def test_refused(text):
    with pytest.raises(InvalidAddress):
        parse_server_address(text)


def test_is_ip():
    assert parse_server_address("[::1]:5060").is_ip and parse_server_address("127.0.0.1").is_ip
    assert not parse_server_address("localhost").is_ip
