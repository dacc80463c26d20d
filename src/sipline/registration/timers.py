"""One heap of deadlines for every line, transaction, keep-alive and wake-up of the engine (sans-IO).

An entry is any object with `next_deadline()`. It is pushed with the deadline it
had then; when its deadline moves it is pushed again, and the old copy goes stale
(its deadline no longer matches) and is dropped when it reaches the top, instead
of firing for nothing.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from typing import Protocol


class Timed(Protocol):
    def next_deadline(self) -> float | None: ...


class TimerHeap:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timed]] = []
        self._seq = itertools.count()  # ties keep their order, entries are never compared

    def push(self, deadline: float | None, entry: Timed) -> None:
        if deadline is not None:
            heapq.heappush(self._heap, (deadline, next(self._seq), entry))

    def due(self, now: float) -> Iterator[Timed]:
        """The live entries due by `now`, earliest first; those pushed while this runs included."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, entry = heapq.heappop(heap)
            if entry.next_deadline() == deadline:
                yield entry

    def next_deadline(self) -> float | None:
        """The earliest live deadline; stale entries on top are dropped on the way."""
        heap = self._heap
        while heap and heap[0][2].next_deadline() != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def __len__(self) -> int:
        return len(self._heap)
