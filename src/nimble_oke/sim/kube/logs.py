"""Container logs per (namespace, pod, container): the current and the previous instance."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

LogKey = tuple[str, str, str]

_MAX_LINES = 10_000


class LogBook:
    """What ``kubectl logs`` shows; ``follow`` streams until the container ends."""

    def __init__(self) -> None:
        # when a line was written (simulated wall time once the kubelet sets it): what
        # ``--timestamps``, ``--since`` and ``--since-time`` read
        self.now: Callable[[], float] = time.time
        self._stamps: dict[LogKey, list[float]] = {}
        self._previous_stamps: dict[LogKey, list[float]] = {}
        self._current: dict[LogKey, list[str]] = {}
        self._previous: dict[LogKey, list[str]] = {}
        self._dropped: dict[LogKey, int] = {}
        self._instance: dict[LogKey, int] = {}
        self._closed: set[LogKey] = set()

    def start(self, key: LogKey) -> None:
        """A new container instance: the last one becomes ``--previous``."""
        if key in self._current:
            self._previous[key] = self._current[key]
            self._previous_stamps[key] = self._stamps.get(key, [])
        self._current[key] = []
        self._stamps[key] = []
        self._dropped[key] = 0
        self._instance[key] = self._instance.get(key, 0) + 1
        self._closed.discard(key)

    def write(self, key: LogKey, line: str) -> None:
        lines = self._current.setdefault(key, [])
        stamps = self._stamps.setdefault(key, [])
        lines.append(line)
        stamps.append(self.now())
        if len(lines) > _MAX_LINES:
            del lines[: len(lines) - _MAX_LINES]
            del stamps[: len(stamps) - _MAX_LINES]
            self._dropped[key] = self._dropped.get(key, 0) + 1

    def close(self, key: LogKey) -> None:
        self._closed.add(key)

    def forget_pod(self, namespace: str, pod: str) -> None:
        stores: list[dict[LogKey, Any]] = [
            self._current,
            self._previous,
            self._stamps,
            self._previous_stamps,
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

    def entries(self, key: LogKey, previous: bool = False) -> list[tuple[float, str]]:
        """(written at, line) pairs."""
        lines = (self._previous if previous else self._current).get(key, [])
        stamps = (self._previous_stamps if previous else self._stamps).get(key, [])
        return list(zip(stamps, lines, strict=False))

    def stamp_at(self, key: LogKey, position: int) -> float:
        """When the line at absolute ``position`` (as :meth:`follow` counts) was written."""
        stamps = self._stamps.get(key, [])
        index = position - self._dropped.get(key, 0)
        return stamps[index] if 0 <= index < len(stamps) else self.now()

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


class LogOptions:
    """``PodLogOptions`` from the query: ``timestamps``, ``sinceSeconds``/``sinceTime``
    (mutually exclusive), ``tailLines``, ``limitBytes`` — applied in the kubelet's order
    (since, then tail, then the byte limit)."""

    def __init__(self, query: Any, now: float) -> None:
        from . import apierrors
        from .wire.protobuf import ProtobufError, parse_rfc3339

        self.timestamps = (query.get("timestamps") or "").lower() in ("1", "true")
        self.since: float | None = None
        if query.get("sinceSeconds") and query.get("sinceTime"):
            raise apierrors.invalid(
                "PodLogOptions",
                "",
                [
                    (
                        "",
                        "FieldValueForbidden",
                        "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified",
                    )
                ],
            )
        try:
            if query.get("sinceSeconds"):
                seconds = int(query["sinceSeconds"])
                if seconds < 1:
                    raise ValueError(seconds)
                self.since = now - seconds
            elif query.get("sinceTime"):
                self.since = float(parse_rfc3339(query["sinceTime"])[0])
            tail = query.get("tailLines")
            self.tail = int(tail) if tail is not None else None
            limit = query.get("limitBytes")
            self.limit = int(limit) if limit is not None else None
        except (ValueError, ProtobufError) as exc:
            raise apierrors.bad_request(f"invalid log options: {exc}") from exc

    def select(self, entries: list[tuple[float, str]]) -> list[tuple[float, str]]:
        if self.since is not None:
            entries = [e for e in entries if e[0] >= self.since]
        if self.tail is not None:
            entries = entries[-self.tail :] if self.tail > 0 else []
        return entries

    def line(self, stamp: float, text: str) -> bytes:
        if not self.timestamps:
            return (text + "\n").encode()
        return f"{rfc3339_nano(stamp)} {text}\n".encode()


def rfc3339_nano(stamp: float) -> str:
    """Go's RFC3339Nano in UTC (trailing zeros of the fraction trimmed)."""
    whole = int(stamp)
    fraction = f"{stamp - whole:.9f}"[2:].rstrip("0")
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{text}{'.' + fraction if fraction else ''}Z"
