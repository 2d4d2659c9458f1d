"""The one place that maps domain exceptions to HTTP status and the error body of API.md:
`{"code": ..., "message": ..., "details": {...}}`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalice import Response

from shared.kernel import errors

# Most specific class first: the first isinstance match wins.
STATUS_BY_ERROR: tuple[tuple[type[errors.DomainError], int], ...] = (
    (errors.MalformedRequest, 400),
    (errors.Unauthenticated, 401),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.RuleViolation, 422),
    (errors.LimitReached, 429),
    (errors.TemporarilyUnavailable, 503),
)


def status_for(error: errors.DomainError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(error, cls):
            return status
    return 500


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {"code": code, "message": message, "details": details or {}}


def problem_response(error: errors.DomainError, headers: dict[str, str] | None = None) -> Response:
    status = status_for(error)
    all_headers: dict[str, str | list[str]] = {"Content-Type": "application/json", **(headers or {})}
    if status == 503:
        all_headers["Retry-After"] = "1"
    if error.retry_after_s is not None:
        all_headers["Retry-After"] = str(error.retry_after_s)
    if status == 401:
        all_headers["WWW-Authenticate"] = 'Bearer realm="retail"'
    body = error_body(error.code, error.message, _jsonable(error.details))
    return Response(body=json.dumps(body, ensure_ascii=False), status_code=status, headers=all_headers)


def internal_error_response(correlation_id: str | None) -> Response:
    body = error_body("INTERNAL_ERROR", "unexpected error; it has been logged", {"correlation_id": correlation_id})
    return Response(body=json.dumps(body), status_code=500, headers={"Content-Type": "application/json"})


def _jsonable(details: dict) -> dict:
    return json.loads(json.dumps(details, default=str))


# Chalice answers some requests itself, before any view runs, in its own shape {"Code", "Message"}:
# a method the path lacks (405), a Content-Type the route does not take (415), a binary answer to
# a request whose Accept does not allow it (400). The deployed API Gateway only lets the last two
# through (a missing method is a missing route there: 404 from its Gateway Responses).
CHALICE_ERRORS: dict[str, tuple[str, str]] = {
    "MethodNotAllowedError": ("METHOD_NOT_ALLOWED", "this path does not take this method"),
    "UnsupportedMediaType": ("UNSUPPORTED_MEDIA_TYPE", "send the body as JSON (Content-Type: application/json)"),
    "BadRequest": ("MALFORMED_REQUEST", "the answer is binary: send an Accept header that allows it"),
}


def chalice_errors_as_problems(request: Any, get_response: Callable[[Any], Response]) -> Response:
    """HTTP middleware: Chalice's own error answers in API.md's shape, with fixed messages (Chalice's
    repeat the request's Content-Type)."""
    response = get_response(request)
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and set(body) == {"Code", "Message"}:
        code, message = CHALICE_ERRORS.get(str(body["Code"]), ("INTERNAL_ERROR", "unexpected error"))
        allow = response.headers.get("Allow")
        details = {"allowed": sorted(str(allow).split(", "))} if allow else {}
        response.body = json.dumps(error_body(code, message, details))
        response.headers["Content-Type"] = "application/json"
    return response
