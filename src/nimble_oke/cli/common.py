"""What every command shares: global options, error handling, output helpers.

Commands stay thin: parse flags, call one service, render. Errors reach the user as one
clear line and a non-zero exit code (``NimbleError.exit_code``), never a traceback unless
``--debug``. Heavy modules (pydantic models, the OCI SDK) are imported inside commands so
``nimble --help`` stays fast.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import typer

from nimble_oke.redact import redact, redact_obj

F = TypeVar("F", bound=Callable[..., Any])

INTERNAL_ERROR_EXIT = 70


@dataclass
class GlobalOptions:
    config: str | None = None
    debug: bool = False
    log_format: str = "human"
    verbose: bool = False


OPTIONS = GlobalOptions()


def err(message: str) -> None:
    """One line to stderr, redacted."""
    typer.echo(f"[nimble][ERROR] {redact(message)}", err=True)


def info(message: str) -> None:
    typer.echo(f"[nimble][INFO] {redact(message)}", err=True)


def print_json(data: Any) -> None:
    """Machine-readable output on stdout (redacted; stable key order)."""
    typer.echo(json.dumps(redact_obj(data), indent=2, sort_keys=False, default=str))


def handle_errors(func: F) -> F:
    """Turn NimbleError into one line + exit code; hide tracebacks unless --debug."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from nimble_oke.errors import NimbleError

        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except NimbleError as exc:
            if OPTIONS.debug:
                raise
            err(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:
            if isinstance(exc, BrokenPipeError) and _stdout_gone():
                raise  # the reader left (`nimble status | head`): click exits 1 quietly
            if OPTIONS.debug:
                raise
            err(
                f"internal error: {type(exc).__name__}: {exc} "
                "(this is a bug; run with --debug for the traceback)"
            )
            raise typer.Exit(INTERNAL_ERROR_EXIT) from None

    return wrapper  # type: ignore[return-value]


def _stdout_gone() -> bool:
    """Whether stdout's reader has closed the pipe (a broken pipe may also be a socket's,
    which is a bug to report)."""
    import select

    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(events & select.POLLERR for _fd, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no real file behind stdout
        return False


def stdin_is_interactive() -> bool:
    return sys.stdin.isatty() and os.environ.get("CI", "").lower() not in ("1", "true")


def check_output_format(output: str) -> str:
    if output not in ("table", "json"):
        from nimble_oke.errors import ConfigError

        raise ConfigError(f"--output {output!r}: allowed values are table, json")
    return output
