"""OCI error responses: ``{"code": ..., "message": ...}`` with OCI's real status/code pairs."""

from __future__ import annotations

# Status for each OCI error code (OCI API reference, "API Errors").
STATUS_BY_CODE = {
    "InvalidParameter": 400,
    "MissingParameter": 400,
    "LimitExceeded": 400,
    "QuotaExceeded": 400,
    "NotAuthenticated": 401,
    "NotAuthorizedOrNotFound": 404,
    "NotFound": 404,
    "BucketNotFound": 404,
    "ObjectNotFound": 404,
    "NotAuthorizedOrResourceAlreadyExists": 409,
    "Conflict": 409,
    "IncorrectState": 409,
    "InvalidatedRetryToken": 409,
    "BucketAlreadyExists": 409,
    "BucketNotEmpty": 409,
    "NoEtagMatch": 412,
    "IfMatchFailed": 412,
    "IfNoneMatchFailed": 412,
    "UploadNotFound": 404,
    "BucketReplicationEnabled": 403,
    "ReplicationPolicyConflict": 409,
    "TooManyRequests": 429,
    "InternalError": 500,
    "ServiceUnavailable": 503,
}


class ApiError(Exception):
    """Raised by handlers; rendered as an OCI error body with the matching status."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else STATUS_BY_CODE.get(code, 400)

    def body(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


# What OCI answers for an unknown (or hidden) OCID in the path or query: one fixed text that
# never says which resource or why (recorded by real clients, e.g. oci-go-sdk issue #321:
# "NotAuthorizedOrNotFound. Authorization failed or requested resource not found.").
NOT_FOUND_MESSAGE = "Authorization failed or requested resource not found."


def not_found(what: str, ident: str) -> ApiError:
    """404 NotAuthorizedOrNotFound for ``what`` ``ident`` (neither appears in the message, as
    in OCI: the caller learns nothing about resources it may not see)."""
    del what, ident
    return ApiError("NotAuthorizedOrNotFound", NOT_FOUND_MESSAGE)


def invalid(message: str) -> ApiError:
    return ApiError("InvalidParameter", message)


def conflict(message: str) -> ApiError:
    return ApiError("Conflict", message)
