"""Request idempotency as API.md defines it (`Idempotency-Key`).

The same key with the same body returns the stored status and body and creates nothing; the same
key with a different body is `IdempotencyKeyReused` (422). The record is a conditional item written
in the same DynamoDB transaction as the thing it protects (moto ignores `ClientRequestToken`, and a
separate "claim" write could succeed while the real write fails).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
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


def fingerprint(payload: Any) -> str:
    """A hash of the request's meaning: key order and whitespace in the JSON do not matter."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
