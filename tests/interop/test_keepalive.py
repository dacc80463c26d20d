"""Keep-alive and NAT (docs/behaviour.md#reg-keepalive): CRLF pings on TCP, UDP keep-alives behind a NAT, flow recovery."""

from __future__ import annotations

import socket
import threading

from tests.interop.conftest import add_line
from tests.metrics import value
from tests.waiting import wait_until


def keepalives(sipline, kind: str) -> float:
    return value(sipline.base_url, "sipline_sip_keepalives_sent_total", kind=kind)


def silent_flows(sipline) -> float:
    return value(sipline.base_url, "sipline_sip_transport_errors_total", kind="flow_silent")


def test_tcp_flow_is_pinged_and_a_silent_one_is_replaced(kamailio, sipline):
    line = add_line(sipline, f"sip:127.0.0.1:{kamailio.port};transport=tcp", "user0051")
    line.wait("success")
    (first,) = kamailio.bindings("user0051")
    # pings 1.9–2.4 s apart (--flow-keepalive 2.4); Kamailio answers each with CRLF
    wait_until(lambda: keepalives(sipline, "crlf_ping") >= 2, timeout=10)
    assert silent_flows(sipline) == 0
    assert kamailio.bindings("user0051")[0]["CSeq"] == first["CSeq"]  # no re-registration while alive
    kamailio.pause()
    try:
        # the next ping within 2.4 s, then no pong within 10 s (RFC 5626 §4.4.1), each seen within a second
        wait_until(lambda: silent_flows(sipline) >= 1, timeout=20)
        assert line.status()["STATUS_RESULT"] == "success"  # the binding is still valid (docs/behaviour.md#reg-status)
    finally:
        kamailio.resume()
    # re-registered on a new flow (docs/behaviour.md#reg-keepalive)
    wait_until(lambda: int(kamailio.bindings("user0051")[0]["CSeq"]) > int(first["CSeq"]), timeout=15)
    assert len(kamailio.bindings("user0051")) == 1
    assert line.wait("success")


class UdpNat:
    """A NAT in user space: what comes in on `inside` leaves from `outside` towards `server`,
    and answers come back to the last inside sender; the server sees the outside port."""

    def __init__(self, server: tuple[str, int]) -> None:
        self.server = server
        self.inside = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.inside.bind(("127.0.0.1", 0))
        self.outside = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.outside.bind(("127.0.0.1", 0))
        for sock in (self.inside, self.outside):
            sock.settimeout(0.1)
        self.client: tuple[str, int] | None = None
        self.keepalives = 0
        self.running = True
        self.threads = [threading.Thread(target=self._in), threading.Thread(target=self._out)]

    def __enter__(self) -> UdpNat:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.running = False
        for thread in self.threads:
            thread.join()
        self.inside.close()
        self.outside.close()

    def _in(self) -> None:
        while self.running:
            try:
                data, self.client = self.inside.recvfrom(65536)
            except TimeoutError:
                continue
            if data == b"\r\n\r\n":
                self.keepalives += 1
            self.outside.sendto(data, self.server)

    def _out(self) -> None:
        while self.running:
            try:
                data, _ = self.outside.recvfrom(65536)
            except TimeoutError:
                continue
            if self.client is not None:
                self.inside.sendto(data, self.client)


def test_behind_a_nat_the_address_is_learnt_and_kept_open(kamailio, sipline):
    with UdpNat(("127.0.0.1", kamailio.port)) as nat:
        line = add_line(sipline, f"127.0.0.1:{nat.inside.getsockname()[1]}", "user0052")
        line.wait("success")
        outside = nat.outside.getsockname()[1]
        # re-registered once with the address Kamailio saw; the first Contact retired in the same request

        def only_the_outside_address() -> bool:
            addresses = [binding["Address"] for binding in kamailio.bindings("user0052")]
            return len(addresses) == 1 and f"@127.0.0.1:{outside};" in addresses[0]

        wait_until(only_the_outside_address, timeout=10)
        # CRLFCRLF to the registrar every 0.5 s ±20 % (--keepalive-interval 0.5)
        wait_until(lambda: nat.keepalives >= 2, timeout=5)
        assert keepalives(sipline, "udp_crlf") >= 2
        assert line.status()["STATUS_RESULT"] == "success"


def test_sip_public_is_what_via_and_contact_carry(kamailio, start_sipline):
    public_port = 5099  # only written into Via and Contact, on an address nothing listens on
    sipline = start_sipline("--sip-public", f"127.0.0.9:{public_port}")
    add_line(sipline, f"127.0.0.1:{kamailio.port}", "user0053").wait("success")
    (binding,) = kamailio.bindings("user0053")
    assert f"@127.0.0.9:{public_port};transport=udp" in binding["Address"]
