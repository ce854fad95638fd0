"""The NIM Metadata API emulator on 127.0.0.1 for tests of code that runs its own event loop."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def metadata_api() -> Iterator[str]:
    """The NIM Metadata API emulator (sim/nim/metadata_api.py) on 127.0.0.1, on its own
    loop in a thread: doctor runs its own event loop."""
    import asyncio
    import threading

    from aiohttp import web

    from nimble_oke.sim.nim.metadata_api import MetadataApi

    loop = asyncio.new_event_loop()
    runner = web.AppRunner(MetadataApi().app(), access_log=None)

    async def start() -> str:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{runner.addresses[0][1]}/v2"

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
