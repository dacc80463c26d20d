"""Where REGISTERs go: RFC 3263 via a DNS server on loopback, failover, and the private-network guard."""

from __future__ import annotations

import socket
import time

import pytest

from sipline.server.tls import ensure_self_signed
from tests.interop.conftest import SHORT_EXPIRES, add_line
from tests.metrics import by_label, families, value
from tests.peers.kamailio import Kamailio
from tests.waiting import wait_until


@pytest.fixture
def silent_udp():
    """A UDP port that receives and never answers (a dead first target)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        yield sock


def drain(sock: socket.socket) -> int:
    count = 0
    while True:
        try:
            sock.recv(65536)
        except BlockingIOError:
            return count
        count += 1


def test_c7_srv_failover_reaches_the_second_target_and_sticks(loopback_dns, kamailio, silent_udp, sipline):
    dead_port = silent_udp.getsockname()[1]
    loopback_dns.set("_sip._udp.pbx-c7.test", "SRV", [(10, 0, dead_port, "a.pbx-c7.test"),
                                                     (20, 0, kamailio.port, "b.pbx-c7.test")])
    loopback_dns.set("a.pbx-c7.test", "A", ["127.0.0.1"])
    loopback_dns.set("b.pbx-c7.test", "A", ["127.0.0.1"])
    line = add_line(sipline, "pbx-c7.test", "user0021")
    line.wait("success")
    assert drain(silent_udp) >= 1  # the first target was tried, and timed out within the attempt
    (binding,) = kamailio.bindings("user0021")
    line.update(TITLE="touch")  # a TITLE change sends nothing, to either target
    time.sleep(1.0)
    assert drain(silent_udp) == 0 and kamailio.bindings("user0021")[0]["CSeq"] == binding["CSeq"]


def test_refreshes_stay_on_the_target_that_answered(loopback_dns, kamailio_short, silent_udp, sipline):
    kamailio = kamailio_short  # grants SHORT_EXPIRES: a refresh after 5.4–6 s
    dead_port = silent_udp.getsockname()[1]
    loopback_dns.set("_sip._udp.pbx-sticky.test", "SRV", [(10, 0, dead_port, "a.pbx-sticky.test"),
                                                         (20, 0, kamailio.port, "b.pbx-sticky.test")])
    loopback_dns.set("a.pbx-sticky.test", "A", ["127.0.0.1"])
    loopback_dns.set("b.pbx-sticky.test", "A", ["127.0.0.1"])
    line = add_line(sipline, "pbx-sticky.test", "user0022")
    line.wait("success")
    drain(silent_udp)
    cseq = int(kamailio.bindings("user0022")[0]["CSeq"])
    wait_until(lambda: int(kamailio.bindings("user0022")[0]["CSeq"]) > cseq, SHORT_EXPIRES + 3, interval=0.2)  # refreshed…
    assert drain(silent_udp) == 0  # …without going back to the dead target


def test_c1_unresolvable_server_is_502_within_seconds(sipline):
    started = time.monotonic()
    status = add_line(sipline, "sip.nowhere.invalid", "100", "x").wait("error", timeout=10)
    assert (status["STATUS_CODE"], status["ERROR_MESSAGE"]) == (502, "Unable to resolve hostname")
    assert time.monotonic() - started < 5 + 1  # first attempt within the new-line spread (0.1 s here), then at once


def test_naptr_to_tcp(loopback_dns, kamailio, sipline):
    loopback_dns.set("pbx-naptr.test", "NAPTR", [(10, 10, "s", "SIP+D2T", "", "_sip._tcp.pbx-naptr.test")])
    loopback_dns.set("_sip._tcp.pbx-naptr.test", "SRV", [(10, 0, kamailio.port, "host.pbx-naptr.test")])
    loopback_dns.set("host.pbx-naptr.test", "A", ["127.0.0.1"])
    add_line(sipline, "pbx-naptr.test", "user0023").wait("success")
    assert kamailio.bindings("user0023")[0]["Socket"].startswith("tcp:")


def test_private_targets_are_refused_by_default(kamailio, start_sipline, loopback_dns):
    sipline = start_sipline(private=False)
    loopback_dns.set("inside.test", "A", ["10.1.2.3"])
    for server_address, shown in ((f"127.0.0.1:{kamailio.port}", "127.0.0.1"), ("inside.test:5060", "10.1.2.3")):
        status = add_line(sipline, server_address, "user0024", TITLE=server_address).wait("error")
        assert status["STATUS_CODE"] == 403
        assert status["ERROR_MESSAGE"] == f"Target address {shown} is not allowed (not globally reachable)"
    assert kamailio.bindings("user0024") == []


def registered_then_restarted_without_private_targets(start_sipline, server: str):
    """A line registered at `server`, and a restarted sipline that refuses non-global targets and
    keeps the line's stored `success` (its first REGISTER spread far away): its binding may exist,
    so deleting it or changing its SERVER un-REGISTERs, through a new lookup of `server`."""
    first = start_sipline()
    line = add_line(first, server, "user0025")
    line.wait("success")
    first.stop()
    again = start_sipline("--startup-spread", "86400", private=False, fast=False)
    line.webhook = f"{again.base_url}/rest/{line.webhook.split('/rest/')[1]}"
    assert line.status()["STATUS_RESULT"] == "success"
    wait_until(lambda: holds_a_line(again), 30, interval=0.2)  # PostgreSQL: the lease moves over first
    return again, line


def holds_a_line(process) -> bool:
    """Whether `process` works the line: on SQLite it works every line; on PostgreSQL those it holds a lease on."""
    held = families(process.base_url)["sipline_leases_held"].samples
    return not held or held[0].value >= 1


def point_srv_at(loopback_dns, name: str, port: int) -> None:
    loopback_dns.set(f"_sip._udp.{name}", "SRV", [(10, 0, port, f"host.{name}")])
    loopback_dns.set(f"host.{name}", "A", ["127.0.0.1"])


def refused_targets(process) -> int:
    return int(value(process.base_url, "sipline_sip_messages_dropped_total", reason="refused_target"))


def nothing_reaches(trap: socket.socket, process, refusals: int) -> bool:
    """Waits until `process` refused `refusals` targets, then a little longer; True if `trap` got nothing."""
    reached = False

    def refused_or_reached() -> bool:
        nonlocal reached
        reached = reached or drain(trap) > 0
        return reached or refused_targets(process) >= refusals

    wait_until(refused_or_reached, 10)
    if reached:
        return False
    time.sleep(1.0)
    return drain(trap) == 0


def test_unregister_on_delete_to_a_private_target_is_refused(kamailio, loopback_dns, start_sipline, silent_udp):
    point_srv_at(loopback_dns, "unreg-delete.test", kamailio.port)
    sipline, line = registered_then_restarted_without_private_targets(start_sipline, "unreg-delete.test")
    point_srv_at(loopback_dns, "unreg-delete.test", silent_udp.getsockname()[1])  # the DNS now leads inside
    line.delete()
    assert nothing_reaches(silent_udp, sipline, 1)


def test_unregister_on_delete_to_a_private_literal_server_is_refused(kamailio, start_sipline):
    sipline, line = registered_then_restarted_without_private_targets(start_sipline, f"127.0.0.1:{kamailio.port}")
    line.delete()
    wait_until(lambda: refused_targets(sipline) >= 1, 10)  # refused by the transport itself
    time.sleep(1.0)
    assert refused_targets(sipline) == 1
    assert len(kamailio.bindings("user0025")) == 1  # no un-REGISTER reached the registrar


def test_unregister_on_server_change_to_a_private_target_is_refused(kamailio, loopback_dns, start_sipline,
                                                                     silent_udp):
    point_srv_at(loopback_dns, "unreg-update.test", kamailio.port)
    sipline, line = registered_then_restarted_without_private_targets(start_sipline, "unreg-update.test")
    point_srv_at(loopback_dns, "unreg-update.test", silent_udp.getsockname()[1])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as new_trap:
        new_trap.bind(("127.0.0.1", 0))
        new_trap.setblocking(False)
        point_srv_at(loopback_dns, "unreg-moved.test", new_trap.getsockname()[1])
        line.update(SERVER="unreg-moved.test")
        status = line.wait("error")
        assert (status["STATUS_CODE"], status["ERROR_MESSAGE"]) == (
            403, "Target address 127.0.0.1 is not allowed (not globally reachable)")
        assert nothing_reaches(silent_udp, sipline, 2)  # the old SERVER's un-REGISTER, the new one's REGISTER
        assert drain(new_trap) == 0


def test_tls_with_certificate_verification(tmp_path, loopback_dns, start_sipline):
    ca, certificate, key = ensure_self_signed(tmp_path / "pki", "127.0.0.1")  # names: localhost, 127.0.0.1
    with Kamailio(tmp_path / "kamailio-tls", tls=(certificate, key)) as registrar:
        tls_port = registrar.tls_port
        sipline = start_sipline(env={"SSL_CERT_FILE": str(ca)})
        good = add_line(sipline, f"sips:localhost:{tls_port}", "user0031")
        assert good.wait("success")["STATUS_CODE"] == 200
        assert registrar.bindings("user0031")[0]["Socket"].startswith("tls:")
        loopback_dns.set("registrar-tls.test", "A", ["127.0.0.1"])
        wrong_name = add_line(sipline, f"sips:registrar-tls.test:{tls_port}", "user0032")
        status = wrong_name.wait("error")
        assert status["STATUS_CODE"] == 503 and status["ERROR_MESSAGE"].startswith("TLS certificate invalid: ")
        assert registrar.bindings("user0032") == []


def test_metrics(sipline):
    add_line(sipline, "sip.nowhere.invalid", "100", "x").wait("error")
    assert by_label(sipline.base_url, "sipline_registrations", "status") == {
        "wait": 0, "in_progress": 0, "success": 0, "error": 1}
