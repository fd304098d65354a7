"""Helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import time


def wait_for(predicate, timeout: float, what: str):
    """Poll ``predicate`` every half second until it returns something truthy (returned);
    an ``AssertionError`` naming ``what`` after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")
