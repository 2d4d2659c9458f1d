"""Bearer JWTs (HS256) with the claims of API.md: `sub`, `role`, `store_id` for store roles, `exp`;
and `dealer_id` for the dealer role (docs/commission.md, "Organisation")."""

from __future__ import annotations

import re
import warnings
from functools import cache
from types import ModuleType
from typing import Any

from shared.kernel import clock
from shared.kernel.errors import Unauthenticated
from shared.kernel.identity import STORE_ROLES, Principal, Role

# Seconds a token may be past its `exp` (or before its `nbf`): clocks of the issuer and of Lambda
# drift apart by a few seconds; a minute would keep a token that should be dead alive too long.
LEEWAY_S = 30
MAX_SUB = 128
ROLE_NAMES = frozenset(role.value for role in Role)
_STORE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")  # shared.kernel.values.LocationId
_PARTY_ID = _STORE_ID  # dealer ids are written in the same alphabet (shared.guides.organisation)


@cache
def _jwt() -> ModuleType:
    """PyJWT, imported on the first token rather than at cold start: public routes (the catalogue)
    never need it, and it is a sixth of app.py's import time where `cryptography` is installed."""
    import jwt

    # The local and test secrets of API.md are short on purpose; deployed stages must use 32+ bytes,
    # which Settings enforces, so the library's warning adds nothing.
    warnings.filterwarnings("ignore", category=jwt.warnings.InsecureKeyLengthWarning)
    return jwt


def issue_token(
    secret: str,
    sub: str,
    role: Role | str,
    store_id: str | None = None,
    ttl_s: int = 3600,
    *,
    dealer_id: str | None = None,
) -> str:
    claims: dict[str, object] = {"sub": sub, "role": str(role), "exp": clock.now_ms() // 1000 + ttl_s}
    if store_id is not None:
        claims["store_id"] = store_id
    if dealer_id is not None:
        claims["dealer_id"] = dealer_id
    return _jwt().encode(claims, secret, algorithm="HS256")


def authenticate(
    authorization: str | None,
    secret: str,
    *,
    issuer: str | None = None,
    audience: str | None = None,
    leeway_s: int = LEEWAY_S,
) -> Principal:
    """The principal behind an `Authorization: Bearer` header, or Unauthenticated (401).

    Beyond the signature: `exp` an integer (PyJWT itself takes `"1800000000"`, spaces and all),
    `sub` a non-blank string (a blank one would make every such token one person), `role` one of
    the five, `store_id` for store roles; `iss` and `aud` when the stage names them. No message
    repeats the token or a claim's value."""
    if not authorization:
        raise Unauthenticated("missing Authorization header")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Authorization must be 'Bearer <token>'")
    jwt = _jwt()
    try:
        claims = jwt.decode(
            token.strip(),
            secret,
            algorithms=["HS256"],
            leeway=leeway_s,
            issuer=issuer or None,
            audience=audience or None,
            options={"require": ["exp", "sub", "role", *(["iss"] if issuer else []), *(["aud"] if audience else [])]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("token expired") from exc
    except (jwt.InvalidIssuerError, jwt.InvalidAudienceError) as exc:
        raise Unauthenticated("token from another issuer or for another audience") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated("invalid token") from exc
    return _principal_of(claims)


def _principal_of(claims: dict[str, Any]) -> Principal:
    if not _is_int(claims["exp"]) or any(n in claims and not _is_number(claims[n]) for n in ("iat", "nbf")):
        raise Unauthenticated("exp must be an integer (and iat, nbf numbers) of seconds since the epoch")
    sub = claims["sub"]
    if not isinstance(sub, str) or not sub.strip() or len(sub) > MAX_SUB or not sub.isprintable():
        raise Unauthenticated(f"sub must be a non-blank string of at most {MAX_SUB} printable characters")
    if not isinstance(claims["role"], str) or claims["role"] not in ROLE_NAMES:
        raise Unauthenticated("unknown role in token", roles=sorted(ROLE_NAMES))
    role = Role(claims["role"])
    if role is Role.DEALER:
        dealer_id = claims.get("dealer_id")
        if not isinstance(dealer_id, str) or not _PARTY_ID.fullmatch(dealer_id):
            raise Unauthenticated("the dealer role needs a dealer_id claim (a dealer id such as D001)")
        return Principal(sub=sub, role=role, dealer_id=dealer_id)
    store_id = claims.get("store_id")
    if role not in STORE_ROLES:
        return Principal(sub=sub, role=role)
    if not isinstance(store_id, str) or not _STORE_ID.fullmatch(store_id):
        raise Unauthenticated("store roles need a store_id claim (a location id such as S001)")
    return Principal(sub=sub, role=role, store_id=store_id)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return _is_int(value) or isinstance(value, float)
