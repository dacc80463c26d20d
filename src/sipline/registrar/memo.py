"""A bounded memo for values that come from the network (docs/behaviour.md#office-abuse: state a sender cannot grow)."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, wraps
from typing import TypeVar

T = TypeVar("T")
MAX_REMEMBERED_TEXT = 512  # characters: a PBX's To or Contact is far shorter; longer ones are parsed each time


def short_text_memo(maxsize: int) -> Callable[[Callable[[str], T]], Callable[[str], T]]:
    """`lru_cache(maxsize)` for texts up to MAX_REMEMBERED_TEXT characters, so that the memo holds at
    most maxsize × MAX_REMEMBERED_TEXT characters whatever it is sent."""

    def decorate(parse: Callable[[str], T]) -> Callable[[str], T]:
        remembered = lru_cache(maxsize=maxsize)(parse)

        @wraps(parse)
        def lookup(text: str) -> T:
            return remembered(text) if len(text) <= MAX_REMEMBERED_TEXT else parse(text)

        return lookup

    return decorate
