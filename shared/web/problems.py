"""The one place that maps domain exceptions to HTTP status and the error body of API.md:
`{"code": ..., "message": ..., "details": {...}}`."""

from __future__ import annotations

import json

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
    if status == 401:
        all_headers["WWW-Authenticate"] = 'Bearer realm="retail"'
    body = error_body(error.code, error.message, _jsonable(error.details))
    return Response(body=json.dumps(body, ensure_ascii=False), status_code=status, headers=all_headers)


def internal_error_response(correlation_id: str | None) -> Response:
    body = error_body("INTERNAL_ERROR", "unexpected error; it has been logged", {"correlation_id": correlation_id})
    return Response(body=json.dumps(body), status_code=500, headers={"Content-Type": "application/json"})


def _jsonable(details: dict) -> dict:
    return json.loads(json.dumps(details, default=str))
