"""The delivery of online events (docs/behaviour.md#event-delivery): one asyncio task in every
process with a SIP side, beside it and the REST API, never in their way.

Each round is one store transaction (SqlDeliveries.delivery_round): the outcomes of the attempts
that ended are recorded and the next due rows leased, as many as free slots allow (in flight in
all, and per handler). Each leased row is one task: build the body at its first attempt (kept for
every retry), sign it, resolve the handler's host, refuse an address the target rule refuses
(events/targets.py), POST to the address checked, and hand the outcome to the next round. When
nothing is due the loop waits POLL seconds, or less when an attempt ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import httpx

from sipline.accounts.oauth import OAuth, Tokens
from sipline.accounts.portals import AccountNotFound
from sipline.events.errors import UnsupportedScheme, WrongHandlerUrl
from sipline.events.payload import form_body, wire_data
from sipline.events.retry import RetrySchedule
from sipline.events.signature import HEADER, signature
from sipline.events.targets import check_handler_url
from sipline.rest.envelope import local_datetime
from sipline.rest.oauth_server import Urls
from sipline.server.event_stats import EventCollector, EventStats
from sipline.server.metrics import Metrics
from sipline.server.settings import Settings
from sipline.store.database import Database, StoreUnavailable
from sipline.store.event_records import ClaimedDelivery, DeliveryOutcome
from sipline.store.records import EventName
from sipline.store.repository import Repository

log = logging.getLogger("sipline.events")
POLL = 0.25  # seconds between looks at an idle queue: an event queued by any process goes within 1 s
TRIM_INTERVAL = 5.0  # seconds between checks of the queues' bound
LEASE_MARGIN = 30.0  # seconds a lease outlives the attempt's timeout: a stalled store write must not free it early


@dataclass(frozen=True)
class DeliverySettings:
    timeout: float = 5.0  # --event-timeout
    schedule: RetrySchedule = field(default_factory=RetrySchedule)
    in_flight: int = 64  # --event-in-flight
    per_handler: int = 4  # --event-in-flight-per-handler
    queue_max: int = 10_000  # --event-queue-max
    allow_private_targets: bool = False


class EventDeliverer:
    def __init__(
        self,
        db: Database,
        oauth: OAuth,
        urls: Urls,
        settings: DeliverySettings,
        stats: EventStats,
        *,
        clock: Callable[[], float] = time.time,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.db, self.oauth, self.urls, self.settings, self.stats = db, oauth, urls, settings, stats
        self.clock, self.uniform = clock, uniform
        self.worker = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"
        self.client = httpx.AsyncClient(
            timeout=settings.timeout,
            limits=httpx.Limits(max_connections=settings.in_flight, max_keepalive_connections=settings.in_flight),
            follow_redirects=False,
        )
        self.in_flight: dict[int, int] = {}  # handler id -> attempts running
        self.tasks: set[asyncio.Task[None]] = set()
        self.outcomes: list[DeliveryOutcome] = []
        self.wake = asyncio.Event()
        self.tokens: dict[int, Tokens] = {}  # handler id -> the pair its deliveries carry
        self.keys: dict[tuple[int, int | None], str] = {}
        self.portals: dict[int, object] = {}
        self.task: asyncio.Task[None] | None = None
        self.trimmed_at = 0.0
        self.logged_drops: dict[int, float] = {}

    @classmethod
    def built(cls, db: Database, oauth: OAuth, urls: Urls, settings: Settings, metrics: Metrics) -> EventDeliverer:
        """The deliverer of a `serve` process, its families added to `metrics`."""
        stats = EventStats()
        metrics.add(EventCollector(stats, db))
        return cls(db, oauth, urls, delivery_settings(settings), stats)

    async def start(self) -> None:
        self.task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.client.aclose()

    async def run(self) -> None:
        while True:
            try:
                busy = await self.round()
                await self.trim()
            except StoreUnavailable:
                busy = False
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), POLL)
            self.wake.clear()

    async def round(self) -> bool:
        """Record what ended and lease what is due; True when it leased any (more may be due)."""
        outcomes, self.outcomes = self.outcomes, []
        slots = self.settings.in_flight - len(self.tasks)
        now = self.clock()
        try:
            if not outcomes and (slots <= 0 or not await self.db.read(lambda repo: repo.delivery_due(now))):
                return False
            in_flight = dict(self.in_flight)

            def work(repo: Repository) -> list[ClaimedDelivery]:
                return repo.delivery_round(
                    self.worker,
                    now,
                    outcomes,
                    slots=slots,
                    handler_slots=in_flight,
                    per_handler=self.settings.per_handler,
                    lease_until=now + self.settings.timeout + LEASE_MARGIN,
                )

            claimed = await self.db.write(work, touches=())
        except StoreUnavailable:
            self.outcomes = outcomes + self.outcomes  # recorded by a later round
            raise
        for delivery in claimed:
            self.in_flight[delivery.handler_id] = self.in_flight.get(delivery.handler_id, 0) + 1
            task = asyncio.create_task(self.attempt(delivery))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return bool(claimed)

    async def attempt(self, delivery: ClaimedDelivery) -> None:
        url = delivery.url or delivery.handler_url
        body, error, delivered = delivery.body, "", False
        try:
            if not url:  # unbound since: nothing to send it to
                self.finish(delivery, DeliveryOutcome(delivery.id, delivery.handler_id, False, self.clock()))
                return
            if body is None:
                body = await self.body(delivery)
            status = await self.post(url, body, await self.key(delivery.portal_id, delivery.app_id))
            delivered, error = 200 <= status < 300, f"answered {status}"
        except (WrongHandlerUrl, UnsupportedScheme) as refused:  # docs/behaviour.md#event-bind: checked again now
            error = str(refused)
        except (httpx.TimeoutException, TimeoutError):
            error = f"no answer within {self.settings.timeout:g} s"
        except (httpx.HTTPError, OSError) as failure:
            error = f"connection failed: {failure or type(failure).__name__}"
        except AccountNotFound as gone:
            error = f"cannot act as the handler's user: {gone}"
        now = self.clock()
        if delivered:
            self.stats.delivered(delivery.event, now - delivery.created_at)
            outcome = DeliveryOutcome(delivery.id, delivery.handler_id, True, now)
        else:
            next_at = self.settings.schedule.next_at(delivery.attempts + 1, delivery.created_at, now, self.uniform)
            self.stats.failed(delivery.event, given_up=next_at is None)
            if next_at is None:
                log.warning(
                    "event %s to handler %d given up after %d attempts: %s",
                    delivery.event, delivery.handler_id, delivery.attempts + 1, error,
                )  # fmt: skip
            outcome = DeliveryOutcome(delivery.id, delivery.handler_id, False, now, url, body, error, next_at)
        if delivery.attempts:
            self.stats.retried(delivery.event)
        self.finish(delivery, outcome)

    def finish(self, delivery: ClaimedDelivery, outcome: DeliveryOutcome) -> None:
        self.in_flight[delivery.handler_id] -= 1
        if not self.in_flight[delivery.handler_id]:
            del self.in_flight[delivery.handler_id]
        self.outcomes.append(outcome)
        self.wake.set()

    async def body(self, delivery: ClaimedDelivery) -> str:
        """docs/behaviour.md#event-payload: the form as Bitrix24 sends it, with the app's tokens of the
        user the handler runs as (none for ONAPPUNINSTALL: the app is gone)."""
        portal = await self.portal(delivery.portal_id)
        auth: dict[str, object] = {
            "domain": portal.domain,
            "client_endpoint": f"{self.urls.portal_base(portal)}/rest/",
            "server_endpoint": f"{self.urls.oauth_base}/rest/",
            "member_id": portal.member_id,
            "application_token": delivery.client_id or "",
        }
        if delivery.client_id is not None and delivery.app_id is not None and delivery.event != EventName.APP_UNINSTALL:
            tokens = await self.handler_tokens(delivery)
            auth = self.urls.token_fields(tokens) | auth
        data = wire_data(delivery.data, local_datetime)
        return form_body(delivery.event, delivery.handler_id, data, int(delivery.created_at), auth)

    async def handler_tokens(self, delivery: ClaimedDelivery) -> Tokens:
        """A pair minted for the handler, reused while more than half its life is left."""
        tokens = self.tokens.get(delivery.handler_id)
        if tokens is None or tokens.expires - self.clock() < tokens.expires_in / 2:
            user = delivery.auth_type or delivery.user_number
            tokens = self.tokens[delivery.handler_id] = await self.oauth.event_tokens(delivery.app_id, user)  # type: ignore[arg-type]
        return tokens

    async def portal(self, portal_id: int):  # -> Portal
        if portal_id not in self.portals:
            self.portals[portal_id] = await self.db.read(lambda repo: repo.portal(portal_id))
        return self.portals[portal_id]

    async def key(self, portal_id: int, app_id: int | None) -> str:
        if (portal_id, app_id) not in self.keys:
            self.keys[portal_id, app_id] = await self.db.write(
                lambda repo: repo.signing_key(portal_id, app_id), touches=()
            )
        return self.keys[portal_id, app_id]

    async def post(self, url: str, body: str, key: str) -> int:
        """POST to the first address of the handler's host, every one of which the target rule allows, resolved now.

        Raises: WrongHandlerUrl, UnsupportedScheme, httpx.HTTPError, OSError."""
        target = await check_handler_url(url, self.settings.allow_private_targets)
        parts = urlsplit(url)
        ip = target.addresses[0]
        netloc = f"[{ip}]:{target.port}" if ":" in ip else f"{ip}:{target.port}"
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Host": parts.netloc.rpartition("@")[2],
            HEADER: signature(key, body, int(self.clock())),
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        async with asyncio.timeout(self.settings.timeout):
            answer = await self.client.post(
                urlunsplit(parts._replace(netloc=netloc)), content=body.encode(), headers=headers, extensions=extensions
            )
        return answer.status_code

    async def trim(self) -> None:
        """docs/behaviour.md#event-bounds: every TRIM_INTERVAL, each portal's queue back to its bound."""
        now = self.clock()
        if now - self.trimmed_at < TRIM_INTERVAL:
            return
        self.trimmed_at = now
        limit = self.settings.queue_max
        dropped = await self.db.write(lambda repo: repo.trim_event_queues(limit), touches=())
        for portal_id, event, count in dropped:
            self.stats.dropped(event, count)
            if now - self.logged_drops.get(portal_id, 0.0) >= 60:  # one line a minute per portal at most
                self.logged_drops[portal_id] = now
                log.warning(
                    "portal %d: %d queued %s events dropped, over --event-queue-max %d", portal_id, count, event, limit
                )


def delivery_settings(settings: Settings) -> DeliverySettings:
    return DeliverySettings(
        timeout=settings.event_timeout,
        schedule=RetrySchedule(settings.event_retry_after, settings.event_retry_max_interval, settings.event_retry_for),
        in_flight=settings.event_in_flight,
        per_handler=settings.event_in_flight_per_handler,
        queue_max=settings.event_queue_max,
        allow_private_targets=settings.allow_private_targets,
    )
