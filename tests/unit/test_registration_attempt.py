"""One registration attempt against scripted answers (docs/behaviour.md#cloud-registration, test vectors docs/behaviour.md#check-auth-rejected, docs/behaviour.md#check-min-expires, docs/behaviour.md#check-srv-failover)."""

from __future__ import annotations

import random

import pytest

from sipline.registration.attempt import RegisterAttempt, Session
from sipline.registration.outcome import OutcomeKind
from sipline.registration.request import Account
from sipline.sip.digest import parse_credentials, verify, ha1
from sipline.sip.headers import NameAddr, parse_cseq
from sipline.sip.message import Request, Response
from sipline.sip.resolve import Target
from sipline.sip.parse import parse_message
from sipline.sip.responses import encode_response

A = Target("udp", "192.0.2.10", 5060, "sip.example.net")
B = Target("udp", "192.0.2.11", 5060, "sip.example.net")
C = Target("tcp", "192.0.2.12", 5060, "sip.example.net")
D = Target("udp", "192.0.2.13", 5060, "sip.example.net")
ACCOUNT = Account.from_fields("sip.example.net", None, "100", None, "secret")
CHALLENGE = 'Digest realm="example.net", nonce="n1", qop="auth", algorithm=MD5'


def attempt_for(account=ACCOUNT, targets=(A,), session=None, **options) -> RegisterAttempt:
    session = session or Session(call_id="call-1", token="l0123456789abcdef")
    return RegisterAttempt(account, session, list(targets), local=lambda transport: ("198.51.100.1", 5060),
                           rng=random.Random(7), **options)


def send(attempt: RegisterAttempt, now: float = 0.0) -> tuple[Target, Request]:
    item = attempt.next_request(now)
    assert item is not None
    return item


def answer(request: Request, status: int, reason: str, *headers: tuple[str, str]) -> Response:
    return parse_message(encode_response(request, status, reason, to_tag="t", headers=list(headers)))


def ok(request: Request, expires: int = 600, *headers: tuple[str, str]) -> Response:
    contact = request.headers.get_all("Contact")[0].split(";expires")[0]
    return answer(request, 200, "OK", ("Contact", f"{contact};expires={expires}"), *headers)


def test_request_shape_a1():
    account = Account.from_fields("sip:sip.example.net:5080;transport=udp", "proxy.example.net", "100", "auth7", "pw")
    _, request = send(attempt_for(account))
    assert request.uri == "sip:sip.example.net:5080;transport=udp"  # stays SERVER with a proxy (§8.1.2)
    headers = request.headers
    assert headers.get("Route") == "<sip:proxy.example.net;lr>"
    assert NameAddr.parse(headers.get("From")).uri == "sip:100@sip.example.net" == NameAddr.parse(headers.get("To")).uri
    assert NameAddr.parse(headers.get("From")).tag and NameAddr.parse(headers.get("To")).tag is None
    assert headers.get("Via").startswith("SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK") and headers.get("Via").endswith(";rport")
    assert headers.get("Contact") == "<sip:l0123456789abcdef@198.51.100.1:5060;transport=udp;line=l0123456789abcdef>"
    assert (headers.get("Expires"), headers.get("Call-ID"), parse_cseq(headers.get("CSeq"))) == ("600", "call-1", (1, "REGISTER"))
    assert "Authorization" not in headers


def test_challenge_answered_with_auth_user_then_ok():
    account = Account.from_fields("sip.example.net", None, "100", "auth7", "secret")
    attempt = attempt_for(account)
    _, first = send(attempt)
    attempt.on_response(answer(first, 401, "Unauthorized", ("WWW-Authenticate", CHALLENGE)), 0.1)
    assert attempt.outcome is None and attempt.waiting
    _, second = send(attempt, 0.2)
    assert parse_cseq(second.headers.get("CSeq"))[0] == 2 and second.headers.get("Call-ID") == "call-1"
    credentials = parse_credentials(second.headers.get("Authorization"))
    assert credentials.username == "auth7" and credentials.uri == "sip:sip.example.net" and credentials.nc == 1
    assert verify(credentials, method="REGISTER", stored_ha1=ha1("MD5", "auth7", "example.net", "secret"))
    attempt.on_response(ok(second, 120), 0.3)
    outcome = attempt.outcome
    assert (outcome.kind, outcome.code, outcome.message, outcome.granted, outcome.sent_at) == (
        OutcomeKind.OK, 200, "", 120, 0.2
    )


def test_c3_second_challenge_with_a_new_nonce_is_auth_fail():
    attempt = attempt_for()
    _, first = send(attempt)
    attempt.on_response(answer(first, 401, "Unauthorized", ("WWW-Authenticate", CHALLENGE)), 0)
    _, second = send(attempt)
    attempt.on_response(answer(second, 401, "Wrong Password", ("WWW-Authenticate", CHALLENGE.replace("n1", "n2"))), 0)
    assert (attempt.outcome.kind, attempt.outcome.code, attempt.outcome.message) == (
        OutcomeKind.AUTH_FAIL, 401, "Wrong Password"
    )


def test_stale_nonce_and_cached_nonce_are_answered():
    session = Session(call_id="c", token="l1")
    attempt = attempt_for(session=session)
    _, first = send(attempt)
    attempt.on_response(answer(first, 401, "Unauthorized", ("WWW-Authenticate", CHALLENGE)), 0)
    _, second = send(attempt)
    attempt.on_response(answer(second, 401, "Unauthorized", ("WWW-Authenticate", CHALLENGE.replace("n1", "n2") + ", stale=true")), 0)
    assert attempt.outcome is None
    _, third = send(attempt)
    attempt.on_response(ok(third), 0)
    assert attempt.outcome.kind is OutcomeKind.OK
    # the next attempt (a refresh) sends credentials up front from the cached nonce, nc + 1 (docs/behaviour.md#reg-digest)
    refresh = attempt_for(session=session)
    _, request = send(refresh)
    assert parse_credentials(request.headers.get("Authorization")).nc == 2
    refresh.on_response(answer(request, 401, "Unauthorized", ("WWW-Authenticate", CHALLENGE.replace("n1", "n3"))), 0)
    assert refresh.outcome is None  # a cached nonce of an earlier attempt refused: answer it
    # what the engine learns from it (whether a nonce shared by another line is taken), and only then
    assert refresh.cached_nonce_refused and not attempt.cached_nonce_refused
    assert attempt.learned_nonce and refresh.learned_nonce


def test_auth_limits_and_malformed_challenges():
    attempt = attempt_for()
    _, request = send(attempt)
    attempt.on_response(answer(request, 401, "Unauthorized"), 0)
    assert attempt.outcome.kind is OutcomeKind.AUTH_FAIL  # no challenge to answer
    attempt = attempt_for()
    _, request = send(attempt)
    attempt.on_response(answer(request, 401, "Unauthorized", ("WWW-Authenticate", 'Digest realm="r", nonce="x", algorithm=SHA-1')), 0)
    assert (attempt.outcome.kind, attempt.outcome.code, attempt.outcome.message) == (
        OutcomeKind.AUTH_UNSUPPORTED, 401, "Unsupported digest algorithm: SHA-1"
    )
    attempt = attempt_for()
    for number in range(4):
        _, request = send(attempt)
        attempt.on_response(answer(request, 401, "Unauthorized",
                                   ("WWW-Authenticate", CHALLENGE.replace("n1", f"s{number}") + ", stale=true")), 0)
    assert attempt.outcome.kind is OutcomeKind.AUTH_FAIL  # more than three challenges


def test_proxy_and_registrar_realms_both_answered():
    attempt = attempt_for()
    _, first = send(attempt)
    attempt.on_response(answer(first, 407, "Proxy Authentication Required",
                               ("Proxy-Authenticate", 'Digest realm="proxy", nonce="p1"')), 0)
    _, second = send(attempt)
    attempt.on_response(answer(second, 401, "Unauthorized", ("WWW-Authenticate", CHALLENGE)), 0)
    _, third = send(attempt)
    assert parse_credentials(third.headers.get("Proxy-Authorization")).realm == "proxy"
    assert parse_credentials(third.headers.get("Authorization")).realm == "example.net"


def test_c6_interval_too_brief_resends_with_min_expires_once():
    session = Session(call_id="c", token="l1")
    attempt = attempt_for(session=session)
    _, first = send(attempt)
    attempt.on_response(answer(first, 423, "Interval Too Brief", ("Min-Expires", "900")), 0)
    _, second = send(attempt)
    assert second.headers.get("Expires") == "900" and session.expires == 900
    attempt.on_response(answer(second, 423, "Interval Too Brief", ("Min-Expires", "1800")), 0)
    assert (attempt.outcome.kind, attempt.outcome.code) == (OutcomeKind.REJECTED, 423)


@pytest.mark.parametrize("minimum", [None, "abc", "600", "300", "86401"])
def test_unusable_min_expires_is_rejected(minimum):
    attempt = attempt_for()
    _, request = send(attempt)
    headers = [("Min-Expires", minimum)] if minimum else []
    attempt.on_response(answer(request, 423, "", *headers), 0)
    assert (attempt.outcome.kind, attempt.outcome.message) == (OutcomeKind.REJECTED, "Interval Too Brief")


def test_c7_failover_on_timeout_transport_error_and_503():
    attempt = attempt_for(targets=(A, B, C, D))
    assert attempt.targets == [A, B, C]  # three targets at most (docs/behaviour.md#reg-targets)
    target, first = send(attempt)
    assert target == A
    attempt.on_failure(OutcomeKind.TIMEOUT, "", 32)
    target, second = send(attempt)
    assert target == B and parse_cseq(second.headers.get("CSeq"))[0] == 2
    assert second.headers.get("Via") != first.headers.get("Via")  # new branch
    attempt.on_response(answer(second, 503, "Service Unavailable", ("Retry-After", "60")), 33)
    assert attempt.penalties == [(B, 60)]
    target, third = send(attempt)
    assert target == C and third.headers.get("Contact").endswith(";transport=tcp;line=l0123456789abcdef>")
    attempt.on_failure(OutcomeKind.TRANSPORT, "Connection refused", 34)
    assert (attempt.outcome.kind, attempt.outcome.code, attempt.outcome.message) == (
        OutcomeKind.TRANSPORT, 503, "Connection refused"
    )


def test_timeout_outcome_and_rejections():
    attempt = attempt_for()
    send(attempt)
    attempt.on_failure(OutcomeKind.TIMEOUT, "", 32)
    assert (attempt.outcome.code, attempt.outcome.message) == (408, "Request Timeout")
    for status, reason, kind in ((403, "Forbidden", OutcomeKind.REJECTED), (404, "", OutcomeKind.REJECTED),
                                 (500, "Oops\x07", OutcomeKind.SERVER), (302, "Moved", OutcomeKind.REJECTED),
                                 (603, "Decline", OutcomeKind.REJECTED)):
        attempt = attempt_for()
        _, request = send(attempt)
        attempt.on_response(answer(request, status, reason), 1)
        assert attempt.outcome.kind is kind and attempt.outcome.code == status
    assert attempt_outcome_message(404, "") == "Not Found"
    assert attempt_outcome_message(500, "Oops\x07") == "Oops"


def attempt_outcome_message(status, reason):
    attempt = attempt_for()
    _, request = send(attempt)
    attempt.on_response(answer(request, status, reason), 1)
    return attempt.outcome.message


def test_granted_expiry_comes_from_our_contact_then_header_then_request():
    attempt = attempt_for()
    _, request = send(attempt)
    ours = request.headers.get("Contact")
    response = answer(request, 200, "OK", ("Contact", "<sip:someone-else@192.0.2.99>;expires=30"),
                      ("Contact", f"{ours};expires=300"), ("Expires", "900"))
    attempt.on_response(response, 0)
    assert attempt.outcome.granted == 300
    # our Contact echoed as sent is read from its parameters alone; anything the full parse would
    # refuse is refused the same way
    for echoed, granted in ((f"{ours};EXPIRES=120;q=0.5", 120), (f"{ours};expires=120 junk", 900),
                            (f"{ours};expires=abc", 900)):
        attempt = attempt_for()
        _, request = send(attempt)
        attempt.on_response(answer(request, 200, "OK", ("Contact", echoed), ("Expires", "900")), 0)
        assert attempt.outcome.granted == granted, echoed
    attempt = attempt_for()
    _, request = send(attempt)
    rewritten = "<sip:l0123456789abcdef@203.0.113.5:6000;line=l0123456789abcdef>;expires=200"  # host/port rewritten
    attempt.on_response(answer(request, 200, "OK", ("Contact", rewritten), ("Expires", "900")), 0)
    assert attempt.outcome.granted == 200
    attempt = attempt_for()
    _, request = send(attempt)
    attempt.on_response(answer(request, 200, "OK", ("Expires", "900")), 0)
    assert attempt.outcome.granted == 900
    attempt = attempt_for()
    _, request = send(attempt)
    attempt.on_response(answer(request, 200, "OK"), 0)
    assert attempt.outcome.granted == 600


def test_zero_expiry():
    attempt = attempt_for()
    _, request = send(attempt)
    attempt.on_response(ok(request, 0), 0)
    assert (attempt.outcome.kind, attempt.outcome.code, attempt.outcome.message) == (
        OutcomeKind.ZERO_EXPIRY, 200, "Registrar granted zero expiry"
    )


def test_observed_address_and_old_contact_retired():
    session = Session(call_id="c", token="l1")
    attempt = attempt_for(session=session)
    _, request = send(attempt)
    response = ok(request)
    response.headers.set("Via", request.headers.get("Via").replace(";rport", ";rport=40000;received=203.0.113.9"))
    attempt.on_response(response, 0)
    assert attempt.outcome.observed == ("203.0.113.9", 40000)
    assert session.registered_contact == "sip:l1@198.51.100.1:5060;transport=udp;line=l1"
    session.contact_address = ("203.0.113.9", 40000)
    _, request = send(attempt_for(session=session))
    assert request.headers.get_all("Contact") == [
        "<sip:l1@203.0.113.9:40000;transport=udp;line=l1>",
        "<sip:l1@198.51.100.1:5060;transport=udp;line=l1>;expires=0",
    ]


def test_a_contact_sent_by_a_worker_that_never_learnt_the_outcome_is_retired_too():
    """docs/behaviour.md#reg-lifecycle, scale-out: the store held C1 as registered and C2 as sent (a worker stopped after sending
    it); the next owner's REGISTER retires both, and its un-REGISTER removes both."""
    c1, c2 = "sip:l1@192.0.2.50:5070;transport=udp;line=l1", "sip:l1@192.0.2.51:5080;transport=udp;line=l1"
    ours = "sip:l1@198.51.100.1:5060;transport=udp;line=l1"
    session = Session(call_id="c", token="l1", registered_contact=c1, sent_contact=c2)
    attempt = attempt_for(session=session)
    _, request = send(attempt)
    assert request.headers.get_all("Contact") == [f"<{ours}>", f"<{c1}>;expires=0", f"<{c2}>;expires=0"]
    assert session.sent_contact == ours and session.registered_contact == c1  # until the 200 comes
    attempt.on_response(answer(request, 401, "Unauthorized", ("WWW-Authenticate", CHALLENGE)), 0)
    _, again = send(attempt)  # the 401 applied nothing: the answer retires them again
    assert again.headers.get_all("Contact") == request.headers.get_all("Contact")
    attempt.on_response(ok(again), 0)
    assert session.registered_contact == session.sent_contact == ours
    _, request = send(attempt_for(session=Session(call_id="c", token="l1", registered_contact=c1, sent_contact=c2),
                                  unregister=True))
    assert request.headers.get_all("Contact") == [f"<{c1}>;expires=0", f"<{c2}>;expires=0"]
    session = Session(call_id="c", token="l1", registered_contact=ours, sent_contact=ours)
    _, request = send(attempt_for(session=session))
    assert request.headers.get_all("Contact") == [f"<{ours}>"]  # a refresh retires nothing


def test_c8_unregister_removes_only_our_contact():
    session = Session(call_id="c", token="l1", cseq=7, registered_contact="sip:l1@198.51.100.1:5060;transport=udp;line=l1")
    attempt = attempt_for(session=session, targets=(A, B), unregister=True)
    assert attempt.targets == [A]  # no failover
    _, request = send(attempt)
    assert request.headers.get("Expires") == "0" and parse_cseq(request.headers.get("CSeq"))[0] == 8
    assert request.headers.get_all("Contact") == ["<sip:l1@198.51.100.1:5060;transport=udp;line=l1>;expires=0"]
    attempt.on_response(answer(request, 401, "Unauthorized", ("WWW-Authenticate", CHALLENGE)), 0)
    _, again = send(attempt)
    attempt.on_response(answer(again, 401, "Unauthorized", ("WWW-Authenticate", CHALLENGE.replace("n1", "n9") + ", stale=true")), 0)
    assert attempt.outcome.kind is OutcomeKind.AUTH_FAIL  # one challenge at most
