"""The project's error types. Every user-facing failure is one of these.

The CLI turns a :class:`NimbleError` into one clear line and a non-zero exit code; any
other exception is a bug and shows a traceback only with ``--debug``.
"""

from __future__ import annotations


class NimbleError(Exception):
    """Base class: a failure the user can act on. ``exit_code`` is what the CLI returns."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class ConfigError(NimbleError):
    """Invalid configuration: names the field path, the bad value and what is allowed."""

    exit_code = 2


class CatalogError(NimbleError):
    """A shape/model/precision combination that cannot work, with a suggestion."""

    exit_code = 2


class BudgetError(NimbleError):
    """The cost guard refused: the worst case exceeds the budget, or not confirmed."""

    exit_code = 3


class StateError(NimbleError):
    """The local state store is unusable or a session is locked by another process."""

    exit_code = 4


class ProviderError(NimbleError):
    """A cloud API call failed; carries the service's code and request id when known."""

    exit_code = 5

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


class EndpointError(NimbleError):
    """An inference endpoint is unreachable or answered in a way we cannot use."""

    exit_code = 7
