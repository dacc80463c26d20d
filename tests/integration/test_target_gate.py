"""The transport's gate (sip/transports/gate.py): whatever sipline originates to an address that is not
globally reachable never leaves, whoever asks; answers and NAT pings go back to where a request came
from. Real sockets on loopback, which the gate refuses unless --allow-private-targets."""

from __future__ import annotations

import asyncio
import socket

import uvloop

from sipline.sip.resolve import Target
from sipline.sip.transports.manager import SipTransport, Source
from sipline.sip.transports.stream import TransportError


def _udp_peer() -> socket.socket:
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(0.5)
    return peer


def _nothing_arrives(peer: socket.socket) -> bool:
    try:
        peer.recv(65536)
    except TimeoutError:
        return True
    return False


def _no_connection(listener: socket.socket) -> bool:
    try:
        listener.accept()[0].close()
    except TimeoutError:
        return True
    return False


def test_transport_refuses_an_originated_send_to_a_non_global_address():
    peer = _udp_peer()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    udp = Target("udp", "127.0.0.1", peer.getsockname()[1], "provider.test")
    tcp = Target("tcp", "127.0.0.1", listener.getsockname()[1], "provider.test")
    tls = Target("tls", "127.0.0.1", listener.getsockname()[1], "provider.test")
    errors: list[TransportError] = []

    async def scenario() -> SipTransport:
        transport = SipTransport([("127.0.0.1", 0)])  # the default: gate on
        await transport.start()
        try:
            for target in (udp, tcp, tls):
                transport.send(target, b"REGISTER sip:provider.test SIP/2.0\r\n\r\n", errors.append)
            transport.send_keepalive(udp)
            await asyncio.sleep(0.3)  # what was queued or connecting would be on its way by now
        finally:
            await transport.stop()
        return transport

    try:
        transport = uvloop.run(scenario())
        assert _nothing_arrives(peer)
        assert _no_connection(listener)
        assert [(error.kind, error.detail) for error in errors] == [
            ("forbidden_target", "Target address 127.0.0.1 is not allowed (not globally reachable)")] * 3
        assert transport.stats["refused_target"] == 4
        assert transport.stats["sent"] == 0
    finally:
        peer.close()
        listener.close()


def test_answers_and_nat_pings_go_back_to_where_a_request_came_from():
    peer = _udp_peer()

    async def scenario() -> SipTransport:
        transport = SipTransport([("127.0.0.1", 0)])
        await transport.start()
        source = Source("udp", "127.0.0.1", peer.getsockname()[1], transport.listen[0])  # the port it got
        try:
            transport.reply(source, b"SIP/2.0 200 OK\r\n\r\n")  # an answer: not originated
            transport.send_to_peer(source, b"OPTIONS sip:pbx SIP/2.0\r\n\r\n")  # docs/behaviour.md#office-nat: to the observed source
            transport.send_to_peer(source._replace(address="224.0.0.1"), b"OPTIONS sip:pbx SIP/2.0\r\n\r\n")
        finally:
            await transport.stop()
        return transport

    try:
        transport = uvloop.run(scenario())
        assert [peer.recv(65536) for _ in range(2)] == [b"SIP/2.0 200 OK\r\n\r\n", b"OPTIONS sip:pbx SIP/2.0\r\n\r\n"]
        assert _nothing_arrives(peer)
        assert transport.stats["refused_target"] == 1  # the multicast "source": never a PBX
    finally:
        peer.close()
