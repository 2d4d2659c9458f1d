"""Payment providers behind one interface, and the HMAC webhook of API.md.

`PaymentProvider.verify` turns a provider's HTTP notification into a `PaymentNotice` or raises
(401 bad or stale signature, 400 / 422 bad body). A WeChat Pay adapter would verify its own
signature scheme and return the same notice; nothing after `verify` knows which provider spoke.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.kernel.errors import BadSignature, MalformedRequest, ValidationFailed
from shared.kernel.values import Fen

SIGNATURE_HEADER = "x-pay-signature"


@dataclass(frozen=True)
class PaymentNotice:
    order_id: str
    transaction_id: str
    amount_fen: int
    paid_at: str


class PaymentProvider(Protocol):
    def verify(self, headers: Mapping[str, str], raw_body: bytes, now_s: float) -> PaymentNotice: ...


class _NoticeBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    order_id: str = Field(min_length=1, max_length=64)
    transaction_id: str = Field(min_length=1, max_length=128)
    amount_fen: Fen
    paid_at: str = Field(min_length=1, max_length=40)


def sign(secret: str, raw_body: bytes, timestamp: int) -> str:
    """The `X-Pay-Signature` header value: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw_body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass(frozen=True)
class HmacWebhookProvider:
    secret: str
    tolerance_s: int = 300

    def verify(self, headers: Mapping[str, str], raw_body: bytes, now_s: float) -> PaymentNotice:
        header = headers.get(SIGNATURE_HEADER) or headers.get("X-Pay-Signature")
        if not header:
            raise BadSignature("missing X-Pay-Signature")
        parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        try:
            timestamp = int(parts["t"])
            supplied = parts["v1"]
        except (KeyError, ValueError) as exc:
            raise BadSignature("X-Pay-Signature must be t=<unix seconds>,v1=<hex>") from exc
        if abs(now_s - timestamp) > self.tolerance_s:
            raise BadSignature("stale signature", tolerance_s=self.tolerance_s)
        expected = sign(self.secret, raw_body, timestamp).split("v1=", 1)[1]
        if not hmac.compare_digest(expected, supplied):
            raise BadSignature("signature does not match the body")
        try:
            data = json.loads(raw_body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MalformedRequest("notification body is not JSON") from exc
        try:
            body = _NoticeBody.model_validate(data)
        except ValidationError as exc:
            raise ValidationFailed(
                "notification breaks the schema",
                errors=[{"field": ".".join(map(str, e["loc"])), "problem": e["msg"]} for e in exc.errors()],
            ) from exc
        return PaymentNotice(body.order_id, body.transaction_id, body.amount_fen, body.paid_at)
