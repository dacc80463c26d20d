"""Who answers a request (registrar/answering.py): bytes in, the response or what else to do out."""

from __future__ import annotations

import pytest

from sipline.registrar.answering import Handling, answer
from sipline.sip.parse import parse_message

SOURCE = ("203.0.113.7", 40000)


def request(method: str = "OPTIONS", *, cseq: str | None = None, to: str = "<sip:100@pbx.test>",
            extra: str = "") -> bytes:
    return (f"{method} sip:pbx.test SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK-1;rport\r\n"
            f"From: <sip:100@pbx.test>;tag=a1\r\nTo: {to}\r\nCall-ID: c1\r\n"
            f"CSeq: {cseq or '1 ' + method}\r\n{extra}Content-Length: 0\r\n\r\n").encode()


def answered(data: bytes):
    result = answer(parse_message(data), SOURCE)
    assert isinstance(result, bytes) and result.count(b"\r\nAllow: REGISTER, OPTIONS\r\n") == 1
    return parse_message(result)


def test_options_is_200_with_our_tag():
    response = answered(request())
    assert (response.status, response.reason) == (200, "OK")
    assert response.headers.get("To") == "<sip:100@pbx.test>;tag=sipline"
    assert response.headers.get("Via").endswith(";rport=40000;received=203.0.113.7")


@pytest.mark.parametrize("method", ["INVITE", "BYE", "SUBSCRIBE", "MESSAGE"])
def test_other_methods_are_405(method):
    response = answered(request(method))
    assert (response.status, response.reason) == (405, "Method Not Allowed")


@pytest.mark.parametrize("cseq", ["1 REGISTER", "x OPTIONS", "1"])
def test_a_cseq_that_is_malformed_or_names_another_method_is_400(cseq):
    response = answered(request("OPTIONS", cseq=cseq))
    assert (response.status, response.reason) == (400, "Bad Request")


def test_register_goes_to_the_registrar_unless_its_cseq_is_wrong():
    assert answer(parse_message(request("REGISTER")), SOURCE) is Handling.REGISTRAR
    assert answered(request("REGISTER", cseq="1 OPTIONS")).status == 400


def test_ack_gets_nothing_and_the_unanswerable_are_dropped():
    assert answer(parse_message(request("ACK")), SOURCE) is Handling.IGNORED
    no_call_id = request().replace(b"Call-ID: c1\r\n", b"")
    assert answer(parse_message(no_call_id), SOURCE) is Handling.DROPPED
    assert answer(parse_message(request(to="<<tag")), SOURCE) is Handling.DROPPED  # our To tag cannot go in
