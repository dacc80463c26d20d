"""Renderings of immutable records, kept per record.

The store hands out the same record objects until the data changes (database.py
`cached`), so what is derived from a record alone need be computed once. Entries
are keyed by identity and hold the record itself, so an id is never reused while
its entry lives; the table is emptied when it reaches its bound.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class IdentityMemo(Generic[K, V]):
    def __init__(self, compute: Callable[[K], V], limit: int) -> None:
        self._compute = compute
        self._limit = limit
        self._entries: dict[int, tuple[K, V]] = {}

    def __call__(self, record: K) -> V:
        entry = self._entries.get(id(record))
        if entry is not None and entry[0] is record:
            return entry[1]
        if len(self._entries) >= self._limit:
            self._entries.clear()
        value = self._compute(record)
        self._entries[id(record)] = (record, value)
        return value
