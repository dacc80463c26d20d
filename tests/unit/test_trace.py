"""A line's SIP trace in memory (sip/trace.py, docs/behaviour.md#line-trace): the bounds, the redaction, and what
the registration core records of its transactions."""

from __future__ import annotations

import timeit

from sipline.sip.parse import StreamParser, parse_message
from sipline.sip.serialise import serialise
from sipline.sip.trace import HIDDEN, MAX_BYTES, Entry, Trace, host_port, redact
from tests.unit.test_registration_core import WALL, Harness, Network, Registrar, line_rows

LOCAL, REMOTE = ("198.51.100.1", 5060), ("192.0.2.10", 5060)

REGISTER = (
    "REGISTER sip:example.net SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK-{branch};rport\r\n"
    "From: <sip:alice@example.net>;tag=f1\r\n"
    "To: <sip:alice@example.net>\r\n"
    "Call-ID: c1\r\n"
    "CSeq: {cseq} REGISTER\r\n"
    "Contact: <sip:alice@198.51.100.1:5060>\r\n"
    "{extra}"
    "Content-Length: 0\r\n\r\n"
)
AUTHORIZATION = (
    'Authorization: Digest username="alice", realm="example.net", nonce="n0nce", uri="sip:example.net", '
    'response="6629fae49393a05397450978507c4ef1", algorithm=MD5, cnonce="0a4f113b", qop=auth, nc=00000001\r\n'
)


def register(branch: str, cseq: int = 1, extra: str = "") -> bytes:
    return REGISTER.format(branch=branch, cseq=cseq, extra=extra).encode()


def entry(at: float, data: bytes, outgoing: bool = True) -> Entry:
    return (at, outgoing, "udp", LOCAL, REMOTE, data)


def texts(trace: Trace, key: int = 1) -> list[bytes]:
    return [recorded[5] for recorded in trace.entries(key)]


def test_the_last_three_transactions_are_kept_with_their_retransmissions_and_responses():
    trace = Trace()
    for index in range(5):
        branch = f"b{index}"
        trace.record(1, branch, entry(index * 10.0, register(branch, index)))
        trace.record(1, branch, entry(index * 10.0 + 0.5, register(branch, index)))  # a retransmission
        trace.record(1, branch, entry(index * 10.0 + 0.6, b"SIP/2.0 401 Unauthorized\r\n\r\n", outgoing=False))
    kept = trace.entries(1)
    assert len(kept) == 9
    assert [recorded[0] for recorded in kept] == [20.0, 20.5, 20.6, 30.0, 30.5, 30.6, 40.0, 40.5, 40.6]
    assert trace.total == sum(len(recorded[5]) for recorded in kept)
    assert [recorded[1] for recorded in kept[:3]] == [True, True, False]
    assert texts(trace)[0] == register("b2", 2)


def test_a_response_joins_its_transaction_even_after_a_newer_one_began():
    trace = Trace()
    trace.record(1, "b1", entry(1.0, register("b1")))
    trace.record(1, "b2", entry(2.0, register("b2", 2)))
    trace.record(1, "b1", entry(3.0, b"SIP/2.0 200 OK\r\n\r\n", outgoing=False))  # late
    trace.record(1, "b3", entry(4.0, register("b3", 3)))
    trace.record(1, "b4", entry(5.0, register("b4", 4)))
    assert [recorded[0] for recorded in trace.entries(1)] == [2.0, 4.0, 5.0]  # b1 went whole, its 200 too


def test_at_most_64_kb_a_line_oldest_first_and_the_newest_message_stays():
    trace = Trace()
    big = register("big", extra="X-Padding: " + "p" * 30_000 + "\r\n")
    for index in range(3):
        trace.record(1, "b1", entry(float(index), big))  # one transaction: its retransmissions fill the budget
    assert [recorded[0] for recorded in trace.entries(1)] == [1.0, 2.0]
    assert sum(len(data) for data in texts(trace)) <= MAX_BYTES
    huge = register("huge", extra="X-Padding: " + "p" * 70_000 + "\r\n")
    trace.record(1, "b2", entry(3.0, huge))
    assert texts(trace) == [huge]  # over the bound alone, but the newest message is never dropped
    trace.record(1, "b3", entry(4.0, register("b3")))
    assert texts(trace) == [register("b3")] and trace.total == len(register("b3"))


def test_past_the_total_the_line_whose_last_transaction_began_longest_ago_goes():
    trace = Trace(max_total=3000)
    message = b"m" * 500
    for key in (1, 2, 3):
        trace.record(key, "a", entry(float(key), message))
        trace.record(key, "a", entry(float(key), message))  # 1000 bytes a line: 3000 in all
    trace.record(1, "b", entry(4.0, message))  # line 1 begins a transaction: 3500 > 3000, line 2's is the oldest
    assert 2 not in trace and 1 in trace and 3 in trace and trace.total == 2500
    trace.record(3, "a", entry(5.0, message * 2))  # 3500 again: line 3's began longest ago, but it is being recorded
    assert 3 in trace and 1 not in trace and trace.total == 2000
    trace.forget(3)
    assert trace.total == 0
    huge = Trace(max_total=100)
    huge.record(1, "a", entry(1.0, message))
    assert 1 in huge  # the newest line stays, whatever its size


def test_lines_are_apart_and_a_forgotten_line_holds_nothing():
    trace = Trace()
    trace.record(1, "b1", entry(1.0, register("b1")))
    trace.record(2, "b1", entry(2.0, register("b1")))
    trace.forget(1)
    trace.forget(9)  # never held anything
    assert 1 not in trace and trace.entries(1) == [] and trace.messages(1) == []
    assert trace.total == len(register("b1"))
    assert texts(trace, 2) == [register("b1")]


def test_redaction_replaces_the_digest_response_and_cnonce_and_nothing_else():
    text = register("b1", 2, AUTHORIZATION).decode()
    redacted = redact(text)
    assert redacted == text.replace('"6629fae49393a05397450978507c4ef1"', f'"{HIDDEN}"').replace(
        '"0a4f113b"', f'"{HIDDEN}"'
    )
    assert 'nonce="n0nce"' in redacted and 'username="alice"' in redacted and 'realm="example.net"' in redacted


def test_redaction_of_other_spellings_and_other_secrets():
    proxy = "proxy-authorization: Digest username=bob,response=abc123 , cnonce = \"x\",nonce=\"n\"\r\n"
    assert redact(proxy) == f'proxy-authorization: Digest username=bob,response={HIDDEN} , cnonce = "{HIDDEN}",nonce="n"\r\n'
    info = 'Authentication-Info: qop=auth, rspauth="6629fae4", cnonce="0a4f113b", nc=00000001\r\n'
    assert redact(info) == f'Authentication-Info: qop=auth, rspauth="{HIDDEN}", cnonce="{HIDDEN}", nc=00000001\r\n'
    assert redact("Authorization: Basic YWxpY2U6c2VjcmV0\r\n") == f"Authorization: Basic {HIDDEN}\r\n"
    folded = 'Authorization: Digest username="bob",\r\n  response="abc123",\r\n\tcnonce="x"\r\nTo: <sip:response=1@a>\r\n'
    assert redact(folded) == (f'Authorization: Digest username="bob",\r\n  response="{HIDDEN}",\r\n\tcnonce="{HIDDEN}"\r\n'
                              "To: <sip:response=1@a>\r\n")  # RFC 3261 §7.3.1 continuation lines, and no further
    assert redact("Contact: <sip:alice:secret@192.0.2.1:5060>\r\n") == f"Contact: <sip:alice:{HIDDEN}@192.0.2.1:5060>\r\n"
    # what only looks like one is left alone: a header that is not an authorization, a port, a nonce
    untouched = (
        "Contact: <sip:alice@192.0.2.1:5060>;response=1\r\n"
        "To: <sip:192.0.2.1:5060>\r\n"
        'WWW-Authenticate: Digest realm="r", nonce="n", qop="auth"\r\n'
    )
    assert redact(untouched) == untouched


def test_messages_are_redacted_and_oldest_first():
    trace = Trace()
    trace.record(7, "b2", entry(2.0, register("b2", 2, AUTHORIZATION)))
    trace.record(7, "b1", entry(1.0, register("b1")))
    first, second = trace.messages(7)
    assert (first.at, first.outgoing, first.transport, first.local, first.remote) == (1.0, True, "udp", "198.51.100.1:5060", "192.0.2.10:5060")
    assert "6629fae4" not in second.text and "0a4f113b" not in second.text and f'response="{HIDDEN}"' in second.text


def test_host_port():
    assert host_port(("192.0.2.1", 5060)) == "192.0.2.1:5060"
    assert host_port(("2001:db8::1", 5061)) == "[2001:db8::1]:5061"


def test_the_core_records_requests_retransmissions_and_responses_of_each_line():
    registrar = Registrar(challenge=True)
    network = Network(registrar, fate=lambda index: "drop" if index == 0 else "deliver")  # the first REGISTER is lost
    harness = Harness(line_rows(2), network)
    harness.run_until(10.0)
    kept = harness.core.trace.entries(2)  # line 2 went first
    shape = [(outgoing, data.split(b"\r\n", 1)[0]) for _, outgoing, _, _, _, data in kept]
    assert shape == [
        (True, b"REGISTER sip:192.0.2.10 SIP/2.0"),
        (True, b"REGISTER sip:192.0.2.10 SIP/2.0"),  # Timer E's retransmission
        (False, b"SIP/2.0 401 Unauthorized"),
        (True, b"REGISTER sip:192.0.2.10 SIP/2.0"),
        (False, b"SIP/2.0 200 OK"),
    ]
    assert kept[0][5] == kept[1][5] and b"Authorization" in kept[3][5]
    assert all(WALL < at < WALL + 10 for at, *_ in kept)
    assert [(transport, local, remote) for _, _, transport, local, remote, _ in kept] == [
        ("udp", ("198.51.100.1", 5060), ("192.0.2.10", 5060))
    ] * 5
    assert all(parse_message(data) for *_, data in kept)
    # line 1 answered the nonce line 2 learnt at once (docs/behaviour.md#reg-digest): REGISTER, 200
    assert [outgoing for _, outgoing, *_ in harness.core.trace.entries(1)] == [True, False]
    harness.core.forget(2, harness.now, unregister=True)
    assert harness.core.trace.entries(2) == []  # and its un-REGISTER is not kept for a line that is gone


def test_recording_costs_about_a_microsecond():
    """docs/behaviour.md#line-trace: the hot path keeps a tuple; printed for the bench notes, bounded loosely."""
    trace = Trace()
    data = register("b1", extra=AUTHORIZATION)
    keys = [f"b{index}" for index in range(4)]
    number = 100_000

    def work() -> None:
        for index in range(number):
            trace.record(index % 1000, keys[index % 4], (1.0, True, "udp", LOCAL, REMOTE, data))

    seconds = min(timeit.repeat(work, number=1, repeat=3)) / number
    print(f"Trace.record: {seconds * 1e9:.0f} ns per message")
    assert seconds < 20e-6


def test_a_parsed_message_keeps_the_bytes_it_came_in():
    datagram = register("b1", extra="x-odd-spelling:  kept as sent\r\n")
    parsed = parse_message(datagram)
    assert parsed.wire is datagram and serialise(parsed) != datagram  # the trace shows the wire, not a re-rendering
    second = register("b2", 2)
    stream = StreamParser()
    first_half, rest = (datagram + second)[:100], (datagram + second)[100:]
    assert stream.feed(first_half) == []
    one, two = stream.feed(rest)
    assert (one.wire, two.wire) == (datagram, second)
