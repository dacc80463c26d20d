"""The SIP parser under hostile input: any bytes, mutated REGISTER/OPTIONS, any split of a TCP stream, long values.

Every reader of peer input either gives a value or raises its own error (ParseError for messages, BadRequest
for header values, DigestError for Authorization), never anything else, and in time linear in its input: a
regular expression that backtracks without end on one header would stall the one event loop of the server.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sipline.registrar.bindings import read_register
from sipline.registration.attempt import _observed_in
from sipline.sip import digest
from sipline.sip.address import InvalidAddress, parse_server_address
from sipline.sip.errors import BadRequest, ParseError, SipError
from sipline.sip.headers import NameAddr, Via, parse_cseq, parse_delta_seconds, parse_params, split_list
from sipline.sip.message import Request, Response
from sipline.sip.parse import MAX_MESSAGE, KeepAlive, StreamParser, parse_message
from sipline.sip.responses import answerable, encode_response
from sipline.sip.serialise import HeaderInjection, serialise
from sipline.sip.uri import SipUri

FUZZ = settings(max_examples=300, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow])

REGISTER = (
    b"REGISTER sip:127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Office" <sip:100@127.0.0.1>;tag=456248\r\n'
    b"To: <sip:100@127.0.0.1>\r\n"
    b"Call-ID: 843817637684230@998sdasdh09\r\n"
    b"CSeq: 1826 REGISTER\r\n"
    b"Contact: <sip:100@192.0.2.1:5060;transport=udp>;expires=600, sip:101@192.0.2.1\r\n"
    b'Authorization: Digest username="100", realm="127.0.0.1", nonce="abc", uri="sip:127.0.0.1",'
    b' response="0123456789abcdef0123456789abcdef", algorithm=MD5, qop=auth, nc=00000001, cnonce="x"\r\n'
    b"Expires: 600\r\n"
    b"Content-Length: 0\r\n\r\n"
)
OPTIONS = (
    b"OPTIONS sip:ping@127.0.0.1 SIP/2.0\r\n"
    b"v: SIP/2.0/TCP [::1]:5070;branch=z9hG4bKping;received=::1\r\n"
    b"f: sip:t@127.0.0.1;tag=1\r\n"
    b"t: <sip:ping@127.0.0.1>\r\n"
    b"i: ping1\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Accept: application/sdp\r\n"
    b"l: 5\r\n\r\nhello"
)
CHALLENGE = (
    b"SIP/2.0 401 Unauthorized\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa;received=198.51.100.7;rport=40000\r\n"
    b"From: <sip:100@127.0.0.1>;tag=1\r\nTo: <sip:100@127.0.0.1>;tag=2\r\nCall-ID: c\r\nCSeq: 2 REGISTER\r\n"
    b'WWW-Authenticate: Digest realm="r", nonce="n, with comma", qop="auth,auth-int", algorithm=SHA-256\r\n'
    b"Min-Expires: 60\r\nContent-Length: 0\r\n\r\n"
)
SEEDS = (REGISTER, OPTIONS, CHALLENGE)
# Bytes that mean something to one of the grammars (RFC 3261 §25.1): what a mutation most likely breaks with.
SIGNIFICANT = [b"\r\n", b"\r\n ", b"\r\n\r\n", b" ", b"\t", b":", b";", b",", b"=", b"<", b">", b'"', b"\\", b"@",
               b"[", b"]", b"?", b"%", b"/", b"\x00", b"\xff", b"\xc3", b"Content-Length: 99999\r\n",
               b"Content-Length: 3\r\n", b"l: -1\r\n", b"tag", b"Digest ", b"sip:", b"SIP/2.0",
               "²".encode(), "٣".encode(), b"0" * 5000]  # digits to str.isdigit(), not to the grammar; a long number


@st.composite
def mutated(draw, seeds: tuple[bytes, ...] = SEEDS) -> bytes:
    """A valid message with a few bytes flipped, cut, repeated or replaced by ones the grammar cares about."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        end = draw(st.integers(at, min(len(data), at + 40)))
        kind = draw(st.sampled_from(["flip", "insert", "delete", "repeat", "significant", "truncate"]))
        if kind == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at:end]
        elif kind == "repeat":  # a run of one piece: long tokens, many parameters, many headers
            data[at:end] = data[at:end] * draw(st.integers(2, 200))
        elif kind == "significant":
            data[at:end] = draw(st.sampled_from(SIGNIFICANT))
        elif kind == "truncate":
            del data[at:]
    return bytes(data)


class Overran(Exception):
    """A parser used more CPU than its budget."""


@contextmanager
def cpu_budget(seconds: float):
    """Fail with Overran once the process has spent `seconds` of CPU time in the block (SIGPROF counts CPU,
    not wall time, so a loaded machine does not make it fire; and it interrupts a regular expression)."""

    def overran(signum, frame):
        raise Overran(f"more than {seconds} s of CPU")

    previous = signal.signal(signal.SIGPROF, overran)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def read_every_field(message: Request | Response) -> None:
    """What the server reads of a message, each reader allowed only its own error."""
    headers = message.headers
    for name in ("From", "To", "Contact", "Route", "Record-Route"):
        for value in headers.get_all(name):
            if value != "*":
                try:
                    SipUri.parse(NameAddr.parse(value).uri)
                except BadRequest:
                    pass
    for value in headers.get_all("Via"):
        try:
            Via.parse(value)
        except BadRequest:
            pass
    for name, reader in (("CSeq", parse_cseq), ("Expires", parse_delta_seconds), ("Min-Expires", parse_delta_seconds)):
        for value in headers.get_all(name):
            try:
                reader(value)
            except BadRequest:
                pass
    for name, reader in (("Authorization", digest.parse_credentials), ("WWW-Authenticate", digest.parse_challenge)):
        for value in headers.get_all(name):
            try:
                reader(value)
            except digest.DigestError:
                pass
    if isinstance(message, Request):
        try:
            SipUri.parse(message.uri)
        except BadRequest:
            pass
        if answerable(message):
            try:
                encode_response(message, 200, "OK", to_tag="sipline", source=("127.0.0.1", 5060))
            except (BadRequest, HeaderInjection):
                pass


def parse_or_refuse(data: bytes) -> Request | Response | None:
    try:
        return parse_message(data)
    except ParseError:
        return None


def parse_and_read(data: bytes) -> None:
    """The message and every field the server reads, in two seconds of CPU at most."""
    with cpu_budget(2):
        message = parse_or_refuse(data)
        if message is not None:
            read_every_field(message)


# -- any bytes, mutated messages ---------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=2000))
def test_any_bytes_give_a_message_or_a_parse_error(data):
    parse_and_read(data)


@FUZZ
@given(mutated())
@example(REGISTER.replace(b"To: <sip:100@127.0.0.1>", b"To: " + b"a" * 40))
@example(REGISTER.replace(b'username="100"', b"1" * 20000))
def test_mutated_register_and_options_give_a_message_or_a_parse_error(data):
    parse_and_read(data)


@FUZZ
@given(mutated())
def test_what_parses_serialises_to_what_parses_the_same(data):
    message = parse_or_refuse(data)
    if message is None:
        return
    try:
        again = parse_message(serialise(message))
    except HeaderInjection:  # a lone CR or LF inside a value: refused rather than sent on
        return
    assert again.body == message.body
    assert without_length(again) == without_length(message)  # serialise() writes its own, from the body


def without_length(message: Request | Response) -> list[tuple[str, str]]:
    return [(name, value) for name, value in message.headers.fields if name != "Content-Length"]


# -- header values on their own ------------------------------------------------------------------------

READERS = {
    "name-addr": (NameAddr.parse, BadRequest),
    "via": (Via.parse, BadRequest),
    "uri": (SipUri.parse, BadRequest),
    "cseq": (parse_cseq.__wrapped__, BadRequest),
    "delta-seconds": (parse_delta_seconds, BadRequest),
    "params": (parse_params, ()),
    "list": (split_list, ()),
    "credentials": (digest.parse_credentials, digest.DigestError),
    "challenge": (digest.parse_challenge, digest.DigestError),
    "server": (parse_server_address, InvalidAddress),
}
PIECES = ["a", "a ", "a.", "a-", "1.", "1", ":", " ", "\t", ";a", ";a=", "=b", '"', "\\", '\\"', "<", ">", ",", "a,",
          "[", "[1:", "@", "sip:", "%", "a=b,", 'a="b",', "\r\n ", "é", "\x00", "0", "9", "²"]
PREFIXES = ["", "SIP/2.0/UDP ", "sip:", "sip:a@", "Digest ", '"x" ', "<sip:a@b>", "1 ", "a ", 'Digest a="b", ']
SUFFIXES = ["", "!", "<", ">", '"', ";", ":", ":99999", "?", " a", "\x00", ",", "="]


@settings(max_examples=200, deadline=None, print_blob=True)
@given(reader=st.sampled_from(sorted(READERS)), piece=st.sampled_from(PIECES) | st.text(min_size=1, max_size=4),
       prefix=st.sampled_from(PREFIXES), suffix=st.sampled_from(SUFFIXES))
def test_a_long_run_in_any_header_value_is_read_in_linear_time(reader, piece, prefix, suffix):
    """A run as long as a message may be: a parser that backtracks over it takes seconds, a linear one
    a few milliseconds."""
    read, refusal = READERS[reader]
    value = prefix + piece * (MAX_MESSAGE // 2 // len(piece)) + suffix
    with cpu_budget(1):
        try:
            read(value)
        except refusal:
            pass


@settings(max_examples=300, deadline=None, print_blob=True)
@given(reader=st.sampled_from(sorted(READERS)), value=st.text(max_size=200))
def test_any_header_value_gives_a_value_or_the_readers_own_error(reader, value):
    read, refusal = READERS[reader]
    with cpu_budget(2):
        try:
            read(value)
        except refusal:
            pass


def test_a_display_name_without_an_address_is_refused_in_linear_time():
    """`To: aaaa…` (a display name that never reaches `<`): each added letter doubled the work."""
    with cpu_budget(1):
        for value in ("a" * 60, "a b " * 30, "Bob" + " " * 30000, "\t" * 30000 + "x"):
            try:
                NameAddr.parse(value)
            except BadRequest:
                pass
    assert NameAddr.parse("Bob  Smith<sip:b@h>").display == "Bob  Smith"
    assert NameAddr.parse(' "x" <sip:b@h> ;tag=1').tag == "1"


def test_a_broken_authorization_of_a_message_s_size_is_refused_in_linear_time():
    """A parameter name that never meets its `=`: each position of the run was tried again as a start."""
    for value in ("Digest " + "1" * 60000, 'Digest username="a", ' + "x" * 60000 + '"', "Digest " + "a." * 30000,
                  "Digest a=" + " " * 60000 + "\n"):  # a lone LF: looked for folds in a long run of spaces
        with cpu_budget(1):
            try:
                digest.parse_credentials(value)
            except digest.DigestError:
                pass
            try:
                digest.parse_challenge(value)
            except digest.DigestError:
                pass


def test_a_content_length_in_digits_other_than_ascii_is_a_parse_error():
    """str.isdigit() says yes to "²" and "٣", which int() refuses or reads: RFC 3261 §25.1 DIGIT is 0-9."""
    for length in ("²", "٣", "1²"):
        data = OPTIONS.replace(b"l: 5", f"l: {length}".encode())
        try:
            parse_message(data)
        except ParseError:
            continue
        raise AssertionError(f"Content-Length {length!r} was read")


def test_delta_seconds_of_any_length_are_read_and_capped():
    assert parse_delta_seconds("0" * 5000 + "60") == 60
    assert parse_delta_seconds("9" * 5000) == parse_delta_seconds("4294967296") == 2**32 - 1
    assert parse_delta_seconds(" 3600;x") == 3600


@pytest.mark.parametrize("contact", ["<sip:a@127.0.0.1>;expires=²", "<sip:a@127.0.0.1>;expires=" + "9" * 5000,
                                     "<sip:a@127.0.0.1>;reg-id=²", "<sip:a@127.0.0.1>;reg-id=" + "9" * 5000])
def test_a_contact_expiry_or_reg_id_outside_ascii_digits_is_a_bad_request(contact):
    """The registrar's reading of Contact parameters: str.isdigit() said yes, int() raised ValueError."""
    request = parse_message(REGISTER.replace(b"<sip:100@192.0.2.1:5060;transport=udp>;expires=600", contact.encode()))
    with pytest.raises(BadRequest):
        read_register(request, transport="udp", source=("127.0.0.1", 5999), local=("127.0.0.1", 5060),
                      algorithm="MD5")


def test_an_rport_outside_ascii_digits_teaches_nothing():
    """A registrar's `rport=²` passed str.isdigit() and int() raised ValueError in the registration engine."""
    for rport in ("²", "٣", "9" * 5000):
        assert _observed_in(f"SIP/2.0/UDP 192.0.2.1:5060;branch=b;received=198.51.100.7;rport={rport}") is None
    assert _observed_in("SIP/2.0/UDP 192.0.2.1:5060;branch=b;received=198.51.100.7;rport=40000") == ("198.51.100.7",
                                                                                                      40000)


# -- TCP framing -------------------------------------------------------------------------------------------

BODY = b"\r\n\r\nbody\r\n\r\n\r"  # what frames a stream, inside a body: only Content-Length tells
FRAMED = (REGISTER, OPTIONS, CHALLENGE, OPTIONS.replace(b"l: 5\r\n\r\nhello", b"Content-Length: 0\r\n\r\n"),
          REGISTER.replace(b"Content-Length: 0\r\n\r\n", b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)))
GAPS = (b"", b"", b"\r\n", b"\r\n\r\n", b"\r\n\r\n\r\n", b"\r\n\r\n\r\n\r\n")  # nothing, CRLFs (§7.5), pings (RFC 5626)


def feed_in_pieces(stream: bytes, cuts: list[int]) -> tuple[list[object], type[SipError] | None]:
    """Events of a StreamParser fed `stream` cut at `cuts`, and the error that ended it (None: none did)."""
    parser, events = StreamParser(), []
    bounds = [0, *sorted(cuts), len(stream)]
    try:
        for start, end in zip(bounds, bounds[1:]):
            events += parser.feed(stream[start:end])
    except SipError as error:
        return events, type(error)
    return events, None


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(GAPS), st.sampled_from(FRAMED)), min_size=1, max_size=6), st.data())
def test_valid_messages_split_anywhere_frame_as_when_whole(parts, data):
    stream = b"".join(gap + message for gap, message in parts)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20))
    whole, error = feed_in_pieces(stream, [])
    assert error is None
    assert [event for event in whole if not isinstance(event, KeepAlive)] == [parse_message(m) for _, m in parts]
    assert feed_in_pieces(stream, cuts) == (whole, None)


@FUZZ
@given(st.lists(mutated(FRAMED) | st.sampled_from(GAPS) | st.binary(max_size=30), min_size=1, max_size=5), st.data())
def test_any_stream_split_anywhere_frames_and_fails_as_when_whole(parts, data):
    """The same events and the same error however the stream is cut, except that a feed() which raises
    returns nothing: what it completed before the error is lost with the flow it closes."""
    stream = b"".join(parts)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20))
    with cpu_budget(2):
        events, error = feed_in_pieces(stream, cuts)
        most, same_error = feed_in_pieces(stream, list(range(len(stream))))
    assert error is same_error
    assert events == most if error is None else events == most[:len(events)]
    assert error is None or issubclass(error, ParseError)
    for event in events:
        if not isinstance(event, KeepAlive):
            read_every_field(event)


def test_one_byte_at_a_time_frames_as_when_whole():
    stream = b"".join(gap + message for gap, message in zip(GAPS, FRAMED))
    assert feed_in_pieces(stream, list(range(len(stream)))) == feed_in_pieces(stream, [])
