"""Translate OCI SDK exceptions into the project's errors, with advice a user can act on."""

from __future__ import annotations

from typing import Any, NoReturn

from nimble_oke.errors import CapacityError, ProviderError

_ADVICE = {
    "NotAuthenticated": "check the OCI config profile, key file and fingerprint (nimble doctor)",
    "NotAuthorizedOrNotFound": "the resource does not exist or your IAM policies do not allow it",
    "LimitExceeded": "request a service limit increase for this shape in the console",
    "QuotaExceeded": "a compartment quota blocks this; ask your tenancy admin",
    "TooManyRequests": "OCI is throttling; retry later",
    "IncorrectState": "the resource is busy with another operation; retry when it settles",
}


def is_capacity_message(message: str) -> bool:
    return "out of host capacity" in message.lower() or "outofhostcapacity" in message.lower()


def translate(exc: BaseException, action: str) -> NoReturn:
    """Raise the project's error for an SDK exception (``action`` says what we tried)."""
    import oci

    if isinstance(exc, oci.exceptions.ServiceError):
        code = str(exc.code or "")
        message = str(exc.message or "")
        if is_capacity_message(message):
            raise CapacityError(
                f"{action}: OCI is out of host capacity ({message})",
                code=code,
                status=exc.status,
                request_id=exc.request_id,
            ) from exc
        hint = _ADVICE.get(code)
        raise ProviderError(
            f"{action}: {exc.status} {code}: {message}",
            code=code,
            status=exc.status,
            request_id=exc.request_id,
            hint=hint,
        ) from exc
    if isinstance(exc, oci.exceptions.ConfigFileNotFound | oci.exceptions.InvalidConfig):
        raise ProviderError(
            f"{action}: OCI config problem: {exc}", hint="run nimble doctor"
        ) from exc
    if isinstance(exc, oci.exceptions.RequestException | oci.exceptions.ConnectTimeout):
        raise ProviderError(f"{action}: cannot reach the OCI API: {exc}") from exc
    raise ProviderError(f"{action}: {type(exc).__name__}: {exc}") from exc


def service_error_types() -> tuple[type[BaseException], ...]:
    import oci

    return (
        oci.exceptions.ServiceError,
        oci.exceptions.RequestException,
        oci.exceptions.ConnectTimeout,
        oci.exceptions.ConfigFileNotFound,
        oci.exceptions.InvalidConfig,
    )


def work_request_failure(errors: list[Any]) -> str:
    return "; ".join(f"{getattr(e, 'code', '')}: {getattr(e, 'message', e)}" for e in errors)
