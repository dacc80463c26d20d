"""Admission of TCP/TLS flows peers open (sip/transports/admission.py): caps, deadlines, the log throttle."""

import resource

from sipline.server.sip_side import flow_limits
from sipline.server.settings import Settings
from sipline.sip.transports.admission import FlowBook, FlowLimits, FlowTimes, Throttle, fd_budget, source_of


def test_a_source_over_its_cap_is_refused_and_others_are_not():
    book = FlowBook(FlowLimits(per_source=2, total=10))
    assert book.admit("192.0.2.1") is None and book.admit("192.0.2.1") is None
    assert book.admit("192.0.2.1") == "per_source"
    assert book.admit("192.0.2.2") is None
    book.release("192.0.2.1")
    assert book.admit("192.0.2.1") is None
    assert book.total == 3


def test_the_total_cap_holds_across_sources():
    book = FlowBook(FlowLimits(per_source=0, total=3))
    assert [book.admit(f"192.0.2.{n}") for n in range(4)] == [None, None, None, "total"]
    book.release("192.0.2.0")
    assert book.admit("192.0.2.9") is None


def test_no_per_source_cap_when_it_is_zero():
    book = FlowBook(FlowLimits(per_source=0, total=100))
    assert all(book.admit("192.0.2.1") is None for _ in range(100))


def test_an_ipv6_source_is_its_slash_64():
    assert source_of("2001:db8:1:2:aaaa::1") == source_of("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert source_of("2001:db8:1:3::1") != source_of("2001:db8:1:2::1")
    assert source_of("::ffff:192.0.2.7") == "192.0.2.7"
    assert source_of("192.0.2.7") == "192.0.2.7"
    book = FlowBook(FlowLimits(per_source=1, total=10))
    assert book.admit("2001:db8::1") is None and book.admit("2001:db8::2") == "per_source"


def test_a_flow_without_a_message_closes_after_the_idle_timeout():
    limits = FlowLimits(idle_timeout=20.0, lifetime=120.0)
    times = FlowTimes(opened_at=100.0)
    assert times.deadline(limits) == 120.0


def test_a_flow_that_carried_a_message_closes_after_the_lifetime_without_one():
    limits = FlowLimits(idle_timeout=20.0, lifetime=120.0)
    times = FlowTimes(opened_at=100.0, last_message_at=110.0)
    assert times.deadline(limits) == 230.0
    times.last_message_at = 200.0
    assert times.deadline(limits) == 320.0


def test_a_registered_flow_lives_past_its_binding_by_the_lifetime():
    limits = FlowLimits(idle_timeout=20.0, lifetime=120.0)
    times = FlowTimes(opened_at=100.0, last_message_at=110.0, registered_until=110.0 + 3600)
    assert times.deadline(limits) == 3710.0 + 120.0
    times.registered_until = 0.0  # unregistered: back to the lifetime
    assert times.deadline(limits) == 230.0


def test_the_fd_budget_keeps_a_reserve():
    assert fd_budget(1024) == 768
    assert fd_budget(524288) == 524032
    assert fd_budget(256) == 128  # half, when the reserve would take everything
    assert fd_budget(1) == 1


def test_the_throttle_reports_at_most_once_per_interval_with_the_count():
    throttle = Throttle(60.0)
    assert throttle.note(0.0) == 1
    assert [throttle.note(t) for t in (1.0, 2.0, 59.0)] == [None, None, None]
    assert throttle.note(60.0) == 4
    assert throttle.note(61.0) is None


def test_the_total_of_the_settings_is_lowered_to_the_fd_budget():
    settings = Settings(sip_tcp_per_ip=8, sip_tcp_max_flows=2048, sip_tcp_idle_timeout=5.0, sip_tcp_lifetime=60.0)
    assert flow_limits(settings, 1024) == FlowLimits(per_source=8, total=768, idle_timeout=5.0, lifetime=60.0)
    assert flow_limits(settings, 65536).total == 2048
    assert flow_limits(settings, resource.RLIM_INFINITY).total == 2048
