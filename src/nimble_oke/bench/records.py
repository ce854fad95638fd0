"""Raw per-request measurements written by the hot path.

The hot path stores only integers (``perf_counter_ns`` timestamps, HTTP status, byte
offsets) into preallocated numpy arrays and keeps each request's raw response bytes; it
never parses JSON. Everything else (SSE splitting, token accounting, statistics) happens
after the run, in :mod:`nimble_oke.bench.analysis`.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
UNSET = -1


class ErrorKind(IntEnum):
    """Why a request failed (``NONE`` for success). Failures are data, not exceptions."""

    NONE = 0
    HTTP_4XX = 1
    HTTP_5XX = 2
    TIMEOUT = 3
    CONNECTION_REFUSED = 4
    CONNECTION_ERROR = 5
    STREAM_ERROR = 6  # an error event inside the SSE stream
    INCOMPLETE = 7  # the stream ended without any content or without [DONE]
    NOT_SENT = 8  # scheduled but never sent (the run ended first)

    @property
    def label(self) -> str:
        """The lower-case name used in reports (``http_5xx``, ``timeout``...)."""
        return self.name.lower()


@dataclass(slots=True)
class Chunks:
    """The reads of one response: arrival times and cumulative end offsets in ``body``.

    ``body`` is what the socket delivered; the response body proper starts at ``start``
    (after the HTTP head) and is in chunked transfer encoding when ``chunked`` is set —
    :func:`nimble_oke.bench.http1.decode_body` removes the framing after the run."""

    times_ns: array[int] = field(default_factory=lambda: array("q"))
    ends: array[int] = field(default_factory=lambda: array("q"))
    body: bytes = b""
    start: int = 0
    chunked: bool = False


class RequestStore:
    """Preallocated columns, one row per request index; grows by doubling if needed."""

    def __init__(self, capacity: int) -> None:
        capacity = max(1, capacity)
        self.intended_ns: I64 = np.full(capacity, UNSET, dtype=np.int64)
        self.send_ns: I64 = np.full(capacity, UNSET, dtype=np.int64)
        self.headers_ns: I64 = np.full(capacity, UNSET, dtype=np.int64)
        self.end_ns: I64 = np.full(capacity, UNSET, dtype=np.int64)
        self.status: I64 = np.zeros(capacity, dtype=np.int64)
        self.error: I64 = np.zeros(capacity, dtype=np.int64)
        self.chunks: list[Chunks | None] = [None] * capacity
        self.messages: dict[int, str] = {}
        self.count = 0

    @property
    def capacity(self) -> int:
        """Rows allocated."""
        return len(self.send_ns)

    def reserve(self, index: int) -> None:
        """Make sure row ``index`` exists (called at dispatch, before the request is sent)."""
        if index >= self.capacity:
            new = max(index + 1, 2 * self.capacity)
            for name in ("intended_ns", "send_ns", "headers_ns", "end_ns"):
                old: I64 = getattr(self, name)
                grown = np.full(new, UNSET, dtype=np.int64)
                grown[: len(old)] = old
                setattr(self, name, grown)
            for name in ("status", "error"):
                old = getattr(self, name)
                grown = np.zeros(new, dtype=np.int64)
                grown[: len(old)] = old
                setattr(self, name, grown)
            self.chunks.extend([None] * (new - len(self.chunks)))
        self.count = max(self.count, index + 1)

    def fail(self, index: int, kind: ErrorKind, message: str) -> None:
        """Record a failed request (message truncated; never contains request headers)."""
        self.error[index] = int(kind)
        self.messages[index] = message[:300]

    def trimmed(self) -> RequestStore:
        """A copy holding only the ``count`` rows used."""
        n = self.count
        out = RequestStore(n)
        for name in ("intended_ns", "send_ns", "headers_ns", "end_ns", "status", "error"):
            setattr(out, name, getattr(self, name)[:n].copy())
        out.chunks = self.chunks[:n]
        out.messages = {k: v for k, v in self.messages.items() if k < n}
        out.count = n
        return out
