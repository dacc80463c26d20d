"""The SIP sockets of a sipline process: one UDP socket and one TCP listener per listen address,
shared by every line, plus outgoing TCP/TLS flows reused per destination.

Everything that arrives is parsed here; what does not parse is dropped and
counted, never passed on. Handlers get parsed messages and a Source to answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import socket
import ssl
import time
from collections import Counter
from collections.abc import Callable
from functools import lru_cache, partial
from typing import NamedTuple

from sipline.sip.errors import SipError
from sipline.sip.message import Message
from sipline.sip.parse import parse_message
from sipline.sip.resolve import Target
from sipline.sip.transports.accepted import AcceptedFlows, listening_socket
from sipline.sip.transports.admission import FlowLimits
from sipline.sip.transports.gate import TargetGate, refusal_text
from sipline.sip.transports.stream import PONG_TIMEOUT, FlowKey, StreamFlow, TransportError, open_flow

log = logging.getLogger("sipline.sip.transport")

FLOW_KEEPALIVE = 120.0  # RFC 5626 §4.4.1: the longest time between CRLF pings on flows we opened (--flow-keepalive)
PING_EARLIEST = 95 / 120  # RFC 5626 §4.4.1: each ping 95–120 s after the last; a set interval keeps the proportion
FLOW_TICK = 1.0  # seconds between looks at the flows: pings due, pongs overdue, idle peers
# Socket buffers for the shared UDP sockets: thousands of lines answered at once overflow the
# default 208 KiB and come back as retransmissions (the peers rig saw the same with SIPp and Kamailio).
UDP_BUFFER = 4 * 1024 * 1024
# Datagrams made in one pass of the event loop leave together at its end, at most this many back to
# back: a burst of REGISTERs to Kamailio on loopback then costs ~10 % less CPU than sent one by one
# (bench/registration_bench.py), most likely because its workers are woken once per batch.
UDP_BATCH = 32
UDP_KEEPALIVE = b"\r\n\r\n"
PORT_ATTEMPTS = 20  # listen port 0: ports tried before giving up on one free for both UDP and TCP


class Source(NamedTuple):
    """Where a message came from, and how to answer it (one per message: a tuple is the cheapest to make)."""

    transport: str  # "udp", "tcp" or "tls"
    address: str
    port: int
    local: tuple[str, int]  # the listen address it arrived on
    flow: StreamFlow | None = None


class UdpEndpoint(asyncio.DatagramProtocol):
    def __init__(self, manager: SipTransport, local: tuple[str, int]) -> None:
        self.manager = manager
        self.local = local
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            # the kernel caps it at net.core.[rw]mem_max: what it grants is still the most we get
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, option, UDP_BUFFER)

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.manager.received(data, Source("udp", addr[0], addr[1], self.local))

    def error_received(self, exc: Exception) -> None:
        self.manager.stats["udp_errors"] += 1  # ICMP errors carry no request to blame: Timer F decides


@lru_cache(maxsize=4096)
def _ip_version(address: str) -> int:
    return ipaddress.ip_address(address).version


class SipTransport:
    def __init__(
        self,
        listen: list[tuple[str, int]],
        *,
        public: tuple[str, int] | None = None,
        tls_context: ssl.SSLContext | None = None,
        tls_listen: list[tuple[str, int]] | None = None,
        server_tls: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        flow_keepalive: float = FLOW_KEEPALIVE,
        allow_private_targets: bool = False,
        flow_limits: FlowLimits = FlowLimits(),
    ) -> None:
        self.listen = listen
        self.tls_listen = tls_listen or []  # TLS listeners, for PBXes registering over TLS (B)
        self.server_tls = server_tls
        self.public = public
        self.flow_keepalive = flow_keepalive
        self.tls_context = tls_context or ssl.create_default_context()
        self.clock = clock
        self.rng = rng or random.Random()
        self.on_message: Callable[[Message, Source], None] = lambda message, source: None
        self.on_flow_lost: Callable[[FlowKey], None] = lambda key: None
        self.on_peer_gone: Callable[[tuple[str, int]], None] = lambda peer: None
        self.stats: Counter[str] = Counter()
        self.gate = TargetGate(allow_private_targets, self.stats)  # every send we originate passes it
        self._udp: list[UdpEndpoint] = []
        self._outbox: list[tuple[asyncio.DatagramTransport, bytes, tuple[str, int]]] = []
        self._servers: list[asyncio.AbstractServer] = []
        self._flows: dict[FlowKey, StreamFlow] = {}
        self._connecting: dict[FlowKey, list[tuple[bytes, Callable[[TransportError], None]]]] = {}
        self._tasks: set[asyncio.Task] = set()
        self._ticker: asyncio.Task | None = None
        self.accepted = AcceptedFlows(flow_limits, self.stats, clock)  # flows peers open, within limits

    async def start(self) -> None:
        """Binds every listen address (UDP and TCP). Raises: OSError when one is taken."""
        self.listen = [await self._listen(host, port) for host, port in self.listen]
        self.tls_listen = [self._listen_tls(host, port) for host, port in self.tls_listen]
        self._ticker = asyncio.create_task(self._tick_flows())

    async def _listen(self, host: str, port: int) -> tuple[str, int]:
        """UDP and TCP on one port; port 0: one the system gives UDP that TCP can have too. Returns the address."""
        for _ in range(PORT_ATTEMPTS if port == 0 else 1):
            endpoint = await self._listen_udp(host, port)
            local = endpoint.local
            try:
                server = await asyncio.get_running_loop().create_server(partial(self._flow, None, local), *local)
            except OSError:
                endpoint.transport.close()  # type: ignore[union-attr]
                if port != 0:
                    raise
                continue
            self._udp.append(endpoint)
            self._servers.append(server)
            return local
        raise OSError(f"no port free for both UDP and TCP on {host}")

    async def _listen_udp(self, host: str, port: int) -> UdpEndpoint:
        _, endpoint = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: UdpEndpoint(self, (host, port)), local_addr=(host, port)
        )
        endpoint.local = (host, endpoint.transport.get_extra_info("sockname")[1])  # type: ignore[union-attr]
        return endpoint

    def _listen_tls(self, host: str, port: int) -> tuple[str, int]:
        """Admitted before the handshake (accepted.py). Returns the address, with the port port 0 got."""
        sock = listening_socket(host, port)
        local = (host, sock.getsockname()[1])
        self._spawn(self.accepted.serve_tls(sock, lambda: self._flow(None, local, "tls"), self.server_tls, self._spawn))
        return local

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        self._send_outbox()
        for endpoint in self._udp:
            if endpoint.transport is not None:
                endpoint.transport.close()
        for server in self._servers:
            server.close()
        for flow in list(self._flows.values()):
            flow.close()
        for task in list(self._tasks):
            task.cancel()

    def local_address(self, transport: str) -> tuple[str, int]:
        """What goes in Via sent-by and Contact: --sip-public if given, else the first listen address."""
        return self.public or self.listen[0]

    # -- receiving -------------------------------------------------------------------------------

    def received(self, data: bytes, source: Source) -> None:
        self.stats["received"] += 1
        if data in (b"\r\n", b"\r\n\r\n"):
            return  # a UDP keep-alive (RFC 5626 §4.4.2 uses STUN; CRLFs are common and harmless)
        try:
            message = parse_message(data)
        except SipError as error:
            self.stats["dropped_" + ("oversized" if error.status == 513 else "malformed")] += 1
            return
        self._deliver(message, source)

    def _deliver(self, message: Message, source: Source) -> None:
        """Hand a message up; a bug in a handler costs that message, never the socket."""
        try:
            self.on_message(message, source)
        except Exception:
            self.stats["handler_errors"] += 1
            log.exception("a SIP message from %s:%s could not be handled", source.address, source.port)

    def _flow(self, key: FlowKey | None, local: tuple[str, int], incoming: str = "tcp") -> StreamFlow:
        transport = key.transport if key else incoming

        def deliver(message: Message, flow: StreamFlow) -> None:
            self.stats["received"] += 1
            self.accepted.heard(flow)
            self._deliver(message, Source(transport, flow.peer[0], flow.peer[1], local, flow))

        flow = StreamFlow(key, deliver, self._lost, lambda reason: self.stats.update(["dropped_" + reason]), self.clock)
        if key is None:
            flow.opened = self.accepted.track if incoming == "tls" else self.accepted.admit
        return flow

    def _lost(self, flow: StreamFlow) -> None:
        if flow.key is None:
            if self.accepted.release(flow):
                self.on_peer_gone(flow.peer)  # a PBX's connection closed (docs/behaviour.md#office-nat)
        elif self._flows.get(flow.key) is flow:
            del self._flows[flow.key]
            self.on_flow_lost(flow.key)

    # -- sending -----------------------------------------------------------------------------------

    def send(self, target: Target, data: bytes, on_error: Callable[[TransportError], None]) -> None:
        """Send a request; `on_error` hears if the transport cannot carry it (docs/behaviour.md#reg-transactions, docs/behaviour.md#reg-retry), or if the gate
        refuses its target (kind `forbidden_target`)."""
        if not self.gate.permits(target.address):
            on_error(TransportError("forbidden_target", refusal_text(target.address)))
            return
        self.stats["sent"] += 1
        if target.transport == "udp":
            endpoint = self._udp_for(target.address)
            if endpoint is None or endpoint.transport is None:
                on_error(TransportError("transport", "Network is unreachable"))
            else:
                self._sendto(endpoint.transport, data, (target.address, target.port))
            return
        key = FlowKey(target.transport, target.address, target.port, target.host if target.transport == "tls" else "")
        flow = self._flows.get(key)
        if flow is not None and not flow.closed:
            flow.write(data)
            return
        waiting = self._connecting.get(key)
        if waiting is None:
            waiting = self._connecting[key] = []
            self._spawn(self._connect(key))
        waiting.append((data, on_error))

    def send_keepalive(self, target: Target) -> None:
        """docs/behaviour.md#reg-keepalive: CRLFCRLF over UDP keeps a NAT binding open towards the registrar."""
        if not self.gate.permits(target.address):
            return
        endpoint = self._udp_for(target.address)
        if endpoint is not None and endpoint.transport is not None:
            self.stats["udp_keepalives"] += 1
            self._sendto(endpoint.transport, UDP_KEEPALIVE, (target.address, target.port))

    def send_to_peer(self, source: Source, data: bytes) -> None:
        """A request of ours to where a peer's request came from (docs/behaviour.md#office-nat: NAT pings to a PBX's source)."""
        if self.gate.permits_peer(source.address):
            self._to_source(source, data, "sent")

    def reply(self, source: Source, data: bytes) -> None:
        """Answer a request where it came from: the flow, or its UDP source (RFC 3581 §4). Only for
        answers: what sipline originates goes through send(), send_keepalive() or send_to_peer()."""
        self._to_source(source, data, "replied")

    def _to_source(self, source: Source, data: bytes, counted_as: str) -> None:
        if source.flow is not None:
            self.stats[counted_as] += 1
            source.flow.write(data)
            return
        endpoint = self._udp_for(source.address, source.local)
        if endpoint is not None and endpoint.transport is not None:
            self.stats[counted_as] += 1
            self._sendto(endpoint.transport, data, (source.address, source.port))

    def _sendto(self, transport: asyncio.DatagramTransport, data: bytes, address: tuple[str, int]) -> None:
        """Queue a datagram for the end of this pass of the loop (UDP_BATCH); the order is kept."""
        outbox = self._outbox
        outbox.append((transport, data, address))
        if len(outbox) >= UDP_BATCH:
            self._send_outbox()
        elif len(outbox) == 1:
            asyncio.get_running_loop().call_soon(self._send_outbox)

    def _send_outbox(self) -> None:
        outbox, self._outbox = self._outbox, []
        for transport, data, address in outbox:
            if transport.is_closing():
                continue
            try:
                transport.sendto(data, address)
            except (OSError, ValueError):  # one datagram lost, as on the wire: the sender's timers resend it
                self.stats["udp_errors"] += 1

    def _udp_for(self, address: str, local: tuple[str, int] | None = None) -> UdpEndpoint | None:
        """The socket `local` if we listen there (answers leave where requests came in), else the first
        one of the address's IP version."""
        version = _ip_version(address)
        fallback = None
        for endpoint in self._udp:
            if endpoint.local == local:
                return endpoint
            if fallback is None and _ip_version(endpoint.local[0]) == version:
                fallback = endpoint
        return fallback

    async def _connect(self, key: FlowKey) -> None:
        try:
            flow = await open_flow(key, lambda: self._flow(key, self.listen[0]), self.tls_context)
        except TransportError as error:
            for _, on_error in self._connecting.pop(key, []):
                on_error(error)
            return
        flow.next_ping_at = self.clock() + self._ping_interval()
        self._flows[key] = flow
        for data, _ in self._connecting.pop(key, []):
            flow.write(data)

    async def _tick_flows(self) -> None:
        """Ping flows we opened; fail those that stay silent after a ping (RFC 5626 §4.4.1)."""
        while True:
            await asyncio.sleep(FLOW_TICK)
            now = self.clock()
            self.accepted.close_expired(now)
            for flow in list(self._flows.values()):
                self._keep_alive(flow, now)

    def _keep_alive(self, flow: StreamFlow, now: float) -> None:
        """One ping out at a time: the next waits for an answer, so a ping interval shorter than
        PONG_TIMEOUT cannot keep restarting the wait for the pong (RFC 5626 §4.4.1)."""
        if flow.pong_overdue(now, PONG_TIMEOUT):
            log.info("flow to %s:%d silent after a ping; closing", flow.peer[0], flow.peer[1])
            self.stats["flows_failed"] += 1
            flow.close()
        elif flow.ping_sent_at is None and flow.next_ping_at is not None and now >= flow.next_ping_at:
            flow.ping(now)
            self.stats["crlf_pings"] += 1
            flow.next_ping_at = now + self._ping_interval()

    def _ping_interval(self) -> float:
        return self.rng.uniform(PING_EARLIEST * self.flow_keepalive, self.flow_keepalive)

    def _spawn(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
