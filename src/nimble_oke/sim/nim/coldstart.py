"""Cold start of an emulated NIM: profile selection, model download into NIM_CACHE_PATH,
weight loading and engine start, announced in NIM-style log lines.

Log format (one line per event; the deploy engine parses it)::

    <LEVEL> <YYYY-MM-DD HH:MM:SS.mmm> <source>] <message>

Progress lines during the download match :data:`PROGRESS_RE`::

    INFO 2026-11-27 13:00:05.123 ngc_download.py:88] Downloading model files:  40% \
(5.98 GB / 14.96 GB) at 250.0 MB/s

(one line; wrapped here)

and shard loading matches ``Loading safetensors checkpoint shards: (\\d+)% Completed | k/N``.
Phases are ``starting`` → ``downloading`` (skipped with a warm cache) → ``loading`` →
``ready``, or ``failed`` with an ``ERROR`` line naming the cause (never the NGC key).

The cache holds real files whose sizes are the simulated sizes × ``file_scale`` plus a
manifest (``nimble-manifest.json``); a cache is warm when the manifest says complete and
every file has its recorded size.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nimble_oke.ngc_keys import NGC_KEY_RE
from nimble_oke.nim_logformat import (
    DOWNLOAD_COMPLETE,
    DOWNLOAD_PROGRESS_RE,
    FOUND_IN_CACHE,
    download_percent,
    progress_message,
)
from nimble_oke.sim.clock import SimClock
from nimble_oke.sim.nim.catalog import GB, PRECISION_MIN_CC
from nimble_oke.sim.nim.settings import NimSettings

# The progress pattern the readers use (nimble_oke.nim_logformat), under its old name.
PROGRESS_RE = DOWNLOAD_PROGRESS_RE
SHARDS_RE = re.compile(r"Loading safetensors checkpoint shards:\s+(\d{1,3})% Completed")
MANIFEST = "nimble-manifest.json"
_DOWNLOAD_STEPS = 50
_TOKENIZER_BYTES = 9_085_657  # tokenizer.json of Llama 3.1 (public model card files)
_CONFIG_BYTES = 855


# NIM's automatic profile selection without a usable GPU (NIM's get_optimal_manifest_config;
# the second line is what it appends when it finds no GPU at all).
NO_RUNNABLE_PROFILE = (
    "Could not find a profile that is currently runnable with the detected hardware. "
    "Please check the system information below and make sure you have enough free GPUs."
)
NO_GPUS_FOUND = "No GPUs found - did you forget `--runtime=nvidia --gpus='\"device=gpuids\"']` ?"


class ColdStartError(Exception):
    """The NIM process fails to start (the message is what its log says)."""


@dataclass(frozen=True)
class CacheFile:
    name: str
    sim_bytes: int
    real_bytes: int


def format_log(clock: SimClock, level: str, source: str, message: str) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(clock.wall()))
    millis = int((clock.wall() % 1) * 1000)
    return f"{level} {stamp}.{millis:03d} {source}] {message}"


def parse_download_percent(line: str) -> int | None:
    """The download percentage in a NIM log line, if it is a progress line."""
    return download_percent(line)


def profile_id(settings: NimSettings) -> str:
    return settings.model_profile or f"vllm-{settings.precision}-tp{settings.gpu_count}"


def model_dir(settings: NimSettings) -> Path:
    repo = "models--nim--" + settings.model.replace("/", "--")
    return settings.cache_path / "ngc" / "hub" / repo / "snapshots" / profile_id(settings)


def planned_files(settings: NimSettings) -> list[CacheFile]:
    """The files a download writes (weights split evenly into shards)."""
    shards = settings.model_spec.shard_count
    per_shard = settings.weights_bytes // shards
    sims = [("config.json", _CONFIG_BYTES), ("tokenizer.json", _TOKENIZER_BYTES)]
    for i in range(shards):
        size = per_shard if i < shards - 1 else settings.weights_bytes - per_shard * (shards - 1)
        sims.append((f"model-{i + 1:05d}-of-{shards:05d}.safetensors", size))
    return [CacheFile(n, s, max(1, round(s * settings.file_scale))) for n, s in sims]


def cache_is_warm(settings: NimSettings) -> bool:
    directory = model_dir(settings)
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    if not manifest.get("complete"):
        return False
    for entry in manifest.get("files", []):
        path = directory / entry["name"]
        if not path.is_file() or path.stat().st_size != entry["real_bytes"]:
            return False
    return bool(manifest.get("files"))


def warm_cache(settings: NimSettings) -> Path:
    """Write the model's files and a complete manifest into the cache at once, as if an
    earlier run had downloaded them (``nimble sim nim --warm``, tests)."""
    directory = model_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    files = planned_files(settings)
    for f in files:
        (directory / f.name).write_bytes(b"\0" * f.real_bytes)
    ColdStart._write_manifest(directory, files, complete=True)
    return directory


class ColdStart:
    """Runs the phases; ``set_phase`` and ``log`` report to the emulator."""

    def __init__(
        self,
        settings: NimSettings,
        clock: SimClock,
        log: Callable[[str, str, str], None],
        set_phase: Callable[[str], None],
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.log = log
        self.set_phase = set_phase
        self._cursor = clock.now()

    async def _wait(self, sim_seconds: float) -> None:
        """Wait on a timeline that starts when the process starts, so that a simulator
        advancing the shared clock past the whole cold start finds NIM ready."""
        self._cursor += max(0.0, sim_seconds)
        if not self.settings.instant_start:
            await self.clock.wait_until(self._cursor)

    async def run(self) -> None:
        s = self.settings
        self.set_phase("starting")
        self.log("INFO", "nimutils.py:42", f"NIM emulator starting: model {s.model}")
        self._select_profile()
        await self._wait(s.profile_select_s)
        await self._download_unless_cached()
        await self._load()
        self.set_phase("ready")
        self.log("INFO", "server.py:82", "Application startup complete.")
        self.log("INFO", "server.py:214", f"Uvicorn running on http://0.0.0.0:{s.port}")

    async def download_only(self, *, gpu_visible: bool) -> Path:
        """NIM's ``download-to-cache`` utility: the profile pinned by NIM_MODEL_PROFILE (or
        ``--profiles``), else the one automatic selection picks for the visible GPUs, is
        downloaded into NIM_CACHE_PATH exactly as a server's cold start would (same files,
        manifest, progress lines and rate); nothing is loaded. Needs no GPU when the
        profile is pinned. Raises :class:`ColdStartError` like the server does."""
        s = self.settings
        self.log("INFO", "nimutils.py:42", f"download-to-cache: model {s.model}")
        if s.model_profile:
            self.log("INFO", "ngc_injector.py:152", f"Selected profile: {profile_id(s)}")
        elif not gpu_visible:
            raise ColdStartError(f"{NO_RUNNABLE_PROFILE}\n{NO_GPUS_FOUND}")
        else:
            self._select_profile()
        await self._wait(s.profile_select_s)
        await self._download_unless_cached()
        self.log(
            "INFO",
            "download_to_cache.py:54",
            f"Profile {profile_id(s)} is in the cache at {s.cache_path}",
        )
        return model_dir(s)

    def _select_profile(self) -> None:
        s = self.settings
        gpu = s.gpu_spec
        needed = PRECISION_MIN_CC.get(s.precision, 8.0)
        self.log(
            "INFO",
            "ngc_injector.py:106",
            f"Detected {s.gpu_count} × {gpu.name} (CC {gpu.compute_capability})",
        )
        if gpu.compute_capability < needed:
            raise ColdStartError(
                f"Could not find a profile that is currently runnable with the detected "
                f"hardware: {s.precision} needs compute capability >= {needed}, "
                f"{gpu.name} has {gpu.compute_capability}"
            )
        self.log("INFO", "ngc_injector.py:152", f"Selected profile: {profile_id(s)}")

    async def _download_unless_cached(self) -> None:
        s = self.settings
        if cache_is_warm(s):
            self.log("INFO", "ngc_injector.py:147", f"{FOUND_IN_CACHE} {model_dir(s)}")
        else:
            await self._download()

    async def _download(self) -> None:
        s = self.settings
        self.set_phase("downloading")
        if not s.ngc_api_key:
            raise ColdStartError(
                "Failed to download model: NGC_API_KEY is not set "
                "(set it from a Secret to download from NGC)"
            )
        if not NGC_KEY_RE.match(s.ngc_api_key):
            raise ColdStartError(
                "Failed to download model: 401 Unauthorized from NGC: the NGC API key is "
                "invalid or lacks access to nim/" + s.model
            )
        directory = model_dir(s)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ColdStartError(f"Cannot write the model cache: {exc}") from exc
        files = planned_files(s)
        self._write_manifest(directory, files, complete=False)
        total = sum(f.sim_bytes for f in files)
        self.log(
            "INFO",
            "ngc_download.py:61",
            f"Downloading {len(files)} files ({total / GB:.2f} GB) to {directory}",
        )
        for f in files:
            (directory / f.name).write_bytes(b"")
        written = {f.name: 0 for f in files}
        last_logged = -1
        for step in range(1, _DOWNLOAD_STEPS + 1):
            done_sim = total * step // _DOWNLOAD_STEPS
            await self._wait(total / _DOWNLOAD_STEPS / s.download_bytes_per_s)
            self._write_up_to(directory, files, written, done_sim)
            percent = 100 * step // _DOWNLOAD_STEPS
            if percent // 10 > last_logged:
                last_logged = percent // 10
                self.log(
                    "INFO",
                    "ngc_download.py:88",
                    f"{progress_message(percent)} ({done_sim / GB:.2f} GB / "
                    f"{total / GB:.2f} GB) at {s.download_bytes_per_s / 1e6:.1f} MB/s",
                )
        self._write_manifest(directory, files, complete=True)
        self.log("INFO", "ngc_download.py:120", DOWNLOAD_COMPLETE)

    @staticmethod
    def _write_up_to(
        directory: Path, files: list[CacheFile], written: dict[str, int], done_sim: int
    ) -> None:
        """Append real bytes so that files hold their share of ``done_sim`` simulated bytes."""
        offset = 0
        for f in files:
            sim_done = min(max(done_sim - offset, 0), f.sim_bytes)
            offset += f.sim_bytes
            target = (
                f.real_bytes
                if sim_done == f.sim_bytes
                else int(f.real_bytes * sim_done / f.sim_bytes)
            )
            if target > written[f.name]:
                with (directory / f.name).open("ab") as out:
                    out.write(b"\0" * (target - written[f.name]))
                written[f.name] = target

    @staticmethod
    def _write_manifest(directory: Path, files: list[CacheFile], *, complete: bool) -> None:
        manifest = {
            "complete": complete,
            "files": [
                {"name": f.name, "sim_bytes": f.sim_bytes, "real_bytes": f.real_bytes}
                for f in files
            ],
        }
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=1))

    async def _load(self) -> None:
        s = self.settings
        self.set_phase("loading")
        shards = s.model_spec.shard_count
        self.log(
            "INFO", "model_runner.py:1008", f"Loading model weights ({s.weights_bytes / GB:.2f} GB)"
        )
        per_shard = s.weights_bytes / shards / s.load_bytes_per_s
        for i in range(1, shards + 1):
            await self._wait(per_shard)
            self.log(
                "INFO",
                "weight_utils.py:250",
                f"Loading safetensors checkpoint shards: {100 * i // shards:3d}% Completed"
                f" | {i}/{shards}",
            )
        vram = s.gpu_spec.memory_bytes * s.gpu_count
        if s.weights_bytes > vram:
            raise ColdStartError(
                f"torch.OutOfMemoryError: CUDA out of memory: the weights need "
                f"{s.weights_bytes / GB:.2f} GB, {s.gpu_count} × {s.gpu} have {vram / GB:.0f} GB"
            )
        self.log(
            "INFO",
            "model_runner.py:1019",
            f"Loading model weights took {s.weights_bytes / GB:.2f} GB",
        )
        if s.kv_capacity_tokens <= 0:
            raise ColdStartError(
                "ValueError: No available memory for the cache blocks. Try increasing "
                "`gpu_memory_utilization` when initializing the engine "
                f"(KV cache fits {s.kv_capacity_tokens} tokens)"
            )
        if s.effective_max_model_len > s.kv_capacity_tokens:
            raise ColdStartError(
                f"ValueError: The model's max seq len ({s.effective_max_model_len}) is larger "
                "than the maximum number of tokens that can be stored in KV cache "
                f"({s.kv_capacity_tokens}). Try increasing `gpu_memory_utilization` or "
                "decreasing `max_model_len` (NIM_MAX_MODEL_LEN) when initializing the engine."
            )
        await self._wait(s.engine_start_s)
        blocks = s.kv_capacity_tokens // 16
        self.log("INFO", "gpu_executor.py:122", f"# GPU blocks: {blocks}, # CPU blocks: 2048")
        self.log("INFO", "model_runner.py:1523", "Graph capturing finished in 9 secs.")
