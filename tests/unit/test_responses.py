"""A UAS's response to a request, written straight to bytes (RFC 3261 §8.2.6, RFC 3581 §4)."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from sipline.sip.errors import BadExtension, BadRequest, IntervalTooBrief, NotFound, Unauthorized
from sipline.sip.headers import NameAddr, Via
from sipline.sip.parse import parse_message
from sipline.sip.responses import _stamp, _stamp_plain, answerable, encode_error, encode_response
from sipline.sip.serialise import HeaderInjection

REQUEST = (
    "REGISTER sip:pbx.test SIP/2.0\r\n"
    "v: SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK-1;rport, SIP/2.0/TCP proxy.test;branch=z9hG4bK-p\r\n"
    "Via: SIP/2.0/UDP edge.test:5080;branch=z9hG4bK-e\r\n"
    "From: <sip:alice@pbx.test>;tag=a1\r\n"
    "t: <sip:alice@pbx.test>\r\n"
    "i: call-1@10.0.0.5\r\n"
    "CSeq: 7 REGISTER\r\n"
    "Contact: <sip:alice@10.0.0.5:5070>\r\n"
    "Content-Length: 0\r\n\r\n"
)


def request(text: str = REQUEST):
    return parse_message(text.encode())


def test_copies_the_dialog_fields_and_stamps_the_top_via():
    data = encode_response(request(), 401, "Unauthorized", to_tag="x9", source=("203.0.113.7", 40000),
                           headers=[("www-authenticate", 'Digest realm="pbx.test", nonce="n"')])
    response = parse_message(data)
    assert (response.status, response.reason) == (401, "Unauthorized")
    vias = [Via.parse(value) for value in response.headers.get_all("Via")]
    assert [via.branch for via in vias] == ["z9hG4bK-1", "z9hG4bK-p", "z9hG4bK-e"]  # every Via, in order
    assert (vias[0].params["received"], vias[0].params["rport"]) == ("203.0.113.7", "40000")
    assert "received" not in vias[1].params and "received" not in vias[2].params
    assert response.headers.get("From") == "<sip:alice@pbx.test>;tag=a1"
    assert NameAddr.parse(response.headers.get("To")).tag == "x9"
    assert (response.headers.get("Call-ID"), response.headers.get("CSeq")) == ("call-1@10.0.0.5", "7 REGISTER")
    assert response.headers.get("WWW-Authenticate") == 'Digest realm="pbx.test", nonce="n"'
    assert data.endswith(b"\r\nContent-Length: 0\r\n\r\n") and response.body == b""


def test_an_error_is_written_with_its_own_fields_then_the_callers():
    data = encode_error(request(), IntervalTooBrief(60), to_tag="x9", headers=[("Date", "today")])
    assert data.startswith(b"SIP/2.0 423 Interval Too Brief\r\n")
    assert data.endswith(b"\r\nMin-Expires: 60\r\nDate: today\r\nContent-Length: 0\r\n\r\n")
    challenged = parse_message(encode_error(request(), Unauthorized(['Digest realm="a"', 'Digest realm="b"'])))
    assert (challenged.status, challenged.headers.get_all("WWW-Authenticate")) == (401, ['Digest realm="a"',
                                                                                       'Digest realm="b"'])
    assert parse_message(encode_error(request(), BadExtension(["foo", "bar"]))).headers.get("Unsupported") == "foo, bar"
    assert encode_error(request(), NotFound("not ours")).startswith(b"SIP/2.0 404 Not Found\r\n")


def test_received_only_when_the_host_differs_and_no_rport_asked():
    same = encode_response(request(REQUEST.replace(";rport,", ",")), 200, "OK", source=("10.0.0.5", 5070))
    assert Via.parse(parse_message(same).headers.get_all("Via")[0]).params == {"branch": "z9hG4bK-1"}
    other = encode_response(request(REQUEST.replace(";rport,", ",")), 200, "OK", source=("10.0.0.6", 5070))
    assert Via.parse(parse_message(other).headers.get_all("Via")[0]).params["received"] == "10.0.0.6"


def test_a_to_tag_already_there_is_kept():
    tagged = request(REQUEST.replace("t: <sip:alice@pbx.test>", "t: <sip:alice@pbx.test>;tag=theirs"))
    response = parse_message(encode_response(tagged, 200, "OK", to_tag="ours"))
    assert NameAddr.parse(response.headers.get("To")).tag == "theirs"


def test_a_malformed_top_via_cannot_be_answered():
    with pytest.raises(BadRequest):
        encode_response(request(REQUEST.replace("SIP/2.0/UDP 10.0.0.5:5070", "nonsense")), 200, "OK",
                        source=("10.0.0.5", 5070))


@pytest.mark.parametrize("field", ["From: <sip:alice@pbx.test>;tag=a\n1", "i: call\r-1"])
def test_a_lone_cr_or_lf_in_a_copied_value_is_refused(field):
    text = REQUEST.replace("From: <sip:alice@pbx.test>;tag=a1", field) if field.startswith("From") else \
        REQUEST.replace("i: call-1@10.0.0.5", field)
    with pytest.raises(HeaderInjection):
        encode_response(request(text), 200, "OK")


def test_a_cr_lf_in_our_own_headers_is_refused():
    with pytest.raises(HeaderInjection):
        encode_response(request(), 200, "OK", headers=[("Contact", "<sip:a@b>\r\nX-Evil: 1")])


def test_answerable_needs_the_five_fields():
    assert answerable(request())
    assert not answerable(request(REQUEST.replace("CSeq: 7 REGISTER\r\n", "")))
    assert not answerable(request(REQUEST.replace("i: call-1@10.0.0.5", "i: ")))


_VIA_ELEMENTS = st.tuples(
    st.sampled_from(["SIP/2.0/UDP ", "SIP/2.0/TCP ", "sip/2.0/UDP ", "SIP/2.0/udp ", "SIP/2.0/X-Y ", "SIP/2.0 /UDP "]),
    st.sampled_from(["10.0.0.5", "1.2.3.4.example", "1.2.3.4a", "pbx.test", "[2001:db8::1]", "[::1]", "-bad", ""]),
    st.sampled_from(["", ":5070", ":05070", ":0", ":65535", ":65536", ":506000", " :5070", ":"]),
    st.lists(st.sampled_from([";branch=z9hG4bK-1", ";rport", ";rport=", ";rport=1", ";received=192.0.2.1",
                              ";Branch=x", ";x", ";x=a=b", ';x="q"', "; x=1", ";x=1 ", ";received", ",", ";",
                              "=", " "]), max_size=4).map("".join),
).map("".join)


@given(_VIA_ELEMENTS, st.sampled_from([("10.0.0.5", 5070), ("192.0.2.9", 1024), ("::1", 5060)]))
@example("SIP/2.0/UDP 10.0.0.5:5070;Branch=x;rport", ("192.0.2.9", 1024))  # str(Via) lower-cases names
@example("SIP/2.0/UDP 1.2.3.4.example;rport", ("192.0.2.9", 1024))  # Via.parse refuses it
def test_a_plainly_spelled_via_is_stamped_as_the_parsed_one_is(element, source):
    """The unparsed stamp (a hot path) gives what Via.parse and str(Via) give, or leaves the element
    to them: it never accepts what they refuse."""
    plain = _stamp_plain(element, source)
    if plain is None:
        return
    assert plain == _stamp(element, source)


def test_the_usual_top_vias_are_stamped_without_a_parse():
    assert _stamp_plain("SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK-1;rport", ("192.0.2.9", 1024)) == (
        "SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK-1;rport=1024;received=192.0.2.9")
    assert _stamp_plain("SIP/2.0/TCP 10.0.0.5;branch=z9hG4bK-1", ("10.0.0.5", 1024)) == (
        "SIP/2.0/TCP 10.0.0.5;branch=z9hG4bK-1")
    assert _stamp_plain("SIP/2.0/UDP pbx.test;received=1.1.1.1;branch=b", ("10.0.0.5", 9)) == (
        "SIP/2.0/UDP pbx.test;received=10.0.0.5;branch=b")
