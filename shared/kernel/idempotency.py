"""Request idempotency as API.md defines it (`Idempotency-Key`).

The same key with the same body returns the stored status and body and creates nothing; the same
key with a different body is `IdempotencyKeyReused` (422). Where a request creates one item (an
order), the item carries it: its id is derived from the caller and the key (`derived_id`), it is put
with `attribute_not_exists`, and it keeps the fingerprint and the response (docs/orders.md,
"Idempotency"). Elsewhere the record is a conditional item of its own, written in the same DynamoDB
transaction as the thing it protects (moto ignores `ClientRequestToken`, and a separate "claim"
write could succeed while the real write fails).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

AUTO_PREFIX = "auto:"  # marks keys made by the server for a request that came without one


@dataclass(frozen=True)
class IdempotentRequest:
    scope: str  # who and what: e.g. "orders:<customer sub>", so keys of two users never collide
    key: str
    fingerprint: str

    @property
    def client_supplied(self) -> bool:
        return not self.key.startswith(AUTO_PREFIX)

    @classmethod
    def of(cls, scope: str, key: str | None, payload: Any) -> IdempotentRequest:
        """`key` None means the client sent none: a fresh key still makes our own retries safe."""
        return cls(scope=scope, key=key or f"{AUTO_PREFIX}{uuid.uuid4()}", fingerprint=fingerprint(payload))


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: dict[str, Any]
    # True when this is the answer stored by an earlier request with the key (nothing new was
    # written). Not part of the value: a replay equals the first response.
    replayed: bool = field(default=False, compare=False)


# Without a secret the derived id is a namespaced hash: deterministic, but computable by anyone who
# knows the caller and the key (only the caller, since keys are the client's own random strings).
ID_NAMESPACE = b"shop-suite/idempotent-resource-id/v1"


def derived_id(request: IdempotentRequest, secret: bytes | None, prefix: str) -> str:
    """The id of the one item a creating request makes: the same for every replay of (scope, key),
    different across callers (the scope names the caller) and across keys. HMAC-SHA256 under
    `secret` when there is one, so ids cannot be computed from a guessed key; else SHA-256 over a
    fixed namespace. 128 bits, hex, behind `prefix`."""
    message = b"\x00".join((request.scope.encode(), request.key.encode()))
    if secret:
        digest = hmac.new(secret, message, hashlib.sha256).hexdigest()
    else:
        digest = hashlib.sha256(ID_NAMESPACE + b"\x00" + message).hexdigest()
    return f"{prefix}{digest[:32]}"


def fingerprint(payload: Any) -> str:
    """A hash of the request's meaning: key order and whitespace in the JSON do not matter."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
