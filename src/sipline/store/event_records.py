"""What the store keeps of events (docs/behaviour.md#events): handlers bound with event.bind, offline
events, and what it hands out of deliveries (docs/behaviour.md#event-delivery): a claimed delivery with
what its form needs, the outcome of an attempt, a handler as `sipline event list` shows it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class EventHandler:
    """A handler bound with event.bind (docs/behaviour.md#event-bind); `handler` "" is an offline binding."""

    id: int
    portal_id: int
    owner: str  # whose lines it hears: the app's client_id, "" for webhooks
    app_id: int | None  # the app's row id; None when a webhook bound it
    event: str  # upper case
    handler: str
    auth_type: int
    user_number: int  # who bound it
    options: str  # JSON
    created_at: float
    failing_since: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    delivered_at: float | None = None

    @property
    def offline(self) -> bool:
        return self.handler == ""


@dataclass(frozen=True)
class NewEventHandler:
    portal_id: int
    owner: str
    app_id: int | None
    event: str
    handler: str
    auth_type: int
    user_number: int
    options: str
    created_at: float


@dataclass(frozen=True)
class HandlerMatch:
    """What event.unbind removes: every handler of the owner matching each field given (None: any)."""

    portal_id: int
    owner: str
    event: str
    handler: str
    auth_type: int | None


class OfflineField(StrEnum):
    """A field of an offline event that a filter or an order names (docs/behaviour.md#event-offline)."""

    ID = "ID"
    TIMESTAMP_X = "TIMESTAMP_X"
    EVENT_NAME = "EVENT_NAME"
    MESSAGE_ID = "MESSAGE_ID"
    PROCESS_ID = "PROCESS_ID"
    ERROR = "ERROR"


class Comparison(StrEnum):
    EQUAL = "="
    NOT_EQUAL = "!="
    LESS = "<"
    LESS_OR_EQUAL = "<="
    GREATER = ">"
    GREATER_OR_EQUAL = ">="


@dataclass(frozen=True)
class OfflineTerm:
    """One condition on an offline event's field. Several `values` (EQUAL, NOT_EQUAL only): any of / none of."""

    field: OfflineField
    comparison: Comparison
    values: tuple[int | float | str | bool, ...]


@dataclass(frozen=True)
class OfflineQuery:
    """Whose offline events, which of them and in what order; `order` pairs are (field, descending)."""

    portal_id: int
    owner: str
    terms: tuple[OfflineTerm, ...] = ()
    order: tuple[tuple[OfflineField, bool], ...] = ((OfflineField.ID, False),)


@dataclass(frozen=True)
class OfflineEvent:
    """A record of the offline queue, as event.offline.get and event.offline.list show it."""

    id: int
    event: str
    data: str  # JSON
    additional: str  # JSON
    message_id: str
    created_at: float
    process_id: str  # "": not marked
    error: bool


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """An event_delivery row leased to this process, with its handler, app and portal as they are now.

    `handler_url` None: the handler was unbound (or went with its app) after the event was queued;
    a row without its own `url` (frozen at the first attempt) is then dropped."""

    id: int
    handler_id: int
    portal_id: int
    app_id: int | None
    line_id: int
    event: str
    data: dict[str, object]  # as stored (docs/behaviour.md#event-payload), before events.payload.wire_data
    created_at: float
    url: str | None
    body: str | None
    attempts: int
    handler_url: str | None = None
    auth_type: int = 0
    user_number: int = 0
    client_id: str | None = None  # the app's, None for a webhook-bound handler
    app_status: str = ""
    app_scopes: str = ""
    portal_domain: str = ""
    member_id: str = ""


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What one attempt came to. `delivered` False: `next_at` None gives the row up (its time ran out),
    else it waits until then. `url`/`body` are what was sent, kept for every retry."""

    delivery_id: int
    handler_id: int
    delivered: bool
    at: float
    url: str | None = None
    body: str | None = None
    error: str = ""
    next_at: float | None = None


@dataclass(frozen=True)
class HandlerState:
    """A bound handler and its queue (`sipline event list`)."""

    id: int
    portal_domain: str
    owner: str  # the app's client_id, "" for a webhook-bound handler
    event: str
    handler: str  # "" for an offline binding
    auth_type: int
    queued: int  # deliveries waiting (online), or the owner's offline events of this name
    failing_since: float | None
    last_error: str | None
    delivered_at: float | None
