"""Wait for a condition instead of sleeping for a guessed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.05, what: str = ""
) -> T:
    """Call ``condition`` until it returns a true value, and return that value.

    Raises TimeoutError naming ``what`` when ``timeout`` seconds pass first. Exceptions from
    ``condition`` propagate (e.g. a server process that died while starting).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"gave up after {timeout} s waiting for {what or condition}")
        time.sleep(interval)
