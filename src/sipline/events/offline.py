"""The rules of event.offline.* (docs/behaviour.md#event-offline): an owner's administrators read its queue.

Records belong to an owner as handlers do (an app's client_id, "" for the portal's webhooks). A reader
without a process id marks up to `limit` unmarked records with a new one and gets them; with one, it
gets the records marked with it. `clear` deletes what was returned; event.offline.error sends records
back, flagged, for re-processing.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace

from sipline.events.caller import EventCaller
from sipline.events.errors import AccessDenied, ArgumentNull, InvalidArgument
from sipline.events.offline_query import parse_filter, parse_ids, parse_message_ids, parse_order
from sipline.store.database import Database
from sipline.store.event_records import Comparison, OfflineEvent, OfflineField, OfflineQuery, OfflineTerm
from sipline.store.repository import Repository

PAGE_SIZE = 50  # event.offline.list pages as every list method's (docs/behaviour.md#sip-get)
DEFAULT_LIMIT = 50  # event.offline.get's `limit` when none is given [S]
MAX_LIMIT = 1000  # [R] a larger `limit` reads this many: one answer stays a few MB at most
GET_FIELDS = (OfflineField.ID, OfflineField.TIMESTAMP_X, OfflineField.EVENT_NAME, OfflineField.MESSAGE_ID)
LIST_FIELDS = tuple(OfflineField)
GET_ORDER = ((OfflineField.TIMESTAMP_X, False),)
LIST_ORDER = ((OfflineField.ID, False),)


@dataclass(frozen=True)
class OfflineBatch:
    process_id: str | None  # None: the records were cleared, and no process id was given
    events: list[OfflineEvent]


@dataclass(frozen=True)
class OfflinePage:
    events: list[OfflineEvent]
    total: int
    next: int | None


class OfflineEvents:
    def __init__(self, db: Database, new_process_id: Callable[[], str] = lambda: secrets.token_hex(16)) -> None:
        self.db = db
        self.new_process_id = new_process_id

    async def get(
        self,
        caller: EventCaller,
        *,
        filter_: object,
        order: object,
        limit: int,
        clear: bool,
        process_id: str | None,
        error: bool,
    ) -> OfflineBatch:
        """Raises: AccessDenied, InvalidArgument (FILTER, ORDER, LIMIT)."""
        _require_admin(caller)
        if limit <= 0:
            raise InvalidArgument("LIMIT", "Value must be positive integer")
        limit = min(limit, MAX_LIMIT)
        query = OfflineQuery(
            caller.portal_id, caller.owner, parse_filter(filter_, GET_FIELDS), parse_order(order, GET_FIELDS, GET_ORDER)
        )
        given = process_id.strip() if process_id else ""
        marker = given or self.new_process_id()

        def work(repo: Repository) -> list[OfflineEvent]:
            if not given:
                repo.mark_offline_events(query, error=error, limit=limit, process_id=marker)
            marked = replace(query, terms=(*query.terms, _equal(OfflineField.PROCESS_ID, marker), _equal_error(error)))
            events = repo.offline_events(marked, limit=limit)
            if clear and events:
                repo.delete_offline_events(caller.portal_id, caller.owner, marker, ids=[event.id for event in events])
            return events

        events = await self.db.write(work, touches=())
        return OfflineBatch(marker if given or not clear else None, events)

    async def clear(self, caller: EventCaller, *, process_id: str | None, ids: object, message_ids: object) -> None:
        """All the process's records, or those of `message_ids`, else of `ids`.

        Raises: AccessDenied, ArgumentNull (PROCESS_ID), InvalidArgument (ID, MESSAGE_ID)."""
        _require_admin(caller)
        marker = _process_id(process_id)
        by_message = parse_message_ids(message_ids) if message_ids is not None else None
        by_id = parse_ids(ids) if message_ids is None else None
        await self.db.write(
            lambda repo: repo.delete_offline_events(
                caller.portal_id, caller.owner, marker, ids=by_id, message_ids=by_message
            ),
            touches=(),
        )

    async def error(self, caller: EventCaller, *, process_id: str | None, message_ids: object) -> None:
        """Raises: AccessDenied, ArgumentNull (PROCESS_ID), InvalidArgument (MESSAGE_ID: not a list)."""
        _require_admin(caller)
        marker = _process_id(process_id)
        if not isinstance(message_ids, (list, dict)):
            raise InvalidArgument("MESSAGE_ID", "Value must be array of MESSAGE_ID values")
        failed = parse_message_ids(message_ids)
        if failed:
            await self.db.write(
                lambda repo: repo.fail_offline_events(caller.portal_id, caller.owner, marker, failed), touches=()
            )

    async def list(self, caller: EventCaller, *, filter_: object, order: object, offset: int) -> OfflinePage:
        """Raises: AccessDenied, InvalidArgument (FILTER, ORDER)."""
        _require_admin(caller)
        query = OfflineQuery(
            caller.portal_id,
            caller.owner,
            parse_filter(filter_, LIST_FIELDS),
            parse_order(order, LIST_FIELDS, LIST_ORDER),
        )

        def work(repo: Repository) -> tuple[list[OfflineEvent], int]:
            return repo.offline_events(query, limit=PAGE_SIZE, offset=offset), repo.count_offline_events(query)

        events, total = await self.db.read(work)
        return OfflinePage(events, total, offset + PAGE_SIZE if offset + PAGE_SIZE < total else None)


def _require_admin(caller: EventCaller) -> None:
    if not caller.is_admin:
        raise AccessDenied()


def _process_id(given: str | None) -> str:
    marker = given.strip() if given else ""
    if not marker:
        raise ArgumentNull("PROCESS_ID")
    return marker


def _equal(field: OfflineField, value: str) -> OfflineTerm:
    return OfflineTerm(field, Comparison.EQUAL, (value,))


def _equal_error(error: bool) -> OfflineTerm:
    return OfflineTerm(OfflineField.ERROR, Comparison.EQUAL, (error,))
