"""PHP's rules for request variables and scalar casts, as Bitrix24 applies them.

Bitrix24 runs on PHP, so every client encodes parameters for PHP's `parse_str`
(rest-protocol.md §3): `FILTER[CONFIG_ID][]=3` builds nested arrays, a top-level
name has ` ` and `.` turned into `_`, and a map keyed exactly 0..n-1 is a list.
The algorithm follows php_register_variable_ex() in PHP's main/php_variables.c.

A PHP array becomes a Python list when its keys are 0..n-1 in order, otherwise a
dict with string keys; leaves are strings.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import TypeGuard
from urllib.parse import unquote_to_bytes

# PHP's defaults: max_input_vars = 1000, max_input_nesting_level = 64.
MAX_INPUT_VARS = 1000
MAX_NESTING = 64

_CANONICAL_INT = re.compile(r"(0|-?[1-9][0-9]*)\Z")  # "-0" and "07" stay strings
_INT64 = 2**63
# PHP 8 numeric-prefix rule for (int)"…": leading whitespace, sign, digits, fraction, exponent.
_NUMERIC_PREFIX = re.compile(r"[ \t\n\r\v\f]*([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")


class NotUtf8(ValueError):
    """A percent-decoded name or value is not valid UTF-8."""


class _PhpArray:
    """An ordered PHP array: keys are int or str, `append` uses the next free int."""

    __slots__ = ("items", "next_index")

    def __init__(self) -> None:
        self.items: dict[int | str, object] = {}
        self.next_index = 0

    def set(self, key: int | str | None, value: object) -> None:
        if key is None:
            key = self.next_index
        if isinstance(key, int) and key >= self.next_index:
            self.next_index = key + 1
        self.items[key] = value

    def child(self, key: int | str | None) -> _PhpArray:
        """The array at `key`, created (or replacing a scalar) as PHP does."""
        node = self.items.get(key) if key is not None else None
        if not isinstance(node, _PhpArray):
            node = _PhpArray()
            self.set(key, node)
        return node


def symtable_key(key: str) -> int | str:
    """PHP turns canonical decimal strings into integer keys."""
    if _CANONICAL_INT.match(key):
        number = int(key)
        if -_INT64 <= number < _INT64:
            return number
    return key


def _split_name(name: str) -> tuple[str, list[str | None]] | None:
    """Base name and bracket indices (None = `[]`), or None if PHP drops the variable."""
    name = name.lstrip(" ")
    bracket = name.find("[")
    base = (name if bracket < 0 else name[:bracket]).replace(" ", "_").replace(".", "_")
    if not base:
        return None
    indices: list[str | None] = []
    pos = bracket
    while pos >= 0:
        if len(indices) >= MAX_NESTING:
            return None
        start = pos + 1
        probe = start + 1 if name[start:start + 1] == " " else start
        if name[probe:probe + 1] == "]":
            close, index = probe, None
        else:
            close = name.find("]", probe)
            if close < 0:
                if not indices:  # no closing bracket: `[` is part of the name
                    rest = re.sub(r"[ .\[]", "_", name[start:])
                    return base + "_" + rest, []
                break
            index = name[start:close]
        indices.append(index)
        pos = close + 1 if name[close + 1:close + 2] == "[" else -1
    return base, indices


def _decode(raw: bytes) -> str:
    try:
        return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotUtf8("parameters must be UTF-8") from exc


def parse_query(query: bytes) -> dict[str, object]:
    """Decode `a=1&b[c][]=2` like PHP's parse_str.

    Raises:
        NotUtf8: a name or value does not decode as UTF-8.
    """
    return register_pairs(
        (_decode(name), _decode(value))
        for name, _, value in (pair.partition(b"=") for pair in query.split(b"&") if pair)
    )


def register_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, object]:
    """Build the PHP variable tree from decoded (name, value) pairs."""
    root = _PhpArray()
    key: int | str | None  # None: `[]`, the next free index
    for count, (name, value) in enumerate(pairs):
        if count >= MAX_INPUT_VARS:
            break
        split = _split_name(name)
        if split is None:
            continue
        base, indices = split
        node, key = root, symtable_key(base)
        for index in indices:
            node, key = node.child(key), (None if index is None else symtable_key(index))
        node.set(key, value)
    top = _array_to_python(root)
    return top if isinstance(top, dict) else {str(i): v for i, v in enumerate(top)}


def to_python(value: object) -> object:
    """PHP array → list (keys 0..n-1 in order) or dict with str keys."""
    return _array_to_python(value) if isinstance(value, _PhpArray) else value


def _array_to_python(array: _PhpArray) -> list[object] | dict[str, object]:
    items = array.items
    if all(key == position for position, key in enumerate(items)):
        return [to_python(v) for v in items.values()]
    return {str(k): to_python(v) for k, v in items.items()}


Scalar = str | int | float | bool


def is_scalar(value: object) -> TypeGuard[Scalar]:
    return isinstance(value, (str, int, float, bool))


def strval(value: Scalar) -> str:
    """PHP (string) cast of a scalar: true → "1", false → "", 2.0 → "2"."""
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value).replace("e+", "E+").replace("e-", "E-")
    return str(value)


def intval(value: object) -> int:
    """PHP (int) cast: "7abc" → 7, "abc" → 0, 3.9 → 3, true → 1; clamped to int64."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        number = 0 if math.isnan(value) or math.isinf(value) else int(value)
    elif isinstance(value, str):
        match = _NUMERIC_PREFIX.match(value)
        if not match:
            return 0
        text = match.group(1)
        number = _decimal(text) if text.lstrip("+-").isdigit() else _float_to_int(float(text))
    elif isinstance(value, (list, dict)):
        return 1 if value else 0
    else:
        return 0
    return max(-_INT64, min(_INT64 - 1, number))


def _decimal(text: str) -> int:
    """An optionally signed run of ASCII digits of any length; past int64 it only needs to saturate
    (and int() refuses a run of over 4300 digits)."""
    sign = -1 if text[0] == "-" else 1
    digits = text.lstrip("+-").lstrip("0") or "0"
    return sign * (int(digits) if len(digits) <= 19 else _INT64)


def _float_to_int(number: float) -> int:
    return 0 if math.isinf(number) or math.isnan(number) else int(number)


def truthy(value: object) -> bool:
    """PHP truthiness: false iff "", "0", 0, 0.0, false, null or an empty array."""
    if isinstance(value, str):
        return value not in ("", "0")
    return bool(value)
