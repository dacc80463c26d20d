"""The shared UDP socket's sending (sip/transports/manager.py): datagrams made in one pass of the
event loop leave together at its end, in order, and none is lost when the transport stops.
Over loopback sockets, with the event loop sipline runs on."""

from __future__ import annotations

import asyncio
import socket

import uvloop

from sipline.sip.resolve import Target
from sipline.sip.transports.manager import UDP_BATCH, SipTransport


def _peer() -> socket.socket:
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(2)
    return peer


def _read(peer: socket.socket, count: int) -> list[bytes]:
    return [peer.recvfrom(65536)[0] for _ in range(count)]


def _failed(error) -> None:
    raise AssertionError(f"a UDP send failed: {error}")


def test_datagrams_of_one_pass_arrive_all_and_in_order():
    peer = _peer()
    target = Target("udp", "127.0.0.1", peer.getsockname()[1], "provider.test")
    count = 3 * UDP_BATCH + 5  # whole batches and a remainder left for the end of the pass

    async def scenario() -> None:
        transport = SipTransport([("127.0.0.1", 0)], allow_private_targets=True)
        await transport.start()
        try:
            for number in range(count):
                transport.send(target, b"REGISTER %d" % number, _failed)
            await asyncio.sleep(0)  # the end of this pass sends the remainder
            received = await asyncio.to_thread(_read, peer, count)
            assert received == [b"REGISTER %d" % number for number in range(count)]
            assert transport.stats["sent"] == count
        finally:
            await transport.stop()

    try:
        uvloop.run(scenario())
    finally:
        peer.close()


def test_what_is_queued_when_the_transport_stops_is_still_sent():
    peer = _peer()
    target = Target("udp", "127.0.0.1", peer.getsockname()[1], "provider.test")

    async def scenario() -> None:
        transport = SipTransport([("127.0.0.1", 0)], allow_private_targets=True)
        await transport.start()
        transport.send(target, b"REGISTER unbind", _failed)  # e.g. the un-REGISTER of a deleted line
        transport.send_keepalive(target)
        await transport.stop()

    try:
        uvloop.run(scenario())
        assert _read(peer, 2) == [b"REGISTER unbind", b"\r\n\r\n"]
    finally:
        peer.close()


def test_a_datagram_the_socket_refuses_costs_only_itself():
    """One bad datagram in a batch is counted and dropped; the others still leave (here an IPv6
    destination on the IPv4 socket, which the event loop refuses with ValueError)."""
    peer = _peer()
    target = Target("udp", "127.0.0.1", peer.getsockname()[1], "provider.test")

    async def scenario() -> SipTransport:
        transport = SipTransport([("127.0.0.1", 0)], allow_private_targets=True)
        await transport.start()
        transport.send(target, b"before", _failed)
        transport._sendto(transport._udp[0].transport, b"refused", ("::1", 5060))
        transport.send(target, b"after", _failed)
        await transport.stop()
        return transport

    try:
        transport = uvloop.run(scenario())
        assert _read(peer, 2) == [b"before", b"after"]
        assert transport.stats["udp_errors"] == 1
    finally:
        peer.close()
