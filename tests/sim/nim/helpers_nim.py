"""Shared helpers for the NIM emulator tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from openai import AsyncOpenAI

from nimble_oke.ngc_keys import throwaway_key
from nimble_oke.sim.nim import NimEmulator, NimSettings
from nimble_oke.sim.nim.catalog import TINY_MODEL

GOOD_KEY = throwaway_key()


def settings_for(cache: Path, **overrides: Any) -> NimSettings:
    env = {"NIM_CACHE_PATH": str(cache), "NGC_API_KEY": GOOD_KEY}
    env.update(overrides.pop("env", {}))
    kwargs: dict[str, Any] = {"model": TINY_MODEL, "time_scale": 2000.0}
    kwargs.update(overrides)
    return NimSettings.from_env(env, **kwargs)


@contextlib.asynccontextmanager
async def running(settings: NimSettings, *, wait: bool = True) -> AsyncIterator[NimEmulator]:
    emu = NimEmulator(settings)
    await emu.start()
    try:
        if wait:
            assert await emu.wait_ready(10) == "ready", emu.failure
        yield emu
    finally:
        await emu.stop()


def base_url(emu: NimEmulator) -> str:
    return f"http://127.0.0.1:{emu.port}"


@contextlib.asynccontextmanager
async def with_openai(settings: NimSettings) -> AsyncIterator[tuple[NimEmulator, AsyncOpenAI]]:
    """A ready emulator and an official AsyncOpenAI client pointed at it."""
    async with (
        running(settings) as emu,
        AsyncOpenAI(base_url=base_url(emu) + "/v1", api_key="none") as client,
    ):
        yield emu, client
