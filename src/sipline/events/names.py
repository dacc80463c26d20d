"""The events sipline sends and who may bind each (docs/behaviour.md#event-names).

A name is looked up upper case, as Bitrix24 stores and sends it; `events` lists the names in their
declared case, as Bitrix24's `events` lists the keys it declares.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass

from sipline.store.records import EventName

TELEPHONY = "telephony"


@dataclass(frozen=True)
class EventSpec:
    name: EventName
    declared: str  # the case `events` shows
    scope: str | None  # None: Bitrix24's global scope, open to every caller
    apps_only: bool = False  # about an application itself: a webhook has nothing to hear


EVENTS: dict[EventName, EventSpec] = {
    EventName.REGISTRATION_CHANGE: EventSpec(EventName.REGISTRATION_CHANGE, "OnSiplineRegistrationChange", TELEPHONY),
    EventName.BINDING_CHANGE: EventSpec(EventName.BINDING_CHANGE, "OnSiplineBindingChange", TELEPHONY),
    EventName.APP_UNINSTALL: EventSpec(EventName.APP_UNINSTALL, "OnAppUninstall", None, apps_only=True),
}


def listed(scopes: Set[str], *, app: bool, scope: str | None = None, full: bool = False) -> list[str]:
    """What `events` answers: the events of the caller's scopes and the global one; with `scope`, only that
    scope's ("": the global one's), whoever asks; else with `full`, every event."""
    if scope is not None:
        wanted = scope.lower() or None
        return [spec.declared for spec in EVENTS.values() if spec.scope == wanted and (app or not spec.apps_only)]
    if full:
        return [spec.declared for spec in EVENTS.values()]
    return [spec.declared for spec in EVENTS.values() if _open_to(spec, scopes, app)]


def bindable(name: str, scopes: Set[str], *, app: bool) -> EventSpec | None:
    """The event `name` (any case) if the caller's scopes hold it; None otherwise."""
    try:
        spec = EVENTS[EventName(name.upper())]
    except ValueError:
        return None
    return spec if _open_to(spec, scopes, app) else None


def _open_to(spec: EventSpec, scopes: Set[str], app: bool) -> bool:
    return (spec.scope is None or spec.scope in scopes) and (app or not spec.apps_only)
