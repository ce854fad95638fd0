"""The project's error types. Every user-facing failure is one of these.

The CLI turns a :class:`NimbleError` into one clear line on stderr and the exit code of its
kind (the README's table: 2 config/catalog, 3 budget, 4 state, 5 cloud API, 6 Kubernetes,
7 endpoint, 8 benchmark INVALID, 9 benchmark FAILED, 70 internal bug); any other exception is a bug and shows
a traceback only with ``--debug``.

Code that catches an error and reports it later (``up`` returns an ``UpResult`` instead of
raising) keeps its kind with :func:`error_kind` / :func:`exit_code_for`, so the CLI can
still exit with the right code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

INTERNAL_ERROR_EXIT = 70
INTERRUPTED_EXIT = 130
# The README's exit-code table, by error kind (the ``kind`` of each class below).
EXIT_CODES: Mapping[str, int] = {
    "failed": 1,  # a NimbleError of no particular kind
    "config": 2,
    "catalog": 2,
    "budget": 3,
    "state": 4,
    "cloud": 5,
    "kubernetes": 6,
    "endpoint": 7,
    "benchmark-invalid": 8,
    "benchmark-failed": 9,
    "internal": INTERNAL_ERROR_EXIT,
    "interrupted": INTERRUPTED_EXIT,
}


class NimbleError(Exception):
    """Base class: a failure the user can act on. ``exit_code`` is what the CLI returns;
    ``kind`` names it in JSON output (``error_kind``)."""

    exit_code = 1
    kind: ClassVar[str] = "failed"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass that sets only ``exit_code`` gets the kind of that code."""
        super().__init_subclass__(**kwargs)
        if "kind" not in cls.__dict__ and "exit_code" in cls.__dict__:
            kinds = {code: kind for kind, code in reversed(list(EXIT_CODES.items()))}
            cls.kind = kinds.get(cls.exit_code, "failed")

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class ConfigError(NimbleError):
    """Invalid configuration: names the field path, the bad value and what is allowed."""

    exit_code = 2
    kind: ClassVar[str] = "config"


class CatalogError(NimbleError):
    """A shape/model/precision combination that cannot work, with a suggestion."""

    exit_code = 2
    kind: ClassVar[str] = "catalog"


class BudgetError(NimbleError):
    """The cost guard refused: the worst case exceeds the budget, or not confirmed."""

    exit_code = 3
    kind: ClassVar[str] = "budget"


class StateError(NimbleError):
    """The local state store is unusable or a session is locked by another process."""

    exit_code = 4
    kind: ClassVar[str] = "state"


class ProviderError(NimbleError):
    """A cloud API call failed; carries the service's code and request id when known."""

    exit_code = 5
    kind: ClassVar[str] = "cloud"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.code = code
        self.status = status
        self.request_id = request_id


class CapacityError(ProviderError):
    """No AD / shape / pricing option in the fallback ladder can host the node pool."""


class KubeError(NimbleError):
    """A Kubernetes API call or wait failed."""

    exit_code = 6
    kind: ClassVar[str] = "kubernetes"


class EndpointError(NimbleError):
    """An inference endpoint is unreachable or answered in a way we cannot use."""

    exit_code = 7
    kind: ClassVar[str] = "endpoint"


class BenchmarkInvalidError(NimbleError):
    """A benchmark run finished but its validity gate marked it INVALID."""

    exit_code = 8
    kind: ClassVar[str] = "benchmark-invalid"


class BenchmarkFailedError(NimbleError):
    """A benchmark run finished but more of its requests failed than it allows (FAILED)."""

    exit_code = 9
    kind: ClassVar[str] = "benchmark-failed"


def error_kind(exc: BaseException) -> str:
    """The kind of a failure: a NimbleError's own, ``interrupted`` for Ctrl-C, else
    ``internal`` (an exception the project did not expect is a bug)."""
    if isinstance(exc, NimbleError):
        return exc.kind
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return "internal"


def exit_code_for(exc: BaseException) -> int:
    """The exit code the README documents for this failure."""
    if isinstance(exc, NimbleError):
        return exc.exit_code
    return EXIT_CODES[error_kind(exc)]


def exit_code_of_kind(kind: str | None) -> int | None:
    """The exit code of an ``error_kind`` (a kind word or a NimbleError class name), or None
    when it is unknown."""
    if not kind:
        return None
    if kind in EXIT_CODES:
        return EXIT_CODES[kind]
    for cls in _subclasses(NimbleError):
        if cls.__name__ == kind:
            return cls.exit_code
    return None


def _subclasses(cls: type[NimbleError]) -> list[type[NimbleError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_subclasses(sub))
    return out


def describe_unreachable(url: str, exc: BaseException) -> str:
    """What happened when ``url`` could not be reached, in the user's words (no library class
    names): ``connection refused at 127.0.0.1:9 — is it running?``.

    Works on aiohttp/httpx/socket errors by their ``os_error``/``errno``/class, without
    importing those libraries."""
    import errno
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    where = parts.netloc or url
    cause: BaseException = exc
    for _ in range(6):  # unwrap (aiohttp keeps the OSError in .os_error, httpx in __cause__)
        nested = (
            getattr(cause, "os_error", None)
            or getattr(cause, "__cause__", None)
            or getattr(cause, "__context__", None)
        )
        if not isinstance(nested, BaseException):
            break
        cause = nested
    name = type(exc).__name__.lower()
    text = str(exc).lower()
    refused = isinstance(cause, ConnectionRefusedError) or (
        isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
    )
    if refused or "connection refused" in text:
        return f"connection refused at {where} — is it running?"
    if isinstance(cause, socket.gaierror) or "dns" in name or "resolve" in name:
        return f"cannot resolve the host of {url} — check the URL"
    if isinstance(cause, TimeoutError) or "timeout" in name or "timed out" in text:
        return f"no answer from {where} in time — is it up and reachable from here?"
    if "ssl" in name or "certificate" in name:
        return f"TLS handshake with {where} failed — check https:// and the certificate"
    if isinstance(cause, ConnectionResetError) or "disconnect" in name:
        return f"{where} closed the connection"
    if isinstance(cause, OSError) and cause.strerror:
        return f"cannot reach {where}: {cause.strerror.lower()}"
    return f"cannot reach {where}"


def error_exit_code(result: Mapping[str, Any]) -> int:
    """The exit code of a failed result dict (``up``): its ``exit_code``, else its
    ``error_kind``, else its ``exception``; 1 when none of them says."""
    code = result.get("exit_code")
    if isinstance(code, int) and not isinstance(code, bool) and code > 0:
        return code
    by_kind = exit_code_of_kind(result.get("error_kind"))
    if by_kind is not None:
        return by_kind
    exc = result.get("exception")
    if isinstance(exc, BaseException):
        return exit_code_for(exc)
    return 1


def is_unreachable(exc: BaseException) -> bool:
    """A failure to connect or to get an answer (socket, aiohttp, httpx), not a bug."""
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    module = type(exc).__module__.split(".")[0].rstrip("0123456789")  # httpx2: lightkube's
    name = type(exc).__name__
    if module in {"httpx", "httpcore"}:
        return name.endswith(("ConnectError", "ConnectTimeout", "ReadTimeout", "ReadError"))
    if module == "aiohttp":
        return name.startswith(("ClientConnector", "ServerDisconnected", "ServerTimeout"))
    return isinstance(exc, OSError) and exc.errno is not None and exc.filename is None
