"""The NIM emulator: an OpenAI-compatible aiohttp server that behaves like NVIDIA NIM.

Health (``/v1/health/live``, ``/v1/health/ready``), ``/v1/models``, chat and text
completions with SSE streaming, ``/v1/metrics`` with NIM's metric names, a cold start into
NIM_CACHE_PATH (download → load → engine start, announced in NIM-style logs), and a
continuous-batching performance model calibrated per GPU.

    image = "nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.0"
    settings = NimSettings.from_env(os.environ, image=image)
    emu = NimEmulator(settings)
    port = await emu.start()          # cold start runs in the background
    await emu.wait_ready()            # "ready" or "failed"
    await emu.stop()

From a shell: ``python -m nimble_oke.sim.nim --warm`` (or ``nimble sim nim``).
"""

from nimble_oke.sim.nim.coldstart import PROGRESS_RE, parse_download_percent, warm_cache
from nimble_oke.sim.nim.serve import serve_nim
from nimble_oke.sim.nim.server import PHASES, NimEmulator, RequestRecord
from nimble_oke.sim.nim.settings import NimSettings, model_from_image

__all__ = [
    "PHASES",
    "PROGRESS_RE",
    "NimEmulator",
    "NimSettings",
    "RequestRecord",
    "model_from_image",
    "parse_download_percent",
    "serve_nim",
    "warm_cache",
]
