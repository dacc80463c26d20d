"""A deadline for each HTTP request, against clients that send slowly (slowloris).

uvicorn's keep-alive timeout only runs while a connection is silent between
requests: once a byte arrives nothing limits how long the rest takes, and a new
connection that sends nothing is never timed out. So a client that trickles its
request line and headers, or its body, holds a connection and a task forever.

Here each connection has one deadline, `timeout` seconds after it opens, after its
request's headers are complete, and after each response. When the deadline passes,
what happens depends on how far the client got with its request (the stage) and on
the answer the server is working on (the exchange); see VERDICTS:

- the client still owes part of a request the server waits for: 408 with
  `Connection: close` (RFC 9110 §15.5.9), then the connection closes;
- a connection with nothing asked and nothing to answer: closed without a word;
- the server is answering (or has paused reading, RFC 9112 §9.3.2 pipelining):
  nothing, until the response re-arms the deadline.

`RequestDeadline` is the rule without I/O; `DeadlineProtocol` drives it from
uvicorn's httptools protocol (uvicorn[standard] always brings httptools).
"""

from __future__ import annotations

import asyncio
import logging
from enum import Enum

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from sipline.rest.envelope import HEADERS, JSON_TYPE, render_json
from sipline.rest.errors import RequestTimeout, error_body

log = logging.getLogger("sipline.http")


class Stage(Enum):
    """How far the client is with its current request."""

    IDLE = "idle"  # none begun since the last one was complete
    HEAD = "head"  # request line and headers arriving
    BODY = "body"  # headers complete, body arriving


class Exchange(Enum):
    """The server's side: the request it answers (in HEAD, the previous one)."""

    NONE = "none"  # nothing to answer, or its response complete
    PREPARING = "preparing"  # the application runs and has sent nothing yet
    SENDING = "sending"  # the response has started
    QUEUED = "queued"  # pipelined requests wait, and reading is paused


class Verdict(Enum):
    WAIT = "wait"
    CLOSE = "close"
    REFUSE = "refuse"  # 408, then close


VERDICTS: dict[tuple[Stage, Exchange], Verdict] = {
    (Stage.IDLE, Exchange.NONE): Verdict.CLOSE,  # silent since it opened, or since the last response
    (Stage.IDLE, Exchange.PREPARING): Verdict.WAIT,  # the application is slow, not the client
    (Stage.IDLE, Exchange.SENDING): Verdict.WAIT,
    (Stage.IDLE, Exchange.QUEUED): Verdict.WAIT,
    (Stage.HEAD, Exchange.NONE): Verdict.REFUSE,  # headers late
    (Stage.HEAD, Exchange.PREPARING): Verdict.WAIT,  # pipelined ahead of an answer still being made
    (Stage.HEAD, Exchange.SENDING): Verdict.WAIT,
    (Stage.HEAD, Exchange.QUEUED): Verdict.WAIT,
    (Stage.BODY, Exchange.NONE): Verdict.CLOSE,  # answered without the body; the rest of it is late
    (Stage.BODY, Exchange.PREPARING): Verdict.REFUSE,  # the application waits for a late body
    (Stage.BODY, Exchange.SENDING): Verdict.WAIT,
    (Stage.BODY, Exchange.QUEUED): Verdict.WAIT,
}


class RequestDeadline:
    """One connection's deadline. Feed it the parser's events and `now`; arm a timer at `next_deadline()`."""

    def __init__(self, timeout: float, now: float) -> None:
        self.timeout = timeout
        self.stage = Stage.IDLE
        self._deadline: float | None = now + timeout

    def request_begun(self) -> None:
        self.stage = Stage.HEAD

    def headers_complete(self, now: float) -> None:
        self.stage = Stage.BODY
        self._deadline = now + self.timeout

    def request_complete(self) -> None:
        self.stage = Stage.IDLE

    def response_complete(self, now: float) -> None:
        self._deadline = now + self.timeout

    def next_deadline(self) -> float | None:
        """None once a passed deadline has been handled, until the next event sets another."""
        return self._deadline

    def handle_timer(self, now: float, exchange: Exchange) -> Verdict:
        """What to do with the connection; WAIT too when the deadline is not yet due."""
        if self._deadline is None or now < self._deadline:
            return Verdict.WAIT
        self._deadline = None
        return VERDICTS[self.stage, exchange]


def timeout_response(timeout: float, extra_headers: list[tuple[bytes, bytes]]) -> bytes:
    """The 408 in the REST wire's format (a Bitrix24 error body), closing the connection."""
    body = render_json(error_body(RequestTimeout(f"The request was not complete within {timeout:g} s")))
    headers = [
        *extra_headers,
        *((name.encode(), value.encode()) for name, value in HEADERS.items()),
        (b"content-type", JSON_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    return b"".join(
        [
            b"HTTP/1.1 408 Request Timeout\r\n",
            *(name + b": " + value + b"\r\n" for name, value in headers),
            b"\r\n",
            body,
        ]
    )


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a RequestDeadline; `request_timeout` comes from the subclass
    `with_timeout` makes, since uvicorn builds protocols from a class and its own Config."""

    request_timeout: float = 10.0

    @classmethod
    def with_timeout(cls, seconds: float) -> type[DeadlineProtocol]:
        return type(cls.__name__, (cls,), {"request_timeout": seconds})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.deadline = RequestDeadline(self.request_timeout, self.loop.time())
        self.deadline_timer: asyncio.TimerHandle | None = None
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.deadline_timer is not None:
            self.deadline_timer.cancel()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.deadline.request_begun()

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self.deadline.headers_complete(self.loop.time())
        self._arm()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.deadline.request_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.deadline.response_complete(self.loop.time())
        self._arm()

    def _arm(self) -> None:
        if self.deadline_timer is not None:
            self.deadline_timer.cancel()
        when = self.deadline.next_deadline()
        self.deadline_timer = None if when is None else self.loop.call_at(when, self._deadline_passed)

    def _deadline_passed(self) -> None:
        self.deadline_timer = None
        if self.transport.is_closing():
            return
        verdict = self.deadline.handle_timer(self.loop.time(), self._exchange())
        if verdict is Verdict.WAIT:
            self._arm()
            return
        log.debug(
            "closing a connection from %s: no complete request within %g s (%s)",
            self.client[0] if self.client else "-",
            self.request_timeout,
            self.deadline.stage.value,
        )
        if verdict is Verdict.REFUSE:
            self.transport.write(timeout_response(self.request_timeout, self.server_state.default_headers))
        self.transport.close()

    def _exchange(self) -> Exchange:
        if self.pipeline:
            return Exchange.QUEUED
        if self.cycle is None or self.cycle.response_complete:
            return Exchange.NONE
        return Exchange.SENDING if self.cycle.response_started else Exchange.PREPARING
