"""`sipline event list|retry|signing-secret` (docs/behaviour.md#event-bounds): the bound handlers
with their queues and failures, a nudge for failing ones, and the key that signs deliveries to a
portal's webhook-bound handlers (docs/behaviour.md#event-signature).

They work on the store directly, with the server stopped or running, as `sipline line` does.
"""

from __future__ import annotations

import argparse

from sipline.accounts.portals import named_portal
from sipline.cli.output import Table
from sipline.events.queues import handler_shown, owner_shown
from sipline.rest.envelope import local_iso
from sipline.server.settings import ConfigError, Settings
from sipline.sip.grammar import is_digits
from sipline.store.event_records import HandlerState
from sipline.telephony.services import Services

LIST_COLUMNS = (
    "ID",
    "PORTAL",
    "OWNER",
    "EVENT",
    "HANDLER",
    "AUTH_TYPE",
    "QUEUED",
    "FAILING_SINCE",
    "LAST_ERROR",
    "LAST_DELIVERED",
)


async def event_list(args: argparse.Namespace, settings: Settings, services: Services) -> str:
    handlers = await services.events.queues.states(portal=args.portal)
    return Table(LIST_COLUMNS, [_row(handler) for handler in handlers]).render(args.json)


def _row(handler: HandlerState) -> dict[str, object]:
    return {
        "ID": handler.id,
        "PORTAL": handler.portal_domain,
        "OWNER": owner_shown(handler),
        "EVENT": handler.event,
        "HANDLER": handler_shown(handler),
        "AUTH_TYPE": handler.auth_type,
        "QUEUED": handler.queued,
        "FAILING_SINCE": None if handler.failing_since is None else local_iso(handler.failing_since),
        "LAST_ERROR": handler.last_error,
        "LAST_DELIVERED": None if handler.delivered_at is None else local_iso(handler.delivered_at),
    }


async def event_retry(args: argparse.Namespace, settings: Settings, services: Services) -> str:
    if (args.handler is None) == (not args.all):
        raise ConfigError("event retry: give --handler ID or --all")
    if args.handler is not None and not is_digits(args.handler, 9):
        raise ConfigError(f"handler: {args.handler!r} is not a handler ID")
    handler = None if args.handler is None else int(args.handler)
    return f"{await services.events.queues.retry(portal=args.portal, handler_id=handler)} deliveries due now"


async def event_signing_secret(args: argparse.Namespace, settings: Settings, services: Services) -> str:
    return await services.db.write(lambda repo: repo.portal_signing_secret(named_portal(repo, args.portal).id))
