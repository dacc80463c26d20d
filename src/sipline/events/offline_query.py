"""`filter` and `order` of event.offline.get and event.offline.list, and the lists of
event.offline.clear and event.offline.error, read into typed terms (docs/behaviour.md#event-offline).

A filter key is a field with an optional Bitrix24 prefix: `=` (or none), `!` / `!=`, `<`, `<=`, `>`,
`>=`. `=` and `!` take one value or a list of them (any of, none of); the others one value.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import datetime

from sipline.events.errors import InvalidArgument
from sipline.store.event_records import Comparison, OfflineField, OfflineTerm

MAX_VALUES = 1000  # values in one filter term or one list of ids; a request body holds 1 MiB at most
INT64 = 2**63 - 1  # event_offline.id is a BIGINT
_KEY = re.compile(r"(>=|<=|!=|=|!|>|<)?(.*)", re.DOTALL)
_PREFIXES = {"": Comparison.EQUAL, "=": Comparison.EQUAL, "!": Comparison.NOT_EQUAL, "!=": Comparison.NOT_EQUAL}
_PREFIXES |= {op.value: op for op in (Comparison.LESS, Comparison.LESS_OR_EQUAL, Comparison.GREATER)}
_PREFIXES[">="] = Comparison.GREATER_OR_EQUAL
_DIGITS = re.compile(r"[+-]?[0-9]{1,19}")
_FLAGS = {"0": False, "1": True, "N": False, "Y": True, "false": False, "true": True}

Value = int | float | str | bool


def parse_filter(raw: object, fields: Collection[OfflineField]) -> tuple[OfflineTerm, ...]:
    """Raises: InvalidArgument (FILTER) for a key or value these fields do not take."""
    entries = _entries(raw, "FILTER")
    return tuple(_term(key, value, fields) for key, value in entries.items())


def parse_order(
    raw: object, fields: Collection[OfflineField], default: tuple[tuple[OfflineField, bool], ...]
) -> tuple[tuple[OfflineField, bool], ...]:
    """(field, descending) pairs; `default` when none is given.

    Raises: InvalidArgument (ORDER) for an unknown field or a direction other than ASC or DESC.
    """
    entries = _entries(raw, "ORDER")
    order = []
    for key, direction in entries.items():
        field = _field(key, fields, "ORDER")
        if not isinstance(direction, str) or direction.upper() not in ("ASC", "DESC"):
            raise InvalidArgument("ORDER", f"the direction of {field.value} must be ASC or DESC")
        order.append((field, direction.upper() == "DESC"))
    return tuple(order) or default


def parse_ids(raw: object) -> list[int] | None:
    """event.offline.clear's `id`: None when absent or empty.

    Raises: InvalidArgument (ID) unless a list of positive integers."""
    values = _list(raw, "ID", "Value must be array of integers")
    ids = [_integer(value) for value in values]
    if any(number is None or number <= 0 for number in ids):
        raise InvalidArgument("ID", "Value must be array of integers")
    return [number for number in ids if number is not None] or None


def parse_message_ids(raw: object) -> list[str] | None:
    """A list of MESSAGE_ID values (32 characters each, trimmed): None when absent or empty.

    Raises: InvalidArgument (MESSAGE_ID) otherwise."""
    values = _list(raw, "MESSAGE_ID", "Value must be array of MESSAGE_ID values")
    ids = [value.strip() if isinstance(value, str) else "" for value in values]
    if any(len(message_id) != 32 for message_id in ids):
        raise InvalidArgument("MESSAGE_ID", "Value must be array of MESSAGE_ID values")
    return ids or None


def _entries(raw: object, argument: str) -> dict[str, object]:
    if raw is None or raw == [] or raw == "":
        return {}
    if not isinstance(raw, dict):
        raise InvalidArgument(argument, "must be an object of field: value")
    if len(raw) > MAX_VALUES:
        raise InvalidArgument(argument, f"has more than {MAX_VALUES} keys")
    return raw


def _list(raw: object, argument: str, message: str) -> list[object]:
    if raw is None:
        return []
    if isinstance(raw, dict):  # a PHP array with keys: its values
        raw = list(raw.values())
    if not isinstance(raw, list):
        raise InvalidArgument(argument, message)
    if len(raw) > MAX_VALUES:
        raise InvalidArgument(argument, f"holds more than {MAX_VALUES} values")
    return raw


def _field(key: str, fields: Collection[OfflineField], argument: str) -> OfflineField:
    try:
        field = OfflineField(key.upper())
    except ValueError:
        field = None
    if field is None or field not in fields:
        known = ", ".join(field.value for field in fields)
        raise InvalidArgument(argument, f"unknown field {key[:64]!r}; known: {known}")
    return field


def _term(key: str, value: object, fields: Collection[OfflineField]) -> OfflineTerm:
    prefix, name = _KEY.fullmatch(key).groups()  # type: ignore[union-attr]  # matches any string
    comparison = _PREFIXES[prefix or ""]
    field = _field(name, fields, "FILTER")
    values = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else [value]
    if not values or (len(values) > 1 and comparison not in (Comparison.EQUAL, Comparison.NOT_EQUAL)):
        raise InvalidArgument("FILTER", f"{key[:64]!r} takes one value")
    if len(values) > MAX_VALUES:
        raise InvalidArgument("FILTER", f"{key[:64]!r} has more than {MAX_VALUES} values")
    return OfflineTerm(field, comparison, tuple(_value(field, item, key) for item in values))


def _value(field: OfflineField, value: object, key: str) -> Value:
    converted: Value | None
    if field is OfflineField.ID:
        converted = _integer(value)
    elif field is OfflineField.TIMESTAMP_X:
        converted = _moment(value)
    elif field is OfflineField.ERROR:
        converted = _FLAGS.get(str(value)) if isinstance(value, (str, int)) else None
        converted = value if isinstance(value, bool) else converted
    else:
        converted = value if isinstance(value, str) else None
        if converted is not None and field is OfflineField.EVENT_NAME:
            converted = converted.upper()  # names are case-insensitive, stored upper case
    if converted is None:
        raise InvalidArgument("FILTER", f"{key[:64]!r} has a value of the wrong kind")
    return converted


def _integer(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        number = int(value)
    else:
        return None
    return number if -INT64 <= number <= INT64 else None


def _moment(value: object) -> float | None:
    """An ISO 8601 time (`2026-03-16T12:42:08+02:00`; without an offset, the server's zone) as Unix time."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return datetime.fromisoformat(value.strip()).timestamp()
    except ValueError:
        return None
