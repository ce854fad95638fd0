"""A simulated clock shared by the simulators (OCI API, Kubernetes API, NIM emulator).

Simulated time runs ``scale`` times faster than real time, so a 12-minute OKE cluster
create takes 1.2 real seconds at ``scale=600``. Tests can also jump ahead with
:meth:`SimClock.advance` (e.g. to expire a lease) without waiting.

All simulators measure durations, lifetimes and billing in *simulated* seconds taken
from one clock, so what the cost engine accrues can be compared with what the
simulated cloud bills.
"""

from __future__ import annotations

import asyncio
import threading
import time


class SimClock:
    """Monotonic simulated time in seconds, starting at ``epoch`` (Unix seconds)."""

    def __init__(self, scale: float = 1.0, epoch: float | None = None) -> None:
        if scale <= 0:
            raise ValueError(f"time scale must be > 0, got {scale}")
        self._scale = float(scale)
        self._epoch = time.time() if epoch is None else float(epoch)
        self._t0 = time.monotonic()
        self._offset = 0.0
        self._lock = threading.Lock()

    @property
    def scale(self) -> float:
        """Simulated seconds per real second."""
        return self._scale

    def now(self) -> float:
        """Simulated seconds since the clock started."""
        with self._lock:
            return (time.monotonic() - self._t0) * self._scale + self._offset

    def wall(self) -> float:
        """Simulated Unix time (epoch + now), for timestamps shown to clients."""
        return self._epoch + self.now()

    def advance(self, seconds: float) -> None:
        """Jump simulated time forward (never backward)."""
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        with self._lock:
            self._offset += seconds

    def set_scale(self, scale: float) -> None:
        """Change the speed from now on (simulated time stays continuous). The demo runs
        real-time work (smoke tests, benchmarks) at scale 1 so it is billed as it really
        takes, then speeds up again for teardown."""
        if scale <= 0:
            raise ValueError(f"time scale must be > 0, got {scale}")
        with self._lock:
            current = (time.monotonic() - self._t0) * self._scale + self._offset
            self._t0 = time.monotonic()
            self._offset = current
            self._scale = float(scale)

    def real_seconds(self, sim_seconds: float) -> float:
        """How long ``sim_seconds`` of simulated time takes in real time."""
        return max(0.0, sim_seconds) / self._scale

    def sleep(self, sim_seconds: float) -> None:
        """Block for ``sim_seconds`` of simulated time (ignores later :meth:`advance`)."""
        time.sleep(self.real_seconds(sim_seconds))

    async def asleep(self, sim_seconds: float) -> None:
        """Await ``sim_seconds`` of simulated time."""
        await asyncio.sleep(self.real_seconds(sim_seconds))

    async def wait_until(self, sim_time: float, poll: float = 0.05) -> None:
        """Await until simulated time reaches ``sim_time``; honours :meth:`advance`."""
        while True:
            remaining = sim_time - self.now()
            if remaining <= 0:
                return
            await asyncio.sleep(min(self.real_seconds(remaining), poll))
