"""What a delivery carries (docs/behaviour.md#event-payload): the form Bitrix24 POSTs to an event
handler, `application/x-www-form-urlencoded`, its keys in PHP's bracket form.

    event=ONSIPLINEREGISTRATIONCHANGE&event_handler_id=7&data[CONFIG_ID]=12&...&ts=1767000000
    &auth[domain]=...&auth[client_endpoint]=...&auth[server_endpoint]=...&auth[member_id]=...
    &auth[application_token]=...      (and an app's tokens: auth[access_token], ...)

Pure: the caller passes the time's format (rest/envelope.py local_datetime, as voximplant.sip.status
shows LAST_UPDATED) and the auth fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import urlencode

TIMED = ("LAST_UPDATED",)  # stored as Unix time (store/event_data.py), sent as local date and time


def wire_data(data: Mapping[str, object], format_time: Callable[[float], str]) -> dict[str, object]:
    """An event's data as handlers get it (the form's data[...], the offline queue's EVENT_DATA)."""
    return {
        key: format_time(value) if key in TIMED and isinstance(value, int | float) else value
        for key, value in data.items()
    }


def text_data(data: Mapping[str, object], format_time: Callable[[float], str]) -> dict[str, str]:
    """An event's data as the offline queue's EVENT_DATA shows it: the form's data[...] values, as text."""
    return {key: _text(value) for key, value in wire_data(data, format_time).items()}


def form_body(event: str, handler_id: int, data: Mapping[str, object], ts: int, auth: Mapping[str, object]) -> str:
    """The urlencoded body, keys in Bitrix24's order: event, event_handler_id, data[...], ts, auth[...]."""
    fields: list[tuple[str, str]] = [("event", event), ("event_handler_id", str(handler_id))]
    fields += [(f"data[{key}]", _text(value)) for key, value in data.items()]
    fields.append(("ts", str(ts)))
    fields += [(f"auth[{key}]", _text(value)) for key, value in auth.items()]
    return urlencode(fields)


def _text(value: object) -> str:
    """PHP's string of a value: a bool as 1 or "", None as ""."""
    if value is None or value is False:
        return ""
    if value is True:
        return "1"
    return str(value)
