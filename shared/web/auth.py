"""Bearer JWTs (HS256) with the claims of API.md: `sub`, `role`, `store_id` for store roles, `exp`."""

from __future__ import annotations

import warnings
from functools import cache
from types import ModuleType

from shared.kernel import clock
from shared.kernel.errors import Unauthenticated
from shared.kernel.identity import STORE_ROLES, Principal, Role


@cache
def _jwt() -> ModuleType:
    """PyJWT, imported on the first token rather than at cold start: public routes (the catalogue)
    never need it, and it is a sixth of app.py's import time where `cryptography` is installed."""
    import jwt

    # The local and test secrets of API.md are short on purpose; deployed stages must use 32+ bytes,
    # which Settings enforces, so the library's warning adds nothing.
    warnings.filterwarnings("ignore", category=jwt.warnings.InsecureKeyLengthWarning)
    return jwt


def issue_token(secret: str, sub: str, role: Role | str, store_id: str | None = None, ttl_s: int = 3600) -> str:
    claims: dict[str, object] = {"sub": sub, "role": str(role), "exp": clock.now_ms() // 1000 + ttl_s}
    if store_id is not None:
        claims["store_id"] = store_id
    return _jwt().encode(claims, secret, algorithm="HS256")


def authenticate(authorization: str | None, secret: str) -> Principal:
    """The principal behind an `Authorization: Bearer` header, or Unauthenticated (401)."""
    if not authorization:
        raise Unauthenticated("missing Authorization header")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Authorization must be 'Bearer <token>'")
    jwt = _jwt()
    try:
        claims = jwt.decode(token.strip(), secret, algorithms=["HS256"], options={"require": ["exp", "sub", "role"]})
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated("invalid token") from exc
    try:
        role = Role(claims["role"])
    except ValueError as exc:
        raise Unauthenticated("unknown role in token", role=str(claims["role"])) from exc
    store_id = claims.get("store_id")
    if role in STORE_ROLES and not store_id:
        raise Unauthenticated("store roles need a store_id claim")
    return Principal(sub=str(claims["sub"]), role=role, store_id=store_id)
