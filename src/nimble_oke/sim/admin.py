"""A small admin API for the simulated stack (127.0.0.1 only), for other processes:

- ``GET /admin/clock`` → ``{"sim_now": …, "real_now": …, "scale": …}`` (simulated Unix time);
- ``POST /admin/clock {"scale": X}`` → run the simulated clock at X (real-time phases such
  as smoke tests and benchmarks run at 1 so they are billed as they really take);
- ``GET /admin/inventory`` → what is alive in both simulators (the leak check).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from aiohttp import web

MAX_ADVANCE_S = 30 * 86400.0  # a month: longer than any lease nimble grants


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
        app.router.add_get("/admin/inventory", self._inventory)
        return app

    def _snapshot(self) -> dict[str, float]:
        clock = self.stack.clock
        return {"sim_now": clock.wall(), "real_now": time.time(), "scale": clock.scale}

    async def _clock(self, _request: web.Request) -> web.Response:
        return web.json_response(self._snapshot())

    async def _set_clock(self, request: web.Request) -> web.Response:
        """``{"scale": s}`` changes the speed; ``{"advance": seconds}`` jumps forward (the
        laptop closed for that long: the cloud's controllers, billing and the in-cluster
        watchdog all see the time pass)."""
        try:
            body = await request.json()
            if not isinstance(body, dict) or not ({"scale", "advance"} & set(body)):
                raise ValueError("no 'scale' or 'advance' given")
            scale = float(body["scale"]) if "scale" in body else None
            advance = float(body["advance"]) if "advance" in body else None
            if scale is not None and not scale > 0:
                raise ValueError("scale must be > 0")
            if advance is not None and not 0 < advance <= MAX_ADVANCE_S:
                raise ValueError(f"advance must be > 0 and ≤ {MAX_ADVANCE_S:.0f} seconds")
        except (ValueError, TypeError) as exc:
            return web.json_response(
                {"error": f"expected {{'scale': > 0}} and/or {{'advance': seconds}}: {exc}"},
                status=400,
            )
        if scale is not None:
            self.stack.clock.set_scale(scale)
        if advance is not None:
            self.stack.clock.advance(advance)
        return web.json_response(self._snapshot())

    async def _inventory(self, _request: web.Request) -> web.Response:
        oci = await asyncio.to_thread(self.stack.oci.inventory)
        kube = await asyncio.to_thread(self.stack.leftovers)
        return web.json_response({"oci": oci, "leftovers": kube}, dumps=_dumps)

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
        self._runner = web.AppRunner(self._app(), access_log=None)
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
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


def _dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, default=str)
