"""The one way tests wait for something another process does: poll a condition until it holds."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float = 10.0, *, interval: float = 0.05,
               message: str | Callable[[], str] = "") -> T:
    """Call `condition` every `interval` s until it returns something true, and return that.

    Raises: AssertionError with `message` (or a callable's answer, worked out at the end) after `timeout` s.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError((message() if callable(message) else message)
                                 or f"{getattr(condition, '__name__', condition)} still false after {timeout} s")
        time.sleep(interval)
