"""Non-INVITE client transaction timers (RFC 3261 §17.1.2), time driven by hand."""

import pytest

from sipline.sip.message import Headers, Response
from sipline.sip.transaction import ClientTransaction, ResponseReceived, State, TimedOut, Timers, TransportFailed

REQUEST = b"REGISTER sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n"


def run_until(txn: ClientTransaction, end: float) -> list[float]:
    """Fire every deadline up to `end`; return the times at which the request went out."""
    sends = [0.0] * len(txn.datagrams_to_send(0.0))
    while (deadline := txn.next_deadline()) is not None and deadline <= end:
        txn.handle_timer(deadline)
        sends += [deadline] * len(txn.datagrams_to_send(deadline))
    return sends


def test_c2_no_reply_over_udp_is_11_sends_in_32_seconds():
    txn = ClientTransaction(REQUEST, reliable=False, now=0.0)
    sends = run_until(txn, 100.0)
    assert sends == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert isinstance(txn.next_event(), TimedOut) and txn.terminated
    assert txn.next_deadline() is None


def test_reliable_transport_sends_once_and_still_times_out():
    txn = ClientTransaction(REQUEST, reliable=True, now=10.0)
    assert len(txn.datagrams_to_send(10.0)) == 1
    assert txn.next_deadline() == 42.0
    txn.handle_timer(42.0)
    assert txn.datagrams_to_send(42.0) == [] and isinstance(txn.next_event(), TimedOut)


def test_provisional_answer_slows_retransmissions_to_t2():
    txn = ClientTransaction(REQUEST, reliable=False, now=0.0)
    txn.datagrams_to_send(0.0)
    txn.receive(Response(100, "Trying", Headers()), 0.2)
    assert txn.state is State.PROCEEDING and isinstance(txn.next_event(), ResponseReceived)
    txn.handle_timer(0.5)
    assert len(txn.datagrams_to_send(0.5)) == 1
    assert txn.next_deadline() == 4.5  # every T2 from now on


def test_final_answer_completes_then_timer_k_terminates():
    txn = ClientTransaction(REQUEST, reliable=False, now=0.0)
    txn.datagrams_to_send(0.0)
    final = Response(200, "OK", Headers())
    txn.receive(final, 0.1)
    assert txn.state is State.COMPLETED and txn.next_event() == ResponseReceived(final)
    txn.receive(final, 0.2)  # a retransmitted final response is absorbed
    assert txn.next_event() is None
    assert txn.next_deadline() == 5.1  # Timer K = T4
    txn.handle_timer(5.1)
    assert txn.terminated and txn.datagrams_to_send(5.1) == []


def test_reliable_completion_has_no_timer_k_wait():
    txn = ClientTransaction(REQUEST, reliable=True, now=0.0)
    txn.receive(Response(401, "Unauthorized", Headers()), 1.0)
    assert txn.next_deadline() == 1.0
    txn.handle_timer(1.0)
    assert txn.terminated


def test_transport_failure():
    txn = ClientTransaction(REQUEST, reliable=True, now=0.0)
    txn.transport_failed("Connection refused", 0.1)
    assert txn.next_event() == TransportFailed("Connection refused") and txn.terminated
    txn.receive(Response(200, "OK", Headers()), 0.2)  # too late: nothing happens
    assert txn.next_event() is None


def test_timers_for_a_t1_keep_the_rfc_proportions():
    assert Timers.for_t1(0.5) == Timers() == Timers(0.5, 4.0, 5.0)
    assert Timers.for_t1(2.0) == Timers(2.0, 16.0, 20.0)  # a slow link (RFC 3261 §17.1.1.1)


def test_a_shorter_t1_gives_the_same_11_sends_sooner():
    txn = ClientTransaction(REQUEST, reliable=False, now=0.0, timers=Timers.for_t1(0.05))
    sends = run_until(txn, 100.0)
    assert sends == pytest.approx([0.0, 0.05, 0.15, 0.35, 0.75, 1.15, 1.55, 1.95, 2.35, 2.75, 3.15])
    assert isinstance(txn.next_event(), TimedOut) and txn.next_deadline() is None  # Timer F: 64·T1 = 3.2 s
    final = ClientTransaction(REQUEST, reliable=False, now=0.0, timers=Timers.for_t1(0.05))
    final.receive(Response(200, "OK", Headers()), 0.1)
    assert final.next_deadline() == pytest.approx(0.6)  # Timer K = T4 = 10·T1
