"""The request deadline's rule, time by hand (request_deadline.py)."""

from __future__ import annotations

from sipline.server.request_deadline import VERDICTS, Exchange, RequestDeadline, Stage, Verdict, timeout_response


def test_every_stage_and_exchange_has_a_verdict():
    assert set(VERDICTS) == {(stage, exchange) for stage in Stage for exchange in Exchange}


def test_headers_that_never_complete_are_refused_at_the_deadline():
    deadline = RequestDeadline(10.0, now=100.0)
    deadline.request_begun()
    assert deadline.next_deadline() == 110.0
    assert deadline.handle_timer(109.9, Exchange.NONE) is Verdict.WAIT  # early: nothing yet
    assert deadline.handle_timer(110.0, Exchange.NONE) is Verdict.REFUSE
    assert deadline.next_deadline() is None


def test_a_silent_connection_is_closed_without_an_answer():
    deadline = RequestDeadline(10.0, now=0.0)
    assert deadline.handle_timer(10.0, Exchange.NONE) is Verdict.CLOSE


def test_the_body_gets_its_own_deadline_from_the_end_of_the_headers():
    deadline = RequestDeadline(10.0, now=0.0)
    deadline.request_begun()
    deadline.headers_complete(now=9.0)
    assert deadline.next_deadline() == 19.0
    assert deadline.handle_timer(18.0, Exchange.PREPARING) is Verdict.WAIT
    assert deadline.handle_timer(19.0, Exchange.PREPARING) is Verdict.REFUSE


def test_a_slow_application_is_not_the_clients_fault():
    deadline = RequestDeadline(10.0, now=0.0)
    deadline.request_begun()
    deadline.headers_complete(now=1.0)
    deadline.request_complete()
    assert deadline.handle_timer(30.0, Exchange.PREPARING) is Verdict.WAIT
    assert deadline.next_deadline() is None  # until the response re-arms it
    deadline.response_complete(now=40.0)
    assert deadline.next_deadline() == 50.0
    deadline.request_begun()  # the next request, trickling
    assert deadline.handle_timer(50.0, Exchange.NONE) is Verdict.REFUSE


def test_a_pipelined_request_waits_while_earlier_ones_are_answered():
    deadline = RequestDeadline(10.0, now=0.0)
    deadline.request_begun()
    assert deadline.handle_timer(10.0, Exchange.SENDING) is Verdict.WAIT
    deadline.response_complete(now=20.0)
    assert deadline.handle_timer(30.0, Exchange.NONE) is Verdict.REFUSE


def test_a_body_left_unread_by_an_early_answer_only_closes():
    deadline = RequestDeadline(10.0, now=0.0)
    deadline.request_begun()
    deadline.headers_complete(now=0.5)
    deadline.response_complete(now=0.6)  # e.g. 503 QUERY_LIMIT_EXCEEDED before the body was read
    assert deadline.handle_timer(10.6, Exchange.NONE) is Verdict.CLOSE


def test_the_408_is_a_rest_error_that_closes_the_connection():
    raw = timeout_response(10.0, [(b"date", b"Sun, 06 Dec 2026 03:00:00 GMT")])
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 408 Request Timeout"
    assert b"connection: close" in lines and b"date: Sun, 06 Dec 2026 03:00:00 GMT" in lines
    assert b"content-length: %d" % len(body) in lines
    assert body == b'{"error":"REQUEST_TIMEOUT","error_description":"The request was not complete within 10 s"}'
