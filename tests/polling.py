"""Polling for tests that watch the simulators converge (importable from every test: the
rootdir conftest puts this folder on sys.path)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(probe: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll ``probe`` until it returns something truthy (real seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
