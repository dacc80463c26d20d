"""PHP's rules for request variables, as Bitrix24 applies them.

Bitrix24 runs on PHP, so every client encodes parameters for PHP's `parse_str`
(docs/behaviour.md#rest-params): `FILTER[CONFIG_ID][]=3` builds nested arrays, a top-level
name has ` ` and `.` turned into `_`, and a map keyed exactly 0..n-1 is a list.
The algorithm follows php_register_variable_ex() in PHP's main/php_variables.c.

A PHP array becomes a Python list when its keys are 0..n-1 in order, otherwise a
dict with string keys; leaves are strings. The casts of the values are PHP's too
(telephony/php_values.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote_to_bytes

from sipline.telephony.php_values import INT64

# PHP's defaults: max_input_vars = 1000, max_input_nesting_level = 64.
MAX_INPUT_VARS = 1000
MAX_NESTING = 64

_CANONICAL_INT = re.compile(r"(0|-?[1-9][0-9]*)\Z")  # "-0" and "07" stay strings


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
        if -INT64 <= number < INT64:
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
        probe = start + 1 if name[start : start + 1] == " " else start
        if name[probe : probe + 1] == "]":
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
        pos = close + 1 if name[close + 1 : close + 2] == "[" else -1
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
