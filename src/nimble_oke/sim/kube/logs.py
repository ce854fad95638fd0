"""Container logs per (namespace, pod, container): the current and the previous instance."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

LogKey = tuple[str, str, str]

_MAX_LINES = 10_000


class LogBook:
    """What ``kubectl logs`` shows; ``follow`` streams until the container ends."""

    def __init__(self) -> None:
        self._current: dict[LogKey, list[str]] = {}
        self._previous: dict[LogKey, list[str]] = {}
        self._dropped: dict[LogKey, int] = {}
        self._instance: dict[LogKey, int] = {}
        self._closed: set[LogKey] = set()

    def start(self, key: LogKey) -> None:
        """A new container instance: the last one becomes ``--previous``."""
        if key in self._current:
            self._previous[key] = self._current[key]
        self._current[key] = []
        self._dropped[key] = 0
        self._instance[key] = self._instance.get(key, 0) + 1
        self._closed.discard(key)

    def write(self, key: LogKey, line: str) -> None:
        lines = self._current.setdefault(key, [])
        lines.append(line)
        if len(lines) > _MAX_LINES:
            del lines[: len(lines) - _MAX_LINES]
            self._dropped[key] = self._dropped.get(key, 0) + 1

    def close(self, key: LogKey) -> None:
        self._closed.add(key)

    def forget_pod(self, namespace: str, pod: str) -> None:
        stores: list[dict[LogKey, Any]] = [
            self._current,
            self._previous,
            self._dropped,
            self._instance,
        ]
        for store in stores:
            for key in [k for k in store if k[:2] == (namespace, pod)]:
                del store[key]

    def has(self, key: LogKey, previous: bool = False) -> bool:
        return key in (self._previous if previous else self._current)

    def lines(self, key: LogKey, previous: bool = False) -> list[str]:
        return list((self._previous if previous else self._current).get(key, []))

    def cursor(self, key: LogKey) -> tuple[int, int]:
        return self._instance.get(key, 0), len(self._current.get(key, [])) + self._dropped.get(
            key, 0
        )

    async def follow(
        self, key: LogKey, cursor: tuple[int, int], stopping: asyncio.Event
    ) -> AsyncIterator[str]:
        instance, position = cursor
        while not stopping.is_set():
            if self._instance.get(key) != instance:
                return
            lines = self._current.get(key, [])
            start = position - self._dropped.get(key, 0)
            if start < len(lines):
                for line in lines[max(start, 0) :]:
                    yield line
                position = len(lines) + self._dropped.get(key, 0)
                continue
            if key in self._closed:
                return
            await asyncio.sleep(0.05)
