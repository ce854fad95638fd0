"""``nimble sim nim``: serve one emulated NIM in the foreground (the app registers it)."""

from __future__ import annotations

from typing import Annotated

import typer

from nimble_oke.cli.common import handle_errors


@handle_errors
def sim_nim(
    host: Annotated[
        str, typer.Option("--host", help="Listen address (loopback by default).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Listen port (NIM uses 8000).")] = 8000,
    model: Annotated[
        str | None, typer.Option("--model", help="Served model, e.g. meta/llama-3.1-8b-instruct.")
    ] = None,
    gpu: Annotated[str, typer.Option("--gpu", help="A10, A100, A100-40GB, H100 or L40S.")] = "A10",
    engine: Annotated[
        str, typer.Option("--engine", help="emulator, or llama-cpp (a real SmolLM2; needs .[llm]).")
    ] = "emulator",
    warm: Annotated[
        bool, typer.Option("--warm", help="Start from a warm model cache: ready at once.")
    ] = False,
    cache_path: Annotated[
        str | None, typer.Option("--cache-path", help="NIM_CACHE_PATH (default: a temp dir).")
    ] = None,
) -> None:
    """Run an OpenAI-compatible NIM emulator (health, models, chat, completions, metrics)."""
    from nimble_oke.errors import ConfigError
    from nimble_oke.sim.nim.serve import serve_nim

    if engine not in ("emulator", "llama-cpp"):
        raise ConfigError(f"--engine {engine!r}: allowed values are emulator, llama-cpp")
    try:
        serve_nim(host, port, model, gpu, engine, warm, cache_path)
    except ValueError as exc:  # unknown GPU, bad model/image name
        raise ConfigError(str(exc)) from exc
    except OSError as exc:  # port in use
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
