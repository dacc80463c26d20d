"""SIP parsing and serialising: examples, a torture corpus of our own, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipline.sip.errors import BadRequest, MessageTooLarge, ParseError, SipError
from sipline.sip.headers import NameAddr, Via, parse_cseq, parse_delta_seconds, split_list
from sipline.sip.message import Headers, Request, Response, canonical
from sipline.sip.parse import MAX_MESSAGE, KeepAlive, StreamParser, parse_message
from sipline.sip.serialise import HeaderInjection, serialise
from sipline.sip.uri import SipUri

REGISTER = (
    b"REGISTER sip:provider.test SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:100@provider.test>;tag=456248\r\n"
    b"To: <sip:100@provider.test>\r\n"
    b"Call-ID: 843817637684230@998sdasdh09\r\n"
    b"CSeq: 1826 REGISTER\r\n"
    b"Contact: <sip:l0123456789abcdef@192.0.2.1:5060;transport=udp;line=l0123456789abcdef>\r\n"
    b"Expires: 600\r\n"
    b"Content-Length: 0\r\n\r\n"
)

# Our own torture corpus, after the categories of RFC 4475 §3.1: message, what must come out.
TORTUOUS = [
    # compact forms, odd spacing before the colon, folded lines, a multi-element Via
    (
        b"REGISTER sip:provider.test SIP/2.0\r\n"
        b"v: SIP/2.0/UDP a.example;branch=z9hG4bK1 ,\r\n SIP/2.0/TCP b.example:5070;branch=z9hG4bK2\r\n"
        b"f  : \"Bob \\\"the\\\" builder\" <sip:bob@provider.test>;tag=x\r\n"
        b"t:<sip:bob@provider.test>\r\n"
        b"i:\tabc@def\r\n"
        b"CSEQ:\r\n  8\r\n REGISTER\r\n"
        b"m: <sip:b@192.0.2.9>;expires=60, \"x, y\" <sip:c@192.0.2.9>\r\n"
        b"NewFangledHeader:   newfangled value\r\n continued newfangled value\r\n"
        b"l: 0\r\n\r\n",
        {"via": 2, "contact": 2, "call_id": "abc@def", "cseq": (8, "REGISTER"),
         "from_display": 'Bob "the" builder', "custom": "newfangled value continued newfangled value"},
    ),
    # body with Content-Length, unknown method, request URI with parameters and escapes
    (
        b"OPTIONS sip:%61lice;transport=TCP@ex.test;lr SIP/2.0\r\n"
        b"Via: SIP/2.0/TCP ex.test;branch=z9hG4bKx\r\n"
        b"Call-ID: c\r\nCSeq: 1 OPTIONS\r\nFrom: <sip:a@ex.test>;tag=1\r\nTo: sip:a@ex.test\r\n"
        b"Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
        {"via": 1, "contact": 0, "call_id": "c", "cseq": (1, "OPTIONS"), "body": b"hello"},
    ),
]


def test_parse_register():
    request = parse_message(REGISTER)
    assert isinstance(request, Request)
    assert (request.method, request.uri, request.body) == ("REGISTER", "sip:provider.test", b"")
    via = Via.parse(request.headers.get("v"))
    assert (via.transport, via.host, via.port, via.branch) == ("UDP", "192.0.2.1", 5060, "z9hG4bK776asdhds")
    assert "rport" in via.params and via.params["rport"] is None
    assert parse_cseq(request.headers.get("cseq")) == (1826, "REGISTER")
    contact = NameAddr.parse(request.headers.get("Contact"))
    assert SipUri.parse(contact.uri).params["line"] == "l0123456789abcdef"
    assert NameAddr.parse(request.headers.get("From")).tag == "456248"


@pytest.mark.parametrize(("data", "expected"), TORTUOUS)
def test_tortuous_messages(data, expected):
    message = parse_message(data)
    assert len(message.headers.get_all("Via")) == expected["via"]
    assert len(message.headers.get_all("Contact")) == expected["contact"]
    assert message.headers.get("Call-ID") == expected["call_id"]
    assert parse_cseq(message.headers.get("CSeq")) == expected["cseq"]
    if "from_display" in expected:
        assert NameAddr.parse(message.headers.get("From")).display == expected["from_display"]
    if "custom" in expected:
        assert message.headers.get("newfangledheader") == expected["custom"]
    assert message.body == expected.get("body", b"")
    for via in message.headers.get_all("Via"):
        Via.parse(via)
    assert parse_message(serialise(message)) == message


def test_parse_response():
    data = (b"SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKa;received=198.51.100.7;rport=40000\r\n"
            b'WWW-Authenticate: Digest realm="r", nonce="n, with comma"\r\n'
            b'WWW-Authenticate: Digest realm="r", nonce="m", algorithm=SHA-256\r\nContent-Length: 0\r\n\r\n')
    response = parse_message(data)
    assert isinstance(response, Response) and (response.status, response.reason) == (401, "Unauthorized")
    assert len(response.headers.get_all("WWW-Authenticate")) == 2  # never comma-split
    via = Via.parse(response.headers.get("Via"))
    assert (via.params["received"], via.params["rport"]) == ("198.51.100.7", "40000")
    assert parse_message(b"SIP/2.0 200\r\n\r\n").reason == ""


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"REGISTER sip:x SIP/2.0\r\n",  # no end of headers
        b"REGISTER sip:x SIP/3.0\r\n\r\n",
        b"REGISTER  sip:x SIP/2.0\r\n\r\n",
        b"SIP/2.0 99 Low\r\n\r\n",
        b"SIP/2.0 700 High\r\n\r\n",
        b"REGISTER sip:x SIP/2.0\r\nBad Header: x\r\n\r\n",
        b"REGISTER sip:x SIP/2.0\r\nNoColon\r\n\r\n",
        b"REGISTER sip:x SIP/2.0\r\n folded-first: x\r\n\r\n",
        b"REGISTER sip:x SIP/2.0\r\nContent-Length: 10\r\n\r\nshort",
        b"REGISTER sip:x SIP/2.0\r\nContent-Length: -1\r\n\r\n",
        b"REGISTER sip:x SIP/2.0\r\nContent-Length: 99999999999\r\n\r\n",
        b"REGISTER sip:x SIP/2.0\r\nSubject: \xff\xfe\r\n\r\n",
        b"\x00\x01\x02\r\n\r\n",
    ],
)
def test_malformed_messages(data):
    with pytest.raises(ParseError):
        parse_message(data)


def test_limits():
    with pytest.raises(MessageTooLarge):
        parse_message(REGISTER + b"x" * MAX_MESSAGE)
    many_vias = b"".join(b"Via: SIP/2.0/UDP h%d;branch=z9hG4bK%d\r\n" % (n, n) for n in range(101))
    with pytest.raises(MessageTooLarge):
        parse_message(b"REGISTER sip:x SIP/2.0\r\n" + many_vias + b"\r\n")
    hundred = b"".join(b"Via: SIP/2.0/UDP h%d;branch=z9hG4bK%d\r\n" % (n, n) for n in range(100))
    assert len(parse_message(b"REGISTER sip:x SIP/2.0\r\n" + hundred + b"\r\n").headers.get_all("Via")) == 100


def test_udp_body_without_content_length_runs_to_the_end():
    assert parse_message(b"MESSAGE sip:x SIP/2.0\r\n\r\nabc").body == b"abc"
    assert parse_message(b"MESSAGE sip:x SIP/2.0\r\nContent-Length: 2\r\n\r\nabc").body == b"ab"


def test_header_values():
    assert split_list('a, "b, c" <sip:x>, <sip:y;p=1,2>, d') == ['a', '"b, c" <sip:x>', "<sip:y;p=1,2>", "d"]
    assert parse_delta_seconds("30 (busy);duration=10") == 30
    with pytest.raises(BadRequest):
        parse_delta_seconds("soon")
    for bad in ("x REGISTER", "1", "2147483648 REGISTER"):
        with pytest.raises(BadRequest):
            parse_cseq(bad)
    bare = NameAddr.parse("sip:bob@x.test;tag=abc")
    assert (bare.uri, bare.tag) == ("sip:bob@x.test", "abc")  # addr-spec: params belong to the header
    assert NameAddr.parse("Bob <sip:b@x>").display == "Bob"
    for bad in ("<sip:x", '"unterminated <sip:x>', "<sip:x>garbage", "sip:a b"):
        with pytest.raises(BadRequest):
            NameAddr.parse(bad)
    with pytest.raises(BadRequest):
        Via.parse("SIP/2.0/UDP")


def test_uri():
    uri = SipUri.parse("sips:alice;day=tuesday@[2001:db8::1]:5061;transport=TCP;lr?subject=x")
    assert (uri.scheme, uri.user, uri.host, uri.port) == ("sips", "alice;day=tuesday", "2001:db8::1", 5061)
    assert uri.params == {"transport": "TCP", "lr": None} and uri.headers == "subject=x"
    assert str(uri) == "sips:alice;day=tuesday@[2001:db8::1]:5061;transport=TCP;lr?subject=x"
    assert SipUri.parse("sip:%61lice@Example.COM;transport=tcp").equivalent(SipUri.parse("sip:alice@example.com;Transport=TCP"))
    assert not SipUri.parse("sip:a@h").equivalent(SipUri.parse("sip:a@h:5060"))
    assert not SipUri.parse("sip:a@h").equivalent(SipUri.parse("sip:a@h;transport=udp"))
    assert SipUri.parse("sip:a@h;foo=1").equivalent(SipUri.parse("sip:a@h"))
    assert not SipUri.parse("sip:a@h;foo=1").equivalent(SipUri.parse("sip:a@h;foo=2"))
    for bad in ("tel:+123", "sip:", "sip:a@", "sip:h:0", "http://x"):
        with pytest.raises(BadRequest):
            SipUri.parse(bad)


def test_serialise_refuses_header_injection():
    request = Request("REGISTER", "sip:x", Headers([("To", "<sip:a@x>\r\nVia: evil")]))
    with pytest.raises(HeaderInjection):
        serialise(request)


def test_stream_framing_and_keepalives():
    parser = StreamParser()
    events = parser.feed(b"\r\n\r\n" + REGISTER + b"\r\n" + REGISTER[:50])
    assert [type(event) for event in events] == [KeepAlive, Request]
    assert parser.feed(REGISTER[50:] + b"\r\n\r\n\r\n") == [parse_message(REGISTER), KeepAlive()]
    with pytest.raises(ParseError):
        StreamParser().feed(b"MESSAGE sip:x SIP/2.0\r\n\r\nbody without length")
    with pytest.raises(MessageTooLarge):
        StreamParser().feed(b"REGISTER sip:x SIP/2.0\r\n" + b"X: y\r\n" * 12000)
    with pytest.raises(MessageTooLarge):
        StreamParser().feed(b"MESSAGE sip:x SIP/2.0\r\nContent-Length: 70000\r\n\r\n")


# -- properties ---------------------------------------------------------------------------------

tokens = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~", min_size=1,
                 max_size=12)
values = st.text(alphabet=st.characters(blacklist_categories=["Cc", "Cs"], blacklist_characters="\u2028\u2029\x85"),
                 max_size=40).map(str.strip)
header_lists = st.lists(st.tuples(tokens.filter(lambda name: canonical(name) != "Content-Length"), values), max_size=12)


@st.composite
def messages(draw):
    """Messages as the parser returns them: serialise() always ends the headers with Content-Length."""
    body = draw(st.binary(max_size=64))
    headers = Headers(draw(header_lists) + [("Content-Length", str(len(body)))])
    if draw(st.booleans()):
        return Request(draw(tokens).upper(), "sip:" + draw(tokens) + "@h.test", headers, body)
    return Response(draw(st.integers(100, 699)), draw(values), headers, body)


@given(messages())
def test_serialise_then_parse_round_trips(message):
    assert parse_message(serialise(message)) == message


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_raise_a_sip_error(data):
    try:
        parse_message(data)
    except SipError:
        pass


@given(st.lists(messages(), min_size=1, max_size=4), st.data())
def test_feeding_a_stream_in_any_pieces_gives_the_same_messages(batch, data):
    stream = b"".join(b"\r\n\r\n" * data.draw(st.integers(0, 1)) + serialise(message) for message in batch)
    whole = [event for event in StreamParser().feed(stream) if not isinstance(event, KeepAlive)]
    assert whole == batch
    parser, pieces = StreamParser(), []
    for byte in range(len(stream)):
        pieces += parser.feed(stream[byte:byte + 1])
    assert [event for event in pieces if not isinstance(event, KeepAlive)] == batch


@given(st.binary(max_size=300))
def test_stream_garbage_raises_only_sip_errors(data):
    try:
        StreamParser().feed(data)
    except SipError:
        pass


def test_first_values_follow_every_change_of_the_headers():
    parsed = parse_message(b"REGISTER sip:x SIP/2.0\r\nv: SIP/2.0/UDP a\r\nVia: SIP/2.0/UDP b\r\ni: c1\r\n\r\n")
    headers = parsed.headers
    assert (headers.get("via"), headers.get("Call-ID"), headers.get("Contact")) == ("SIP/2.0/UDP a", "c1", None)
    headers.set("Via", "SIP/2.0/UDP z")
    assert headers.get("v") == "SIP/2.0/UDP z" and headers.get_all("Via") == ["SIP/2.0/UDP z"]
    headers.remove("Call-ID")
    headers.add("Contact", "<sip:a@b>")
    assert headers.get("Call-ID") is None and headers.get("m") == "<sip:a@b>"
    built = Headers.of([("Via", "SIP/2.0/UDP 1"), ("Via", "SIP/2.0/UDP 2")])
    assert built.get("Via") == "SIP/2.0/UDP 1"


@given(st.sampled_from(["REGISTER", "register", "OPTIONS", "INVITE", "X-NEW", "BAD METHOD"]),
       st.sampled_from([" ", "  ", "\t"]),
       st.text(st.sampled_from("sip:a@b.test;x=1é\t\x7f\x00 "), max_size=12),
       st.sampled_from(["SIP/2.0", "sip/2.0", "SIP/2.0 ", "SIP/3.0", ""]))
def test_request_lines_read_the_same_with_or_without_the_regular_expression(method, space, uri, version):
    """The usual request line is read without _REQUEST_LINE; every line must read as the regex reads it."""
    from sipline.sip.parse import _REQUEST_LINE

    line = f"{method}{space}{uri} {version}"
    match = _REQUEST_LINE.match(line)
    data = line.encode() + b"\r\n\r\n"
    if match is None:
        with pytest.raises(SipError):
            parse_message(data)
        return
    request = parse_message(data)
    assert (request.method, request.uri) == (match.group(1).upper(), match.group(2))
