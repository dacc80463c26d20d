"""Handlers of `events`, event.bind|unbind|get and event.offline.* (docs/behaviour.md#events): decode
parameters, call the events rules, render as Bitrix24 does.

Parameter names are case-insensitive (Bitrix24 changes their case before reading them).
"""

from __future__ import annotations

import orjson

from sipline.events.caller import EventCaller
from sipline.events.offline import DEFAULT_LIMIT
from sipline.events.payload import text_data
from sipline.rest.envelope import ListResult, local_datetime, local_iso
from sipline.rest.params import Params
from sipline.store.event_records import EventHandler, OfflineEvent
from sipline.telephony import php_values
from sipline.telephony.caller import Caller
from sipline.telephony.services import Services


def event_caller(caller: Caller) -> EventCaller:
    return EventCaller(
        portal_id=caller.portal_id,
        user_number=caller.user_number,
        owner=caller.app_id,
        scopes=caller.scopes,
        is_admin=caller.is_admin,
        can_modify_numbers=caller.can_modify_numbers,
        webhook=caller.webhook_id is not None,
    )


async def events(params: Params, caller: Caller, services: Services) -> object:
    upper = params.upper()
    full = php_values.truthy(upper.raw("FULL"))
    return services.events.bindings.names(event_caller(caller), scope=upper.optional_str("SCOPE"), full=full)


async def event_bind(params: Params, caller: Caller, services: Services) -> object:
    upper = params.upper()  # OPTIONS: none means anything yet (docs/behaviour.md#event-bind)
    await services.events.bindings.bind(
        event_caller(caller),
        event=upper.optional_str("EVENT") or "",
        event_type=upper.optional_str("EVENT_TYPE") or "",
        handler=upper.optional_str("HANDLER") or "",
        auth_type=upper.intval("AUTH_TYPE"),
    )
    return True


async def event_unbind(params: Params, caller: Caller, services: Services) -> object:
    upper = params.upper()
    count = await services.events.bindings.unbind(
        event_caller(caller),
        event=upper.optional_str("EVENT") or "",
        event_type=upper.optional_str("EVENT_TYPE") or "",
        handler=upper.optional_str("HANDLER") or "",
        auth_type=upper.intval("AUTH_TYPE") if upper.present("AUTH_TYPE") else None,
    )
    return {"count": count}


async def event_get(params: Params, caller: Caller, services: Services) -> object:
    return [render_handler(handler) for handler in await services.events.bindings.get(event_caller(caller))]


def render_handler(handler: EventHandler) -> dict[str, object]:
    """A row of event.get: Bitrix24's keys (auth_type a string, as its database gives it), then sipline's."""
    if handler.offline:
        return {"event": handler.event, "connector_id": "", "offline": 1}
    return {
        "event": handler.event,
        "handler": handler.handler,
        "auth_type": str(handler.auth_type),
        "offline": 0,
        "failing": handler.failing_since is not None,
        "failing_since": None if handler.failing_since is None else local_iso(handler.failing_since),
        "last_error": handler.last_error,
    }


async def offline_get(params: Params, caller: Caller, services: Services) -> object:
    upper = params.upper()
    batch = await services.events.offline.get(
        event_caller(caller),
        filter_=upper.raw("FILTER"),
        order=upper.raw("ORDER"),
        limit=upper.intval("LIMIT") if upper.present("LIMIT") else DEFAULT_LIMIT,
        clear=upper.intval("CLEAR") != 0 if upper.present("CLEAR") else True,
        process_id=upper.optional_str("PROCESS_ID"),
        error=upper.intval("ERROR") == 1,
    )
    return {"process_id": batch.process_id, "events": [render_offline(event) for event in batch.events]}


async def offline_clear(params: Params, caller: Caller, services: Services) -> object:
    upper = params.upper()
    await services.events.offline.clear(
        event_caller(caller),
        process_id=upper.optional_str("PROCESS_ID"),
        ids=upper.raw("ID"),
        message_ids=upper.raw("MESSAGE_ID"),
    )
    return True


async def offline_error(params: Params, caller: Caller, services: Services) -> object:
    upper = params.upper()
    await services.events.offline.error(
        event_caller(caller), process_id=upper.optional_str("PROCESS_ID"), message_ids=upper.raw("MESSAGE_ID")
    )
    return True


async def offline_list(params: Params, caller: Caller, services: Services) -> object:
    upper = params.upper()
    page = await services.events.offline.list(
        event_caller(caller), filter_=upper.raw("FILTER"), order=upper.raw("ORDER"), offset=params.start
    )
    if page.total == 0:
        return []  # as voximplant.sip.get: no total for nothing
    rows = [
        {**render_offline(event), "PROCESS_ID": event.process_id, "ERROR": "1" if event.error else "0"}
        for event in page.events
    ]
    return ListResult(rows, page.total, page.next)


def render_offline(event: OfflineEvent) -> dict[str, object]:
    """A record of event.offline.get: ID a string, as Bitrix24's database gives it."""
    return {
        "ID": str(event.id),
        "TIMESTAMP_X": local_iso(event.created_at),
        "EVENT_NAME": event.event,
        "EVENT_DATA": text_data(orjson.loads(event.data), local_datetime),  # docs/behaviour.md#event-payload
        "EVENT_ADDITIONAL": orjson.loads(event.additional),
        "MESSAGE_ID": event.message_id,
    }
