"""What the operator and a portal's admin see of event delivery (docs/behaviour.md#event-bounds): each
bound handler with its queue and failure state, and the nudge that makes a failing handler's queued
deliveries due now. `sipline event list|retry` and the dashboard's events page read these, so both
show the same thing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sipline.accounts.portals import named_portal
from sipline.store.database import Database
from sipline.store.event_records import HandlerState
from sipline.store.repository import Repository

WEBHOOK_OWNER = "webhook"  # the OWNER shown for a handler bound by a portal's webhook (stored as "")
OFFLINE_HANDLER = "offline"  # the HANDLER shown for an offline binding (stored as "")


def owner_shown(handler: HandlerState) -> str:
    return handler.owner or WEBHOOK_OWNER


def handler_shown(handler: HandlerState) -> str:
    return handler.handler or OFFLINE_HANDLER


class HandlerQueues:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    async def states(self, *, portal: str | None) -> list[HandlerState]:
        """Every bound handler of the portal with this domain (None: of every portal), oldest first.

        Raises: AccountError for an unknown portal."""

        def work(repo: Repository) -> list[HandlerState]:
            return repo.handler_states(None if portal is None else named_portal(repo, portal).id)

        return await self.db.read(work)

    async def retry(self, *, portal: str | None, handler_id: int | None) -> int:
        """Make due now the queued deliveries of one handler (of the portal, when given), or of every
        failing handler (None); how many. Raises: AccountError for an unknown portal."""
        now = self.clock()

        def work(repo: Repository) -> int:
            portal_id = None if portal is None else named_portal(repo, portal).id
            return repo.retry_event_handlers(now, portal_id, handler_id)

        return await self.db.write(work)
