"""API status codes mapped to exception classes, in one place; the class says whether a retry can help."""

from __future__ import annotations

import json
from typing import Any

from kubernetes.client.exceptions import ApiException

_BODY_LIMIT = 600


class ApiError(Exception):
    """An error answer from the API server: status code, reason and the server's message (truncated)."""

    retryable = False

    def __init__(self, status: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.details = details or {}


class NotFound(ApiError):
    """404: the object (or its kind) does not exist."""


class UnknownKind(NotFound):
    """The server serves no such apiVersion/kind (its CRD is missing, or the API is not enabled)."""


class Conflict(ApiError):
    """409: AlreadyExists or a resourceVersion / field-manager conflict."""


class Invalid(ApiError):
    """422: the server refused the object, e.g. `field is immutable`."""


class Forbidden(ApiError):
    """403 (and 401): the identity may not do this; retrying will not help."""


class TemporaryApiError(ApiError):
    """429, 5xx and connection failures: worth retrying after a delay."""

    retryable = True


_BY_STATUS: dict[int, type[ApiError]] = {
    401: Forbidden,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: Invalid,
}


def from_exception(e: ApiException) -> ApiError:
    """The ApiError subclass for a kubernetes client exception, with the Status message extracted."""
    status = int(e.status or 0)
    reason = str(e.reason or "")
    message = str(e.body or e.reason or "")
    details: dict[str, Any] = {}
    try:
        body = json.loads(e.body) if e.body else {}
        if isinstance(body, dict):
            message = str(body.get("message") or message)
            reason = str(body.get("reason") or reason)
            details = body.get("details") or {}
    except (TypeError, ValueError):
        pass
    if len(message) > _BODY_LIMIT:
        # API errors put the field first and the verdict ("field is immutable") last: keep both ends.
        half = _BODY_LIMIT // 2
        message = f"{message[:half]} ...(truncated)... {message[-half:]}"
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = TemporaryApiError if status in {0, 429} or status >= 500 else ApiError
    return cls(status, reason, message, details)
