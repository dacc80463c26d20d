"""What the store keeps of event handlers and offline events (docs/behaviour.md#events)."""

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
