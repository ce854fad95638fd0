"""``nimble sim nim``: serve one emulated NIM in the foreground (the app registers it)."""

from __future__ import annotations

import re
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
        str, typer.Option("--engine", help="emulator, or llama-cpp (a real SmolLM2-135M).")
    ] = "emulator",
    warm: Annotated[
        bool, typer.Option("--warm", help="Start from a warm model cache: ready at once.")
    ] = False,
    cache_path: Annotated[
        str | None, typer.Option("--cache-path", help="NIM_CACHE_PATH (default: a temp dir).")
    ] = None,
    nim_release: Annotated[
        str | None,
        typer.Option(
            "--nim-release",
            help="NIM release to behave as: 2.x (default 2.0.12: vLLM API, nested errors) or "
            "1.x (e.g. 1.8.0: nvext, flat errors).",
        ),
    ] = None,
) -> None:
    """Run an OpenAI-compatible NIM emulator (health, models, chat, completions, metrics)."""
    from nimble_oke.errors import ConfigError
    from nimble_oke.sim.nim.serve import serve_nim

    if engine not in ("emulator", "llama-cpp"):
        raise ConfigError(f"--engine {engine!r}: allowed values are emulator, llama-cpp")
    if nim_release is not None and not re.fullmatch(r"[12]\.\d+(\.\d+)?", nim_release):
        raise ConfigError(
            f"--nim-release {nim_release!r}: give a NIM release such as 2.0.12 or 1.8.0"
        )
    try:
        serve_nim(host, port, model, gpu, engine, warm, cache_path, nim_release=nim_release)
    except ValueError as exc:  # unknown GPU, bad model/image name
        raise ConfigError(str(exc)) from exc
    except OSError as exc:  # port in use
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
