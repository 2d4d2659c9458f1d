"""`Api`, the Blueprint every function folder uses.

Each route is wrapped once here, so a view stays a few lines: authenticate and authorise by role,
set the correlation id, turn domain exceptions into the error body of API.md, flush metrics.
Views read the request through `parse`, `query_int`, `principal` and `idempotency_key`.
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import functools
import hashlib
import hmac
import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from chalice import Blueprint, Response

from shared.kernel import errors
from shared.kernel.json_body import parse_json
from shared.kernel.lazy import lazy_import
from shared.platform.observability import count, flush, logger
from shared.web.auth import Principal, Role, authenticate
from shared.web.problems import internal_error_response, problem_response

if TYPE_CHECKING:
    import pydantic
    from pydantic import BaseModel

    from shared.platform import settings as config
else:  # pydantic and the settings load on the first request that needs them (shared/kernel/lazy.py)
    pydantic = lazy_import("pydantic")
    config = lazy_import("shared.platform.settings")

M = TypeVar("M", bound="BaseModel")

_request: contextvars.ContextVar[Any] = contextvars.ContextVar("request")
_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("principal", default=None)

CORRELATION_HEADER = "X-Correlation-Id"


class Api(Blueprint):
    """A Chalice Blueprint whose routes declare who may call them: `roles=` or `public=True`."""

    def route(  # type: ignore[override]
        self,
        path: str,
        *,
        roles: Iterable[Role] | None = None,
        public: bool = False,
        **kwargs: Any,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        if roles is None and not public:
            raise TypeError(f"route {path}: say who may call it (roles=...) or public=True")
        allowed = frozenset(roles or ())

        def register(view: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(view)
            def handle(**params: Any) -> Response:
                return _serve(self, view, params, allowed, public)

            Blueprint.route(self, path, **kwargs)(handle)
            return view

        return register


def _serve(bp: Blueprint, view: Callable[..., Any], params: dict, allowed: frozenset, public: bool) -> Response:
    request = bp.current_request
    correlation_id = _correlation_id(request)
    logger.set_correlation_id(correlation_id)
    request_token = _request.set(request)
    principal_token = _principal.set(None)
    try:
        if not public:
            current = config.settings()
            who = authenticate(
                request.headers.get("authorization"),
                current.jwt_secret.get_secret_value(),
                issuer=current.jwt_issuer,
                audience=current.jwt_audience,
            )
            if allowed:
                who.require(*allowed)
            _principal.set(who)
        response = view(**params)
    except errors.DomainError as exc:
        logger.info("request refused", extra={"code": exc.code, "path": request.path})
        response = problem_response(exc)
    except Exception:
        # The last line of defence: log with the trace and answer with the error body, not Chalice's.
        logger.exception("unhandled error", extra={"path": request.path})
        count("UnhandledErrors")
        response = internal_error_response(correlation_id)
    finally:
        _request.reset(request_token)
        _principal.reset(principal_token)
        flush()
    if not isinstance(response, Response):
        response = Response(body=response)
    response.headers[CORRELATION_HEADER] = correlation_id
    return response


def _correlation_id(request: Any) -> str:
    supplied = request.headers.get(CORRELATION_HEADER.lower()) if request is not None else None
    if supplied and len(supplied) <= 128:
        return supplied
    context = getattr(request, "context", None) or {}
    return str(context.get("requestId") or "local")


def current_request() -> Any:
    return _request.get()


def principal() -> Principal:
    who = _principal.get()
    if who is None:
        raise errors.Unauthenticated("this route needs a signed-in user")
    return who


def parse(model: type[M]) -> M:
    """The request body as `model`: 400 if it is not JSON, 422 if it is JSON that breaks the schema."""
    raw = current_request().raw_body or b""
    data = parse_json(raw) if raw.strip() else None
    if data is None:
        raise errors.MalformedRequest("request body is missing")
    return validate(model, data)


def validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise errors.ValidationFailed("request breaks the schema", errors=problems) from exc


def raw_body() -> bytes:
    return current_request().raw_body or b""


def header(name: str) -> str | None:
    return current_request().headers.get(name.lower())


def query_int(name: str, default: int, *, low: int, high: int) -> int:
    params = current_request().query_params or {}
    if name not in params:
        return default
    try:
        value = int(params[name])
    except ValueError as exc:
        raise errors.MalformedRequest(f"?{name}= must be an integer", param=name) from exc
    if not low <= value <= high:
        raise errors.MalformedRequest(f"?{name}= must be between {low} and {high}", param=name)
    return value


def query_str(name: str) -> str | None:
    params = current_request().query_params or {}
    return params.get(name)


def idempotency_key() -> str | None:
    key = header("Idempotency-Key")
    if key is None:
        return None
    # Header values travel as Latin-1 (chalice local) or UTF-8 (API Gateway): only printable ASCII
    # reads the same through both, and in the DynamoDB key built from it.
    if not 1 <= len(key) <= 128 or not (key.isascii() and key.isprintable()):
        raise errors.MalformedRequest(
            "Idempotency-Key must be 1-128 printable ASCII characters", header="Idempotency-Key"
        )
    return key


def encode_cursor(last_key: dict[str, Any] | None) -> str | None:
    """The opaque `next_cursor` for a page that ends at `last_key`, signed for this list (see below)."""
    if not last_key:
        return None
    payload = base64.urlsafe_b64encode(json.dumps(last_key, separators=(",", ":")).encode()).decode().rstrip("=")
    return f"{payload}.{_cursor_mac(payload)}"


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    """The key a `cursor` of `encode_cursor` ends at, or 400 for any other string."""
    if not cursor:
        return None
    payload, _, mac = cursor.rpartition(".")
    if not payload or not hmac.compare_digest(mac.encode(), _cursor_mac(payload).encode()):
        raise errors.MalformedRequest("next_cursor is not one this API gave out for this list")
    try:
        value = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise errors.MalformedRequest("next_cursor is not one this API gave out") from exc
    if not isinstance(value, dict):
        raise errors.MalformedRequest("next_cursor is not one this API gave out")
    return value


def _cursor_mac(payload: str) -> str:
    """A cursor is signed with the server's secret for the list it continues (path, filters, caller).
    Unsigned, a client could hand DynamoDB any start key: a malformed one fails the query (a 500),
    and one from another list (another customer's orders, another filter) starts a query where
    that query's key condition does not reach."""
    request = current_request()
    who = _principal.get()
    params = sorted((k, v) for k, v in (request.query_params or {}).items() if k not in ("cursor", "limit"))
    scope = json.dumps([request.path, params, who.sub if who else None], separators=(",", ":"))
    key = b"cursor:" + config.settings().jwt_secret.get_secret_value().encode()
    return hmac.new(key, f"{scope}|{payload}".encode(), hashlib.sha256).hexdigest()[:32]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body=json.dumps(body, ensure_ascii=False),
        status_code=status,
        headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})},
    )


def ok(body: Any) -> Response:
    return json_response(body, 200)


def created(body: Any) -> Response:
    return json_response(body, 201)
