"""CRLF pings on the TCP flows sipline opens (sip/transports/manager.py; docs/behaviour.md#reg-keepalive,
RFC 5626 §4.4.1): one ping out at a time, a flow that leaves it unanswered for 10 s fails, one that
answers is pinged on. Real sockets on loopback; the transport's clock is the monotonic one plus an
offset the test moves forward, so the 10 s wait for a pong passes at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import uvloop

from sipline.sip.resolve import Target
from sipline.sip.transports.manager import SipTransport
from sipline.sip.transports.stream import PONG_TIMEOUT, TransportError

FLOW_KEEPALIVE = 0.5  # seconds: pings 0.4–0.5 s apart, each looked at once a second (FLOW_TICK)


class Registrar:
    """A TCP peer that reads everything; it answers a ping with a pong only when `answers`."""

    def __init__(self, answers: bool) -> None:
        self.answers = answers
        self.pings = 0
        self.closed = False

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            count = data.count(b"\r\n\r\n")
            self.pings += count
            if self.answers and count:
                writer.write(b"\r\n" * count)
        self.closed = True
        writer.close()


async def until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "still false after the timeout"
        await asyncio.sleep(0.05)


def _failed(error: TransportError) -> None:
    raise AssertionError(f"the REGISTER could not be sent: {error}")


def run(answers: bool, scenario: Callable[[SipTransport, Registrar, list[float]], Awaitable[None]]) -> None:
    async def main() -> None:
        registrar = Registrar(answers)
        port = await registrar.start()
        offset = [0.0]
        transport = SipTransport([("127.0.0.1", 0)], allow_private_targets=True, flow_keepalive=FLOW_KEEPALIVE,
                                 clock=lambda: time.monotonic() + offset[0])
        await transport.start()
        try:
            transport.send(Target("tcp", "127.0.0.1", port, "registrar.test"), b"REGISTER", _failed)
            await scenario(transport, registrar, offset)
        finally:
            await transport.stop()
            registrar.server.close()

    uvloop.run(main())


def test_an_unanswered_ping_is_the_only_one_until_the_flow_fails():
    async def scenario(transport: SipTransport, registrar: Registrar, offset: list[float]) -> None:
        await until(lambda: transport.stats["crlf_pings"] == 1, 5)
        await asyncio.sleep(2.5)  # two more looks at the flow, each past the next ping's time
        assert (transport.stats["crlf_pings"], transport.stats["flows_failed"]) == (1, 0)
        assert registrar.pings == 1
        offset[0] += PONG_TIMEOUT  # the pong is overdue now
        await until(lambda: transport.stats["flows_failed"] == 1, 3)
        await until(lambda: registrar.closed, 3)
        assert registrar.pings == 1

    run(False, scenario)


def test_an_answered_ping_is_followed_by_the_next():
    async def scenario(transport: SipTransport, registrar: Registrar, offset: list[float]) -> None:
        await until(lambda: transport.stats["crlf_pings"] >= 3, 6)  # one a second, as each is answered
        offset[0] += PONG_TIMEOUT
        await asyncio.sleep(1.5)
        assert transport.stats["flows_failed"] == 0 and not registrar.closed

    run(True, scenario)
