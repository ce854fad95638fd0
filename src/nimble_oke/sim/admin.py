"""A small admin API for the simulated stack (127.0.0.1 only), for other processes:

- ``GET /admin/clock`` → ``{"sim_now": …, "real_now": …, "scale": …, "mode": …}``
  (simulated Unix time; ``mode`` ``event`` or ``scaled``, see :mod:`nimble_oke.sim.clock`);
- ``POST /admin/clock {"advance": seconds}`` → move the clock forward, playing in order
  what falls inside (``nimble sim advance``); answers when done. The clock's speed is not
  settable: no client changes time for the others;
- ``POST /admin/participants {"thread": name}`` → ``{"id": …}``: a client process takes
  part in simulated time; ``POST /admin/participants/{id}/beat {"busy": bool|null}`` every
  ~0.1 s (missed for 1.5 s: dropped); ``POST /admin/participants/{id}/sleep {"seconds": s,
  "wake_on": ["oci"]}`` long-polls until the simulated clock has moved ``s`` seconds on (or
  the simulated cloud changed), answering the clock snapshot; ``DELETE …/{id}`` leaves;
- ``GET /admin/inventory`` → what is alive in the OCI simulator and in every cluster's
  Kubernetes API (the leak check), and the clusters' API servers;
- ``GET /admin/clusters`` → every cluster's own Kubernetes API server.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from aiohttp import web

MAX_ADVANCE_S = 30 * 86400.0  # a month: longer than any lease nimble grants
MAX_SLEEP_S = 86400.0
TOPICS = frozenset({"oci"})


class AdminServer:
    def __init__(self, stack: Any, host: str = "127.0.0.1") -> None:
        self.stack = stack
        self.host = host
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/admin/clock", self._clock)
        app.router.add_post("/admin/clock", self._set_clock)
        app.router.add_post("/admin/participants", self._join)
        app.router.add_post("/admin/participants/{ident}/beat", self._beat)
        app.router.add_post("/admin/participants/{ident}/sleep", self._sleep)
        app.router.add_delete("/admin/participants/{ident}", self._leave)
        app.router.add_get("/admin/inventory", self._inventory)
        app.router.add_get("/admin/clusters", self._clusters)
        return app

    def _snapshot(self) -> dict[str, Any]:
        clock = self.stack.clock
        return {
            "sim_now": clock.wall(),
            "real_now": time.time(),
            "scale": clock.scale,
            "mode": clock.mode,
        }

    async def _clock(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {
                **self._snapshot(),
                "pending": self.stack.clock.pending(),
                "participants": self.stack.clock.participants(),
            }
        )

    async def _set_clock(self, request: web.Request) -> web.Response:
        """``{"advance": seconds}`` jumps forward (the laptop closed for that long: the
        cloud's controllers, billing and the in-cluster watchdog all see the time pass,
        in order)."""
        try:
            body = await request.json()
            if not isinstance(body, dict) or "advance" not in body:
                raise ValueError(
                    "no 'advance' given (the clock's speed is not settable: no client "
                    "changes simulated time for the others)"
                )
            advance = float(body["advance"])
            if not 0 < advance <= MAX_ADVANCE_S:
                raise ValueError(f"advance must be > 0 and ≤ {MAX_ADVANCE_S:.0f} seconds")
        except (ValueError, TypeError) as exc:
            return web.json_response(
                {"error": f"expected {{'advance': seconds}}: {exc}"}, status=400
            )
        await asyncio.to_thread(self.stack.clock.advance, advance)
        return web.json_response(self._snapshot())

    async def _join(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        ident = self.stack.clock.join(str(body.get("thread", ""))[:80])
        return web.json_response({"id": ident, **self._snapshot()})

    async def _beat(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        busy = body.get("busy")
        known = self.stack.clock.beat(
            request.match_info["ident"], busy if busy is None else bool(busy)
        )
        if not known:
            return web.json_response({"error": "unknown participant"}, status=404)
        return web.json_response({"ok": True})

    async def _sleep(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        try:
            seconds = float(body.get("seconds", "x"))
            if not 0 <= seconds <= MAX_SLEEP_S:
                raise ValueError(f"seconds must be ≥ 0 and ≤ {MAX_SLEEP_S:.0f}")
            topics = frozenset(str(t) for t in body.get("wake_on") or ()) & TOPICS
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": f"expected {{'seconds': s}}: {exc}"}, status=400)
        clock = self.stack.clock
        known = await clock.participant_sleep(
            request.match_info["ident"], clock.now() + seconds, topics
        )
        if not known:
            return web.json_response({"error": "unknown participant"}, status=404)
        return web.json_response(self._snapshot())

    async def _leave(self, request: web.Request) -> web.Response:
        self.stack.clock.leave(request.match_info["ident"])
        return web.json_response({"ok": True})

    async def _inventory(self, _request: web.Request) -> web.Response:
        oci = await asyncio.to_thread(self.stack.oci.inventory)
        kube = await asyncio.to_thread(self.stack.leftovers)
        clusters = await asyncio.to_thread(self.stack.clusters)
        return web.json_response(
            {"oci": oci, "leftovers": kube, "clusters": clusters}, dumps=_dumps
        )

    async def _clusters(self, _request: web.Request) -> web.Response:
        """Every cluster's own Kubernetes API server (id, name, URL, admin kubeconfig)."""
        clusters = await asyncio.to_thread(self.stack.clusters)
        return web.json_response({"clusters": clusters}, dumps=_dumps)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="sim-admin", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        loop.run_until_complete(self._serve())
        loop.run_forever()
        loop.run_until_complete(self._cleanup())
        loop.close()

    async def _serve(self) -> None:
        self._runner = web.AppRunner(self._app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://{self.host}:{port}"
        self._ready.set()

    async def _cleanup(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self.stack.clock.wake_all()  # answer the long-polls before the loop ends
            time.sleep(0.05)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, default=str)
