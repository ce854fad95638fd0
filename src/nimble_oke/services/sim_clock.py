"""The simulated stack's clock, read from another process through its admin API.

Used by the sim target (:mod:`nimble_oke.services.targets`), by the simulator service's
``advance`` (:mod:`nimble_oke.services.sim_service`) and by cost accrual. Its own module so
that the target registry may depend on the simulator service without an import cycle.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import weakref
from typing import Any

# The event clock jumps over provisioning: as a bound for timeouts, simulated time passes
# at least this many times faster than real time while something is being provisioned.
EVENT_CLOCK_TIMEOUT_SCALE = 20.0

BEAT_S = 0.1  # heartbeat period (the simulator drops a participant silent for 1.5 s)
BUSY_FRACTION = 0.3  # share of a beat period on (or waiting for) a CPU that counts as busy


class SimClockClient:
    """The simulated stack's clock, read from another process through its admin API.

    ``now()`` asks the simulator each time (its clock may jump at any moment). After
    :meth:`join` this process is a *participant* of simulated time: a daemon thread beats
    every :data:`BEAT_S` and tells whether the joining thread computed meanwhile (the clock
    does not jump while it does: client CPU is not magnified into simulated minutes), and
    :meth:`sleep` is a long-poll the clock may jump to the end of. A killed process stops
    beating and the simulator forgets it within ~2 s: nothing is left changed."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url.rstrip("/")
        if not self.admin_url.startswith("http://127.0.0.1:"):
            raise ValueError(f"the simulator admin API must be on 127.0.0.1, got {self.admin_url}")
        self._port = int(self.admin_url.rsplit(":", 1)[1])
        self._snap = self._request("GET", "/admin/clock")
        self._heart: _Heartbeat | None = None

    @property
    def mode(self) -> str:
        return str(self._snap.get("mode", "scaled"))

    @property
    def timeout_scale(self) -> float:
        """Simulated seconds per real second to assume for timeouts."""
        if self.mode == "event":
            return EVENT_CLOCK_TIMEOUT_SCALE
        return float(self._snap.get("scale", 1.0))

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 10
    ) -> dict[str, Any]:
        return _admin_request(self._port, method, path, body, timeout)

    def now(self) -> float:
        self._snap = self._request("GET", "/admin/clock")
        return float(self._snap["sim_now"])

    def advance(self, seconds: float) -> None:
        """Jump the simulated clock forward by ``seconds``, playing what falls inside in
        order (answers once done)."""
        self._snap = self._request("POST", "/admin/clock", {"advance": seconds}, timeout=3600)

    # --- participation ------------------------------------------------------------------------
    def join(self) -> None:
        """Take part in simulated time (idempotent). The heartbeat stops, and this process
        leaves, when this client is dropped or the process exits."""
        if self._heart is not None and self._heart.alive():
            return
        thread = threading.current_thread()
        answer = self._request("POST", "/admin/participants", {"thread": thread.name})
        self._heart = _Heartbeat(self._port, str(answer["id"]), threading.get_native_id())
        weakref.finalize(self, self._heart.stop)

    @property
    def ident(self) -> str | None:
        return self._heart.ident if self._heart is not None and self._heart.alive() else None

    def leave(self) -> None:
        if self._heart is not None:
            self._heart.stop()

    def sleep(self, sim_seconds: float, wake_on: tuple[str, ...] = ()) -> None:
        """Sleep ``sim_seconds`` of simulated time (or until one of ``wake_on`` changes,
        e.g. ``"oci"``: any lifecycle event in the simulated cloud)."""
        sim_seconds = max(0.0, float(sim_seconds))
        if self.ident is not None:
            body = {"seconds": sim_seconds, "wake_on": list(wake_on)}
            try:
                self._snap = self._request(
                    "POST", f"/admin/participants/{self.ident}/sleep", body, sim_seconds + 30
                )
                return
            except (LookupError, OSError, ValueError):
                pass  # not a participant (any more): a short real sleep instead
        time.sleep(min(sim_seconds / float(self._snap.get("scale", 1.0)), 0.05))


class _Heartbeat:
    """A participant's heartbeat: a daemon thread beating every :data:`BEAT_S` with
    whether thread ``tid`` computed meanwhile. Holds no reference to its client, so a
    dropped client stops it (``weakref.finalize``), as does the process's exit."""

    def __init__(self, port: int, ident: str, tid: int) -> None:
        self.port, self.ident, self.tid = port, ident, tid
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-clock-beat", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    def stop(self) -> None:
        """Stop beating and leave (the simulator forgets this participant at once)."""
        if self._stop.is_set():
            return
        self._stop.set()
        with contextlib.suppress(Exception):
            _admin_request(self.port, "DELETE", f"/admin/participants/{self.ident}", None, 2)

    def _run(self) -> None:
        failures = 0
        last = _cpu_ns(self.tid)
        while not self._stop.wait(BEAT_S):
            current = _cpu_ns(self.tid)
            busy: bool | None = None
            if current is not None and last is not None:
                busy = current - last > BUSY_FRACTION * BEAT_S * 1e9
            last = current
            path = f"/admin/participants/{self.ident}/beat"
            try:
                _admin_request(self.port, "POST", path, {"busy": busy}, 2)
                failures = 0
            except LookupError:
                break  # forgotten (the simulator restarted): sleeps fall back
            except (OSError, ValueError):
                failures += 1
                if failures >= 20:  # the simulator is gone
                    break
        self._stop.set()


def _admin_request(
    port: int, method: str, path: str, body: dict[str, Any] | None, timeout: float
) -> dict[str, Any]:
    """One call to the simulator's admin API on 127.0.0.1 (a connection per call)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"content-type": "application/json"})
        resp = conn.getresponse()
        payload = resp.read()
    except http.client.HTTPException as exc:
        raise OSError(f"simulator admin API: {exc}") from exc
    finally:
        conn.close()
    answer: dict[str, Any] = json.loads(payload or b"{}")
    if resp.status == 404:
        raise LookupError(str(answer.get("error", "not found")))
    if resp.status >= 400:
        raise ValueError(str(answer.get("error", f"HTTP {resp.status}")))
    return answer


def _cpu_ns(tid: int) -> int | None:
    """Nanoseconds thread ``tid`` of this process spent on a CPU or waiting for one
    (``/proc/self/task/<tid>/schedstat``), or None where the kernel does not say."""
    try:
        with open(f"/proc/self/task/{tid}/schedstat", encoding="ascii") as f:
            on_cpu, waiting, _slices = f.read().split()
    except (OSError, ValueError):
        return None
    return int(on_cpu) + int(waiting)
