"""TCP and TLS flows: framing, CRLF keep-alives, and connection errors as SIP sees them.

A flow is one connection. Incoming bytes go through a StreamParser; a CRLFCRLF
ping is answered with CRLF (RFC 5626 §3.5.1). Flows we opened are pinged every
95–120 s, and a flow that stays silent for 10 s after a ping is failed (RFC 5626
§4.4.1). A framing error closes the flow: a stream cannot be re-synchronised.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from sipline.sip.errors import SipError
from sipline.sip.message import Message
from sipline.sip.parse import KeepAlive, StreamParser

log = logging.getLogger("sipline.sip.transport")

PING = b"\r\n\r\n"
PONG = b"\r\n"
CONNECT_TIMEOUT = 10.0  # docs/behaviour.md#reg-transactions: TCP connect budget
HANDSHAKE_TIMEOUT = 10.0  # docs/behaviour.md#reg-transactions: TLS handshake budget
PONG_TIMEOUT = 10.0  # RFC 5626 §4.4.1


@dataclass(frozen=True)
class FlowKey:
    transport: str  # "tcp" or "tls"
    address: str
    port: int
    server_name: str  # what the TLS certificate must name; "" for TCP


class TransportError(Exception):
    """A request could not be carried; `kind` is transport, tls_handshake or tls_cert (docs/behaviour.md#reg-retry)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


_ERRNO_TEXTS = {
    errno.ECONNREFUSED: "Connection refused",
    errno.ENETUNREACH: "Network is unreachable",
    errno.EHOSTUNREACH: "Network is unreachable",
    errno.ECONNRESET: "Connection reset",
    errno.ETIMEDOUT: "Connection timed out",
}


def transport_error(error: BaseException, tls: bool) -> TransportError:
    """The docs/behaviour.md#reg-status wording for what went wrong while connecting or writing."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return TransportError("tls_cert", error.verify_message or str(error))
    if isinstance(error, ssl.SSLError):
        return TransportError("tls_handshake", error.reason or str(error))
    if isinstance(error, TimeoutError):  # asyncio.TimeoutError is TimeoutError since Python 3.11
        if tls:
            return TransportError("tls_handshake", "timeout")
        return TransportError("transport", "Connection timed out")
    if isinstance(error, OSError) and error.errno in _ERRNO_TEXTS:
        return TransportError("transport", _ERRNO_TEXTS[error.errno])
    return TransportError("transport", str(error) or type(error).__name__)


class StreamFlow(asyncio.Protocol):
    """One TCP/TLS connection; `deliver(message, flow)` receives every complete message."""

    def __init__(
        self,
        key: FlowKey | None,
        deliver: Callable[[Message, StreamFlow], None],
        lost: Callable[[StreamFlow], None],
        dropped: Callable[[str], None],
        clock: Callable[[], float],
    ) -> None:
        self.key = key  # None for a flow a peer opened to us
        self._deliver = deliver
        self._lost = lost
        self._dropped = dropped
        self._clock = clock
        self._parser = StreamParser()
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] = ("", 0)
        self.closed = False
        self.last_received = clock()
        self.ping_sent_at: float | None = None
        self.next_ping_at: float | None = None
        self.opened: Callable[[StreamFlow], None] = lambda flow: None  # may close it at once (admission.py)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername") or ("", 0)
        self.peer = (peer[0], peer[1])
        self.opened(self)

    def data_received(self, data: bytes) -> None:
        self.last_received = self._clock()
        self.ping_sent_at = None  # any bytes prove the flow alive, the pong among them
        try:
            events = self._parser.feed(data)
        except SipError as error:
            self._dropped("malformed" if error.status == 400 else "oversized")
            log.debug("closing flow from %s: %s", self.peer, error)
            self.close()
            return
        for event in events:
            if isinstance(event, KeepAlive):
                self.write(PONG)
            else:
                self._deliver(event, self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._lost(self)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def ping(self, now: float) -> None:
        self.write(PING)
        self.ping_sent_at = now

    def pong_overdue(self, now: float, timeout: float = PONG_TIMEOUT) -> bool:
        return self.ping_sent_at is not None and now - self.ping_sent_at > timeout

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()


async def open_flow(key: FlowKey, factory: Callable[[], StreamFlow], tls_context: ssl.SSLContext | None) -> StreamFlow:
    """Connect within the docs/behaviour.md#reg-transactions budgets. Raises: TransportError."""
    loop = asyncio.get_running_loop()
    tls = key.transport == "tls"
    try:
        _, flow = await asyncio.wait_for(
            loop.create_connection(
                factory,
                key.address,
                key.port,
                ssl=tls_context if tls else None,
                server_hostname=key.server_name if tls else None,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT if tls else None,
            ),
            CONNECT_TIMEOUT + (HANDSHAKE_TIMEOUT if tls else 0),
        )
    except (OSError, TimeoutError, ssl.SSLError) as error:
        raise transport_error(error, tls) from None
    return flow
