"""What every command shares: global options, error handling, output helpers.

Commands stay thin: parse flags, call one service, render. Errors reach the user as one
clear line and a non-zero exit code (``NimbleError.exit_code``), never a traceback unless
``--debug``. Heavy modules (pydantic models, the OCI SDK) are imported inside commands so
``nimble --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from nimble_oke.redact import redact, redact_obj

if TYPE_CHECKING:
    from nimble_oke.errors import NimbleError

F = TypeVar("F", bound=Callable[..., Any])

INTERNAL_ERROR_EXIT = 70  # errors.INTERNAL_ERROR_EXIT (not imported: keeps start-up light)


@dataclass
class GlobalOptions:
    config: str | None = None
    debug: bool = False
    log_format: str = "human"
    verbose: bool = False


OPTIONS = GlobalOptions()


def err(message: str) -> None:
    """One line to stderr per problem, redacted (a config with several problems names each)."""
    for line in redact(message).splitlines() or [""]:
        typer.echo(f"[nimble][ERROR] {line}", err=True)


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
            problem = input_problem(exc)
            if problem is not None:
                err(problem[0])
                raise typer.Exit(problem[1]) from None
            err(
                f"internal error: {type(exc).__name__}: {exc} "
                "(this is a bug; run with --debug for the traceback)"
            )
            raise typer.Exit(INTERNAL_ERROR_EXIT) from None

    return wrapper  # type: ignore[return-value]


INPUT_ERROR_EXIT = 2
STATE_ERROR_EXIT = 4
CLOUD_ERROR_EXIT = 5


def input_problem(exc: BaseException) -> tuple[str, int] | None:
    """A library exception that reached the CLI but is about the user's input or files, not
    a bug, in the user's words with its exit code: a file that cannot be read or written (a
    directory, a missing folder, no permission; under NIMBLE_HOME it is the state, exit 4),
    or a file that is not the text/JSON/YAML it should be. None for anything else (a bug).
    Commands should refuse such input themselves (:mod:`nimble_oke.user_files`); this is
    the net under them."""
    import json

    if isinstance(exc, OSError) and exc.filename is not None and not _is_network(exc):
        reason = (exc.strerror or str(exc)).lower()
        code = STATE_ERROR_EXIT if _under_home(str(exc.filename)) else INPUT_ERROR_EXIT
        return f"{exc.filename}: {reason}", code
    if isinstance(exc, UnicodeDecodeError):
        byte = exc.object[exc.start] if exc.start < len(exc.object) else 0
        return f"an input file is not UTF-8 text (byte 0x{byte:02x}); save it as UTF-8", 2
    if isinstance(exc, json.JSONDecodeError):
        where = f"line {exc.lineno}, column {exc.colno}"
        return f"an input file is not valid JSON ({where}: {exc.msg})", INPUT_ERROR_EXIT
    if type(exc).__module__.startswith("yaml"):
        words = " ".join(str(exc).split())[:200]
        return f"an input file is not valid YAML: {words}", INPUT_ERROR_EXIT
    if type(exc).__module__ == "oci.exceptions":
        # the SDK refusing its config or key file (an adapter should have said so)
        words = " ".join(str(exc).split()).split(" For more info")[0][:300]
        return f"OCI SDK: {words}", CLOUD_ERROR_EXIT
    return None


def _under_home(filename: str) -> bool:
    from pathlib import Path

    from nimble_oke.state.store import default_home

    home = default_home()
    try:
        return Path(filename).resolve().is_relative_to(home.resolve())
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def unreachable_as(error: type[NimbleError], what: str) -> Iterator[None]:
    """Inside: a failure to reach ``what`` (a URL or a name) from any client library becomes
    ``error`` in the user's words ("connection refused at 127.0.0.1:9 — is it running?")
    with that error's exit code, instead of an internal error naming a library class."""
    from nimble_oke.errors import describe_unreachable, is_unreachable

    try:
        yield
    except Exception as exc:
        if not is_unreachable(exc):
            raise
        raise error(f"{what}: {describe_unreachable(_url_of(exc) or what, exc)}") from None


def _url_of(exc: BaseException) -> str | None:
    try:
        request = getattr(exc, "request", None)  # httpx raises when there is none
    except RuntimeError:
        return None
    url = getattr(request, "url", None)
    return str(url) if url is not None else None


def _is_network(exc: OSError) -> bool:
    return isinstance(exc, ConnectionError | TimeoutError)


def check_flag(flag: str, value: str | None, rule: Callable[[str], str]) -> str | None:
    """A flag's value through a config rule (``domain.config.bucket_name`` …), refused in
    the flag's words; None passes (not given)."""
    if value is None:
        return None
    from nimble_oke.errors import ConfigError

    try:
        return rule(value)
    except ValueError as exc:
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise ConfigError(f"{flag} {shown!r}: {exc}") from None


def check_session_name(name: str | None, flag: str = "--name") -> str | None:
    """A session name given on the command line, refused in the flag's words when it could
    not be a session (it also names files under NIMBLE_HOME: no '/', no '..')."""
    from nimble_oke.domain.config import session_name

    return check_flag(flag, name, session_name)


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


def check_namespace(namespace: str | None, flag: str = "--namespace") -> str | None:
    """A Kubernetes namespace given on the command line (a DNS-1123 label)."""
    from nimble_oke.domain.config import dns_label

    return check_flag(flag, namespace, lambda v: dns_label(v, "a Kubernetes namespace"))


def check_kubeconfig(path: str | None, flag: str = "--kubeconfig") -> None:
    """Refuse a file that is not a kubeconfig before a client library trips over it (read
    with the safe reader: regular file, bounded, UTF-8). A missing file is left to the
    Kubernetes client's own "kubeconfig … is unusable" (exit 6)."""
    if path is None or not os.path.lexists(path):
        return
    from nimble_oke.errors import ConfigError
    from nimble_oke.user_files import read_user_yaml

    doc = read_user_yaml(path, what="kubeconfig")
    clusters = doc.get("clusters") if isinstance(doc, dict) else None
    if not (
        isinstance(clusters, list)
        and clusters
        and all(isinstance(c, dict) and isinstance(c.get("cluster"), dict) for c in clusters)
    ):
        raise ConfigError(
            f"{flag} {path}: not a kubeconfig (it needs a 'clusters' list, each with a "
            "'cluster' entry; kubectl config view shows one)"
        )
