"""The registrar's pure rules with a hand-driven clock: nonces (docs/behaviour.md#office-digest), bindings (docs/behaviour.md#office-expiry, docs/behaviour.md#office-bindings, docs/behaviour.md#office-ok), NAT pings (docs/behaviour.md#office-nat),
abuse (docs/behaviour.md#office-abuse), docs/behaviour.md#check-registrar."""

from __future__ import annotations

import pytest

from sipline.registrar import bindings as rules
from sipline.registrar.abuse import AbuseLimits, Guard
from sipline.registrar.nat import BRANCH_PREFIX, PingBook, build_options
from sipline.registrar.nonce import LIFETIME, Addressee, Nonces, NonceState, NonceUse
from sipline.sip.errors import BadRequest, IntervalTooBrief
from sipline.sip.message import Headers, Request
from sipline.sip.serialise import serialise
from sipline.store.records import Binding

KEY = b"k" * 32
NOW = 1_800_000_000.0
PBX = Addressee("192.0.2.7", "sip7", "MD5")


# -- nonces -------------------------------------------------------------------------------------


def test_nonce_lifecycle():
    nonces = Nonces(KEY)
    nonce = nonces.issue("pbx.test", NOW, PBX, b"12345678")
    assert nonces.check(nonce, "pbx.test", NOW + 1, PBX) is NonceState.VALID
    assert nonces.check(nonce, "pbx.test", NOW + LIFETIME + 1, PBX) is NonceState.STALE
    assert nonces.check(nonce, "other.test", NOW, PBX) is NonceState.INVALID  # bound to the realm
    assert nonces.check(nonce[:-2] + "AA", "pbx.test", NOW, PBX) is NonceState.INVALID
    assert nonces.check("not hex !", "pbx.test", NOW, PBX) is NonceState.INVALID
    # another spelling of the same bytes would be a fresh entry in the nonce-count table: a replay
    for respelled in (nonce.upper(), " ".join(nonce[i:i + 2] for i in range(0, 64, 2)), nonce[:62] + " " + nonce[62:]):
        assert nonces.check(respelled, "pbx.test", NOW, PBX) is NonceState.INVALID
    foreign = Nonces(b"x" * 32).issue("pbx.test", NOW, PBX, b"12345678")
    assert nonces.check(foreign, "pbx.test", NOW, PBX) is NonceState.INVALID
    future = nonces.issue("pbx.test", NOW + 10, PBX, b"12345678")
    assert nonces.check(future, "pbx.test", NOW, PBX) is NonceState.STALE  # more than 3 s ahead


def test_a_nonce_is_good_only_from_its_ip_for_its_user_with_the_algorithm_offered():
    nonces = Nonces(KEY)
    nonce = nonces.issue("pbx.test", NOW, PBX, b"12345678")
    assert nonces.check(nonce, "pbx.test", NOW, PBX) is NonceState.VALID
    for other in (Addressee("192.0.2.8", "sip7", "MD5"), Addressee("192.0.2.7", "sip8", "MD5"),
                  Addressee("192.0.2.7", "sip7", "SHA-256"), Addressee("192.0.2.7", "sip7", "MD5-sess"),
                  Addressee("192.0.2.7", "sip7", "SHA-512-256")):
        assert nonces.check(nonce, "pbx.test", NOW, other) is NonceState.INVALID
    sha = nonces.issue("pbx.test", NOW, Addressee("192.0.2.7", "sip7", "SHA-256"), b"12345678")
    assert nonces.check(sha, "pbx.test", NOW, PBX) is NonceState.INVALID  # an MD5 answer to a SHA-256 nonce


def test_a_wrongly_answered_nonce_gives_no_second_guess():
    nonces = Nonces(KEY)
    nonce = nonces.issue("r", NOW, PBX, b"abcdefgh")
    nonces.burn(nonce, NOW)
    assert nonces.use(nonce, 2, NOW) is NonceUse.REPLAYED
    assert nonces.use(nonce, 0xFFFFFFFF, NOW) is NonceUse.REPLAYED
    used = nonces.issue("r", NOW, PBX, b"bcdefghi")
    assert nonces.use(used, 1, NOW, ("b1", "c", "1 REGISTER")) is NonceUse.ACCEPTED
    nonces.burn(used, NOW)
    assert nonces.use(used, 1, NOW, ("b1", "c", "1 REGISTER")) is NonceUse.REPLAYED  # no longer a retransmission


def test_nonces_survive_a_secret_rotation_and_other_processes_check_them():
    issued_at = 3600.0 * 100 - 10  # ten seconds before the secret rotates
    nonce = Nonces(KEY).issue("r", issued_at, PBX, b"abcdefgh")
    assert Nonces(KEY).check(nonce, "r", issued_at + 100, PBX) is NonceState.VALID


def test_nonce_count_replay_c9():
    nonces = Nonces(KEY)
    nonce = nonces.issue("r", NOW, PBX, b"abcdefgh")
    assert nonces.use(nonce, 1, NOW) is NonceUse.ACCEPTED
    assert nonces.use(nonce, 2, NOW) is NonceUse.ACCEPTED
    assert nonces.use(nonce, 2, NOW) is NonceUse.REPLAYED
    assert nonces.use(nonce, 1, NOW) is NonceUse.REPLAYED
    once = nonces.issue("r", NOW, PBX, b"bcdefghi")
    assert nonces.use(once, None, NOW) is NonceUse.ACCEPTED
    assert nonces.use(once, None, NOW) is NonceUse.REPLAYED  # without qop: once only


def test_a_retransmission_of_the_last_accepted_request_is_not_a_replay():
    nonces = Nonces(KEY)
    nonce = nonces.issue("r", NOW, PBX, b"abcdefgh")
    assert nonces.use(nonce, 1, NOW, ("branch1", "call", "1 REGISTER")) is NonceUse.ACCEPTED
    assert nonces.use(nonce, 1, NOW, ("branch1", "call", "1 REGISTER")) is NonceUse.RETRANSMITTED
    assert nonces.use(nonce, 1, NOW, ("branch2", "call", "2 REGISTER")) is NonceUse.REPLAYED
    assert nonces.use(nonce, 2, NOW, ("branch3", "call", "3 REGISTER")) is NonceUse.ACCEPTED
    assert nonces.use(nonce, 1, NOW, ("branch1", "call", "1 REGISTER")) is NonceUse.REPLAYED  # not the last


# -- bindings -------------------------------------------------------------------------------------

LIMITS = rules.Limits()


def register(*contacts: str, expires: str | None = "600", call_id: str = "c1", cseq: int = 1,
             source: tuple[str, int] = ("192.0.2.7", 5060), extra: list[tuple[str, str]] | None = None):
    headers = [("Via", "SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK1"), ("From", "<sip:sip7@pbx.test>;tag=1"),
               ("To", "<sip:sip7@pbx.test>"), ("Call-ID", call_id), ("CSeq", f"{cseq} REGISTER")]
    headers += [("Contact", contact) for contact in contacts]
    if expires is not None:
        headers.append(("Expires", expires))
    request = Request("REGISTER", "sip:pbx.test", Headers(headers + (extra or [])))
    return rules.read_register(request, transport="udp", source=source, local=("192.0.2.1", 5060), algorithm="MD5")


def apply(current, reg, now=NOW, limits=LIMITS):
    return rules.apply(current, reg, now, limits)


def test_new_binding_and_200_contents():
    outcome = apply([], register("<sip:pbx@192.0.2.7>"))
    (binding,) = outcome.bindings
    assert (binding.contact, binding.granted, binding.expires_at, binding.nat) == ("sip:pbx@192.0.2.7", 600, NOW + 600, False)
    assert rules.contact_lines(outcome, NOW) == ["<sip:pbx@192.0.2.7>;expires=600"]
    later = apply(outcome.bindings, register("<sip:other@192.0.2.7:5070>", call_id="c2"), NOW + 100)
    assert rules.contact_lines(later, NOW + 100) == ["<sip:pbx@192.0.2.7>;expires=500", "<sip:other@192.0.2.7:5070>;expires=600"]


@pytest.mark.parametrize(
    ("contact_expires", "header", "granted"),
    [(None, None, 3600), (None, "60", 60), (None, "7200", 3600), ("120", "600", 120), (None, "3600", 3600)],
)
def test_c9_expiry_bounds(contact_expires, header, granted):
    contact = "<sip:pbx@192.0.2.7>" + (f";expires={contact_expires}" if contact_expires else "")
    assert apply([], register(contact, expires=header)).bindings[0].granted == granted


def test_c9_too_brief_is_423_and_stores_nothing():
    with pytest.raises(IntervalTooBrief) as caught:
        apply([], register("<sip:pbx@192.0.2.7>", expires="30"))
    assert caught.value.min_expires == 60
    assert rules.granted(30, rules.Limits(min_expires=4000, max_expires=7200)) == 4000  # minimums ≥ 1 h clamp


@pytest.mark.parametrize("bad", ["abc", "-1", "4294967296", "1.5"])
def test_malformed_expiry_is_400(bad):
    with pytest.raises(BadRequest):
        register("<sip:pbx@192.0.2.7>", expires=bad)
    with pytest.raises(BadRequest):
        register(f"<sip:pbx@192.0.2.7>;expires={bad}")


def test_zero_removes_and_wildcard_rules():
    first = apply([], register("<sip:a@192.0.2.7>", "<sip:b@192.0.2.7>")).bindings
    assert len(first) == 2
    assert [b.contact for b in apply(first, register("<sip:a@192.0.2.7>;expires=0", call_id="c9")).bindings] == ["sip:b@192.0.2.7"]
    assert apply(first, register("*", expires="0", call_id="c9")).bindings == []
    # a binding of the same Call-ID with a CSeq at least the request's survives the wildcard (docs/behaviour.md#office-bindings)
    assert len(apply(first, register("*", expires="0", call_id="c1", cseq=1)).bindings) == 2
    for contacts, expires in ((("*",), "600"), (("*", "<sip:x@h>"), "0"), (("*",), None)):
        with pytest.raises(BadRequest):
            register(*contacts, expires=expires)


def test_call_id_and_cseq_ordering():
    bindings = apply([], register("<sip:a@192.0.2.7>", cseq=5)).bindings
    again = apply(bindings, register("<sip:a@192.0.2.7>", cseq=5), NOW + 10)
    assert not again.changed and again.bindings == bindings  # a retransmission
    with pytest.raises(rules.OutOfOrder):
        apply(bindings, register("<sip:a@192.0.2.7>", cseq=4))
    newer = apply(bindings, register("<sip:a@192.0.2.7>", expires="900", cseq=6), NOW + 10)
    assert newer.bindings[0].granted == 900 and newer.bindings[0].first_registered_at == NOW
    replaced = apply(bindings, register("<sip:a@192.0.2.7>", call_id="other", cseq=1), NOW + 10)
    assert replaced.bindings[0].call_id == "other"  # a new Call-ID replaces, whatever its CSeq


def test_contact_equality_is_uri_comparison():
    bindings = apply([], register("<sip:a@Example.test;transport=udp>")).bindings
    updated = apply(bindings, register("<sip:a@example.test;transport=UDP>", call_id="c2"))
    assert len(updated.bindings) == 1


def test_at_most_three_bindings_evicting_the_same_source_else_the_oldest():
    bindings = []
    for number, port in enumerate((5061, 5062, 5063)):
        bindings = apply(bindings, register(f"<sip:d{number}@192.0.2.7:{port}>", call_id=f"c{number}",
                                            source=("192.0.2.7", port)), NOW + number).bindings
    fourth = apply(bindings, register("<sip:d3@192.0.2.7:5099>", call_id="c3", source=("192.0.2.7", 5062)), NOW + 5)
    assert [b.contact for b in fourth.bindings] == ["sip:d0@192.0.2.7:5061", "sip:d2@192.0.2.7:5063", "sip:d3@192.0.2.7:5099"]
    fifth = apply(fourth.bindings, register("<sip:d4@198.51.100.1>", call_id="c4", source=("198.51.100.1", 5060)), NOW + 6)
    assert "sip:d0@192.0.2.7:5061" not in [b.contact for b in fifth.bindings]  # expiring first
    assert len(fifth.bindings) == 3


def test_path_needs_supported_and_is_kept():
    with pytest.raises(rules.PathUnsupported):
        register("<sip:a@192.0.2.7>", extra=[("Path", "<sip:edge.test;lr>")])
    reg = register("<sip:a@192.0.2.7>", extra=[("Path", "<sip:edge.test;lr>"), ("Supported", "path")])
    assert apply([], reg).bindings[0].path == ("<sip:edge.test;lr>",)


def test_instance_reg_id_nat_and_long_contacts():
    reg = register('<sip:a@10.0.0.5:5080>;+sip.instance="<urn:uuid:1>";reg-id=1')
    (binding,) = apply([], reg).bindings
    assert (binding.instance, binding.reg_id, binding.nat) == ('"<urn:uuid:1>"', 1, True)
    with pytest.raises(BadRequest):
        register("<sip:" + "a" * 600 + "@h>")


def test_expired_bindings_are_not_kept():
    bindings = apply([], register("<sip:a@192.0.2.7>", expires="60")).bindings
    assert apply(bindings, register(expires=None, call_id="q"), NOW + 61).bindings == []


# -- abuse ------------------------------------------------------------------------------------------


def test_c9_five_failures_block_the_sixth_request():
    guard = Guard()
    for attempt in range(5):
        assert guard.admit("203.0.113.5", NOW + attempt)
        blocked = guard.failed("203.0.113.5", "sip7", NOW + attempt)
    assert blocked and not guard.admit("203.0.113.5", NOW + 6)
    assert guard.admit("198.51.100.1", NOW + 6)  # others are not affected
    assert not guard.admit("203.0.113.5", NOW + 4 + 1799)
    assert guard.admit("203.0.113.5", NOW + 4 + 1801)


def test_repeated_blocks_double_up_to_a_day():
    guard = Guard()
    now = NOW
    lengths = []
    for _ in range(8):
        for _ in range(5):
            guard.failed("203.0.113.5", None, now)
        lengths.append(guard.blocked_until("203.0.113.5") - now)
        now = guard.blocked_until("203.0.113.5") + 1
    assert lengths[:3] == [1800, 3600, 7200] and max(lengths) <= 86400


def test_floods_are_dropped_for_five_minutes():
    guard = Guard(AbuseLimits(flood_requests=20))
    assert all(guard.admit("203.0.113.9", NOW + n * 0.01) for n in range(20))
    assert not guard.admit("203.0.113.9", NOW + 0.5)
    assert not guard.admit("203.0.113.9", NOW + 299)
    assert guard.admit("203.0.113.9", NOW + 301)
    assert all(Guard(AbuseLimits(flood_requests=0)).admit("x", NOW) for _ in range(1000))


def test_a_guessed_user_gets_one_challenge_per_10_seconds_per_ip_but_not_its_own_pbx():
    guard = Guard(AbuseLimits(auth_failures=0))
    for number in range(20):
        guard.failed(f"198.51.100.{number}", "sip7", NOW)
    assert guard.may_challenge("203.0.113.1", "sip7", NOW, holds_binding=False)
    assert not guard.may_challenge("203.0.113.1", "sip7", NOW + 5, holds_binding=False)
    assert guard.may_challenge("203.0.113.1", "sip7", NOW + 11, holds_binding=False)
    assert guard.may_challenge("192.0.2.7", "sip7", NOW + 11.5, holds_binding=True)
    assert guard.may_challenge("192.0.2.7", "sip8", NOW, holds_binding=False)


def test_a_guarded_user_is_checked_only_against_the_nonce_of_the_ips_current_slot():
    guard = Guard(AbuseLimits(auth_failures=0))
    assert guard.may_verify("203.0.113.1", "sip7", NOW - 1, NOW, holds_binding=False)  # not guarded yet
    for number in range(20):
        guard.failed(f"198.51.100.{number}", "sip7", NOW)
    assert not guard.may_verify("203.0.113.1", "sip7", NOW - 1, NOW, holds_binding=False)  # no slot: no check
    assert guard.may_challenge("203.0.113.1", "sip7", NOW + 1, holds_binding=False)
    assert guard.may_verify("203.0.113.1", "sip7", NOW + 1, NOW + 1.1, holds_binding=False)
    assert not guard.may_verify("203.0.113.1", "sip7", NOW - 1, NOW + 1.1, holds_binding=False)  # an older nonce
    assert not guard.may_verify("203.0.113.2", "sip7", NOW + 1, NOW + 1.1, holds_binding=False)  # another IP's slot
    assert guard.may_verify("192.0.2.7", "sip7", NOW - 100, NOW + 1, holds_binding=True)
    assert not guard.guarded("sip7", NOW + 601)  # the failures are older than the window


def test_the_guard_tables_stay_bounded_and_forget_what_lapsed():
    limits = AbuseLimits(auth_failures=3, table_size=1000)
    guard = Guard(limits)
    for number in range(50_000):  # distinct IPs and usernames, as from a spoofing or guessing sender
        now = NOW + number * 0.001
        ip = f"10.{number >> 16 & 255}.{number >> 8 & 255}.{number & 255}"
        guard.admit(ip, now)
        guard.failed(ip, f"user-{number}", now)
        guard.may_challenge(ip, f"user-{number}", now, holds_binding=False)
    assert len(guard.sources) <= 1000 and len(guard.users) <= 1000 and len(guard.slots) <= 1000
    later = NOW + 50 + limits.failure_window + 1
    for number in range(20):  # each call forgets a few lapsed entries: quiet tables drain
        guard.admit(f"192.0.2.{number}", later + number)
        guard.failed(f"192.0.2.{number}", f"late-{number}", later + number)
    assert len(guard.sources) <= 1000 - 20 * 3 + 20 and len(guard.users) <= 1000 - 20 * 3 + 20


def test_a_blocked_ip_is_remembered_while_it_keeps_sending():
    guard = Guard(AbuseLimits(auth_failures=1, table_size=10))
    guard.failed("203.0.113.5", None, NOW)
    for number in range(100):
        assert not guard.admit("203.0.113.5", NOW + number)  # touched: never the oldest
        guard.admit(f"198.51.100.{number}", NOW + number)


# -- docs/behaviour.md#office-nat: NAT pings -------------------------------------------------------------------------------

def test_three_missed_pings_in_a_row_mark_a_binding_unreachable_once():
    book, key = PingBook(), (1, "sip:a@10.0.0.5")
    for round_ in range(3):
        assert book.new_round({key: True}) == []
        book.sent(f"b{round_}", key)
    assert book.new_round({key: True}) == [key]  # the third miss
    book.sent("b3", key)
    assert book.new_round({key: False}) == []  # stored as unreachable now: not again


def test_an_answer_resets_the_misses_and_brings_a_binding_back():
    book, key = PingBook(), (1, "sip:a@10.0.0.5")
    for round_ in range(2):
        book.new_round({key: True})
        book.sent(f"b{round_}", key)
    assert book.answered("b1") is None  # answered while reachable: nothing to write
    for round_ in range(2, 5):
        assert book.new_round({key: True}) == []
        book.sent(f"b{round_}", key)
    assert book.new_round({key: True}) == [key]
    book.sent("late", key)
    assert book.answered("b4") is None  # a ping of a closed round: unknown
    assert book.answered("late") == key  # it was down: mark it reachable again
    assert book.answered("late") is None


def test_gone_bindings_are_forgotten_and_reregistered_ones_start_afresh():
    book, key = PingBook(), (1, "sip:a@10.0.0.5")
    book.new_round({key: True})
    book.sent("b0", key)
    book.new_round({})  # the binding expired
    book.new_round({key: True})
    for round_ in range(2):
        book.sent(f"c{round_}", key)
        assert book.new_round({key: True}) == []


def test_an_options_ping_goes_to_the_contact_from_the_socket_the_binding_came_in_on():
    binding = Binding(contact="sip:sip1@192.168.1.10:5060", expires_at=0, granted=60, call_id="c", cseq=1,
                      transport="udp", source=("203.0.113.5", 40000), local=("::1", 5070))
    text = serialise(build_options(binding, "pbx.example", BRANCH_PREFIX + "abc")).decode()
    assert text.startswith("OPTIONS sip:sip1@192.168.1.10:5060 SIP/2.0\r\n")
    assert f"Via: SIP/2.0/UDP [::1]:5070;branch={BRANCH_PREFIX}abc;rport\r\n" in text
    assert "\r\nTo: <sip:sip1@192.168.1.10:5060>\r\n" in text and "\r\nCSeq: 1 OPTIONS\r\n" in text
