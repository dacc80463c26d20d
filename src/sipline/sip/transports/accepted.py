"""The TCP/TLS flows peers open to us, kept within admission.py's limits.

A TCP flow is booked in when it is accepted (`admit`, from the flow's
connection_made) and closed at once if over a cap. A TLS listener accepts on its
own socket so that the same happens before the handshake, which then has the
idle timeout to end: a handshake nobody finishes must not hold a descriptor the
caps never counted. Once a tick, flows past their deadline are closed.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections import Counter
from collections.abc import Callable

from sipline.sip.transports.admission import FlowBook, FlowLimits, FlowTimes, Throttle
from sipline.sip.transports.stream import StreamFlow

log = logging.getLogger("sipline.sip.transport")

REFUSAL_LOG_INTERVAL = 60.0  # refused flows are logged at most this often: a flood must not flood the log
ACCEPT_RETRY_DELAY = 1.0  # asyncio's own pause after a failed accept (base_events.py ACCEPT_RETRY_DELAY)


class AcceptedFlows:
    def __init__(self, limits: FlowLimits, stats: Counter[str], clock: Callable[[], float]) -> None:
        self.limits = limits
        self.stats = stats
        self.clock = clock
        self._book = FlowBook(limits)
        self._times: dict[StreamFlow, FlowTimes] = {}
        self._refusals = Throttle(REFUSAL_LOG_INTERVAL)

    @property
    def open(self) -> int:
        """Flows booked in: open, or in their TLS handshake."""
        return self._book.total

    def admit(self, flow: StreamFlow) -> None:
        if self._book_in(flow.peer[0]):
            self.track(flow)
        else:
            flow.close()

    def track(self, flow: StreamFlow) -> None:
        """Start the clock of a flow already booked in (TLS: at accept)."""
        self._times[flow] = FlowTimes(self.clock())

    def heard(self, flow: StreamFlow) -> None:
        times = self._times.get(flow)
        if times is not None:
            times.last_message_at = self.clock()

    def keep(self, flow: StreamFlow, seconds: float) -> None:
        """A binding registered over `flow` lives `seconds` more (0: none does): the flow stays open
        at least that long, plus the lifetime."""
        times = self._times.get(flow)
        if times is not None:
            times.registered_until = self.clock() + seconds if seconds > 0 else 0.0

    def release(self, flow: StreamFlow) -> bool:
        """Forget a closed flow; True if it ever carried a message (only then can it hold a binding)."""
        times = self._times.pop(flow, None)
        if times is None:
            return False
        self._book.release(flow.peer[0])
        return times.last_message_at is not None

    def close_expired(self, now: float) -> None:
        for flow, times in list(self._times.items()):
            if not flow.closed and now >= times.deadline(self.limits):
                self.stats["flows_closed_idle"] += 1
                flow.close()

    async def serve_tls(
        self,
        sock: socket.socket,
        factory: Callable[[], StreamFlow],
        context: ssl.SSLContext | None,
        spawn: Callable[..., None],
    ) -> None:
        """Accept on a TLS listening socket until cancelled; each admitted connection's handshake
        runs in a task of its own (`spawn`)."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    connection, address = await loop.sock_accept(sock)
                except OSError:  # out of descriptors: the connection waits in the backlog meanwhile
                    self.stats["accept_errors"] += 1
                    await asyncio.sleep(ACCEPT_RETRY_DELAY)
                    continue
                if self._book_in(address[0]):
                    spawn(self._handshake(connection, address[0], factory, context))
                else:
                    connection.close()
        finally:
            sock.close()

    async def _handshake(
        self, connection: socket.socket, address: str, factory: Callable[[], StreamFlow], context: ssl.SSLContext | None
    ) -> None:
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                factory, connection, ssl=context, ssl_handshake_timeout=self.limits.idle_timeout
            )
        except (OSError, ssl.SSLError, TimeoutError) as error:
            log.debug("TLS handshake with %s failed: %s", address, error)
            connection.close()
            self._book.release(address)

    def _book_in(self, address: str) -> bool:
        """Count a new flow from `address` in, or count and log (now and then) its refusal."""
        refused = self._book.admit(address)
        if refused is None:
            return True
        self.stats["flows_refused_" + refused] += 1
        count = self._refusals.note(self.clock())
        if count is not None:
            log.warning(
                "refusing SIP TCP/TLS connections: %d in the last %.0f s (the latest from %s: %s cap, "
                "%d per source, %d in all)",
                count,
                REFUSAL_LOG_INTERVAL,
                address,
                refused,
                self.limits.per_source,
                self.limits.total,
            )
        return False


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP listening socket as loop.create_server makes one. Raises: OSError when the address is taken."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if sock.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(100)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock
