"""kubeapi.errors.from_exception: status codes to classes (the class says whether to retry), the Status body's
message/reason/details, and long messages truncated in the middle so the verdict at the end survives."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes.client.exceptions import ApiException

from kubeapi import ApiError, Conflict, Forbidden, Invalid, NotFound, TemporaryApiError
from kubeapi.errors import from_exception

LIMIT = 600
MARK = " ...(truncated)... "


def api_exception(status: int | None, reason: str | None = None, body: Any = None) -> ApiException:
    e = ApiException(status=status, reason=reason)
    e.body = json.dumps(body) if isinstance(body, dict | list) else body
    return e


def status_body(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message}
    body.update({"reason": reason, "code": code})
    if details is not None:
        body["details"] = details
    return body


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (401, Forbidden, False),
        (403, Forbidden, False),
        (404, NotFound, False),
        (409, Conflict, False),
        (422, Invalid, False),
        (429, TemporaryApiError, True),
        (500, TemporaryApiError, True),
        (503, TemporaryApiError, True),
        (504, TemporaryApiError, True),
        (0, TemporaryApiError, True),
        (None, TemporaryApiError, True),
    ],
)
def test_status_codes_map_to_classes(status: int | None, cls: type[ApiError], retryable: bool) -> None:
    error = from_exception(api_exception(status, "Because"))
    assert type(error) is cls
    assert error.retryable is retryable
    assert error.status == (status or 0)
    assert isinstance(error, ApiError)


@pytest.mark.parametrize("status", [400, 405, 410, 418])
def test_other_client_errors_are_plain_api_errors_not_retried(status: int) -> None:
    error = from_exception(api_exception(status, "Bad"))
    assert type(error) is ApiError and not error.retryable


def test_the_status_body_gives_message_reason_and_details() -> None:
    details = {"name": "web", "group": "apps", "kind": "deployments", "causes": [{"field": "spec.selector"}]}
    message = 'Deployment.apps "web" is invalid: spec.selector: Invalid value: ...: field is immutable'
    error = from_exception(api_exception(422, "Unprocessable Entity", status_body(422, "Invalid", message, details)))
    assert isinstance(error, Invalid)
    assert (error.reason, error.message, error.details) == ("Invalid", message, details)
    assert str(error) == f"422 Invalid: {message}"


def test_a_status_body_without_message_or_reason_keeps_the_http_reason() -> None:
    error = from_exception(api_exception(404, "Not Found", {"kind": "Status", "details": None}))
    assert isinstance(error, NotFound)
    assert error.reason == "Not Found" and error.details == {}
    assert error.message == json.dumps({"kind": "Status", "details": None})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "upstream connect error or disconnect/reset before headers",
            "upstream connect error or disconnect/reset before headers",
        ),
        ("<html>502 Bad Gateway</html>", "<html>502 Bad Gateway</html>"),
        (None, "Service Unavailable"),
        ("", "Service Unavailable"),
        ('["not", "a", "status"]', '["not", "a", "status"]'),
        ('"just a string"', '"just a string"'),
    ],
)
def test_a_body_that_is_not_a_status_becomes_the_message(body: str | None, message: str) -> None:
    error = from_exception(api_exception(503, "Service Unavailable", body))
    assert isinstance(error, TemporaryApiError)
    assert error.message == message and error.reason == "Service Unavailable" and error.details == {}


def test_no_status_no_reason_no_body() -> None:
    error = from_exception(ApiException())
    assert isinstance(error, TemporaryApiError)
    assert (error.status, error.reason, error.message) == (0, "", "")


def test_a_long_message_keeps_both_ends_and_the_verdict() -> None:
    field = "spec.template.metadata.labels: Invalid value: map[string]string{"
    message = f'StatefulSet.apps "db" is invalid: {field}{"x" * 2000}}}: field is immutable'
    error = from_exception(api_exception(422, "Unprocessable Entity", status_body(422, "Invalid", message)))
    assert error.message.startswith('StatefulSet.apps "db" is invalid: spec.template')
    assert error.message.endswith(": field is immutable")
    assert MARK in error.message
    assert len(error.message) == LIMIT + len(MARK)
    assert str(error).endswith("field is immutable")


def test_a_message_at_the_limit_is_kept_whole() -> None:
    message = "m" * LIMIT
    assert from_exception(api_exception(500, "x", status_body(500, "InternalError", message))).message == message


@given(message=st.text(min_size=1, max_size=3000))
def test_truncation_keeps_the_first_and_last_half_limit(message: str) -> None:
    body = status_body(422, "Invalid", message)
    got = from_exception(api_exception(422, "Unprocessable Entity", body)).message
    if len(message) <= LIMIT:
        assert got == message
    else:
        half = LIMIT // 2
        assert got == message[:half] + MARK + message[-half:]
