"""docs/behaviour.md#office-nat: is a PBX behind NAT still there? OPTIONS to NAT-flagged UDP bindings, every 30 s.

Each round sends one OPTIONS to the recorded source of every NAT-flagged UDP
binding (the request reopens the pinhole on the way). A ping still unanswered
when the next round starts is a miss; three misses in a row mark the binding
unreachable, where it stays (until it expires) unless it answers again or the
PBX registers anew. Any response counts as an answer, as in Kamailio's nathelper.

`PingBook` is the bookkeeping, pure; `NatPinger` does the sending and the store.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable

from sipline.registrar.bindings import CACHE_TOPIC
from sipline.sip.errors import SipError
from sipline.sip.headers import Via
from sipline.sip.message import Headers, Request, Response
from sipline.sip.serialise import serialise
from sipline.sip.transports.manager import SipTransport, Source
from sipline.store.database import Database
from sipline.store.records import Binding

log = logging.getLogger("sipline.registrar")

PING_INTERVAL = 30.0
MISSES_ALLOWED = 3
BRANCH_PREFIX = "z9hG4bK-nat-"

Key = tuple[int, str]  # (line id, Contact URI): a binding


class PingBook:
    def __init__(self, misses_allowed: int = MISSES_ALLOWED) -> None:
        self.misses_allowed = misses_allowed
        self._out: dict[str, Key] = {}  # branch → binding, for this round's pings
        self._missed: dict[Key, int] = {}  # misses in a row
        self._down: set[Key] = set()  # marked unreachable

    def new_round(self, bindings: dict[Key, bool]) -> list[Key]:
        """Close the round (pings still out are misses) and take the bindings to ping next, each
        with its stored reachability. Returns the bindings to mark unreachable now."""
        for key in self._out.values():
            self._missed[key] = self._missed.get(key, 0) + 1
        self._out.clear()
        self._missed = {key: count for key, count in self._missed.items() if key in bindings}
        self._down = {key for key, reachable in bindings.items() if not reachable}
        lost = [key for key, count in self._missed.items() if count >= self.misses_allowed and key not in self._down]
        self._down.update(lost)
        return lost

    def sent(self, branch: str, key: Key) -> None:
        self._out[branch] = key

    def answered(self, branch: str) -> Key | None:
        """A response to one of our pings; returns the binding if it was unreachable (it is not now)."""
        key = self._out.pop(branch, None)
        if key is None:
            return None
        self._missed.pop(key, None)
        if key in self._down:
            self._down.discard(key)
            return key
        return None


def build_options(binding: Binding, realm: str, branch: str) -> Request:
    local = binding.local
    host = f"[{local[0]}]" if ":" in local[0] else local[0]
    tag = secrets.token_hex(5)
    headers = Headers.of(
        [
            ("Via", f"SIP/2.0/UDP {host}:{local[1]};branch={branch};rport"),
            ("Max-Forwards", "70"),
            ("From", f"<sip:ping@{realm}>;tag={tag}"),
            ("To", f"<{binding.contact}>"),
            ("Call-ID", f"{tag}-{branch[len(BRANCH_PREFIX) :]}@{realm}"),
            ("CSeq", "1 OPTIONS"),
            ("Content-Length", "0"),
        ]
    )
    return Request("OPTIONS", binding.contact, headers)


class NatPinger:
    def __init__(
        self,
        db: Database,
        transport: SipTransport,
        realm: str,
        *,
        interval: float = PING_INTERVAL,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.db, self.transport, self.realm = db, transport, realm
        self.interval, self.wall = interval, wall
        self.book = PingBook()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def on_response(self, response: Response) -> bool:
        """True when the response answers one of our pings (and is then ours)."""
        top = response.headers.get("Via") or ""
        if BRANCH_PREFIX not in top:
            return False  # most responses answer the registration engine: no need to parse their Via
        try:
            branch = Via.parse(top).branch or ""
        except SipError:
            return False
        if not branch.startswith(BRANCH_PREFIX):
            return False
        key = self.book.answered(branch)
        if key is not None:
            asyncio.get_running_loop().create_task(self._mark([key], True))
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self._round()
            except Exception:
                log.exception("NAT ping round failed; trying again next round")

    async def _round(self) -> None:
        now = self.wall()
        # with several sip nodes on one store, each pings only what came in on its own sockets
        found = [
            (line_id, binding)
            for line_id, binding in await self.db.read(lambda repo: repo.nat_bindings(now))
            if self._ours(binding.local)
        ]
        lost = self.book.new_round({(line_id, b.contact): b.reachable for line_id, b in found})
        if lost:
            await self._mark(lost, False)
        for line_id, binding in found:
            branch = BRANCH_PREFIX + secrets.token_hex(8)
            self.book.sent(branch, (line_id, binding.contact))
            source = Source("udp", binding.source[0], binding.source[1], binding.local)
            self.transport.stats["nat_pings"] += 1
            self.transport.send_to_peer(source, serialise(build_options(binding, self.realm, branch)))

    def _ours(self, local: tuple[str, int]) -> bool:
        return any(port == local[1] and host in (local[0], "0.0.0.0", "::") for host, port in self.transport.listen)

    async def _mark(self, keys: list[Key], reachable: bool) -> None:
        log.info("%d NAT binding(s) now %s", len(keys), "reachable" if reachable else "unreachable")
        await self.db.write(lambda repo: repo.set_reachable(keys, reachable), touches=(CACHE_TOPIC,))
