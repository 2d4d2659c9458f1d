"""The HMAC webhook of API.md: a `PaymentProvider` (shared.payments.ports) that checks the
`X-Pay-Signature` header and returns a `PaymentNotice`. A WeChat Pay adapter would verify its own
signature scheme and return the same notice.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.kernel.errors import BadSignature, ValidationFailed
from shared.kernel.json_body import parse_json
from shared.kernel.values import Fen
from shared.payments.model import PaymentNotice

SIGNATURE_HEADER = "x-pay-signature"
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")  # ASCII digits only; 12 reach the year 33658
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


class _NoticeBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    order_id: str = Field(min_length=1, max_length=64)
    transaction_id: str = Field(min_length=1, max_length=128)
    amount_fen: Fen
    paid_at: str = Field(min_length=1, max_length=40)

    @field_validator("paid_at")
    @classmethod
    def _iso_8601_with_zone(cls, value: str) -> str:
        """API.md: times are ISO-8601 (UTC); one without a zone, or "yesterday", is refused with 422."""
        try:
            when = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError("paid_at must be an ISO-8601 time such as 2026-11-23T08:00:00Z") from exc
        if when.tzinfo is None:
            raise ValueError("paid_at needs a zone (Z or +08:00)")
        return value


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
        timestamp, supplied = _signature_parts(header)
        if abs(now_s - timestamp) > self.tolerance_s:
            raise BadSignature("stale signature", tolerance_s=self.tolerance_s)
        expected = sign(self.secret, raw_body, timestamp).split("v1=", 1)[1]
        if not hmac.compare_digest(expected.encode(), supplied.lower().encode()):
            raise BadSignature("signature does not match the body")
        data = parse_json(raw_body, "notification body")
        try:
            body = _NoticeBody.model_validate(data)
        except ValidationError as exc:
            raise ValidationFailed(
                "notification breaks the schema",
                errors=[{"field": ".".join(map(str, e["loc"])), "problem": e["msg"]} for e in exc.errors()],
            ) from exc
        return PaymentNotice(body.order_id, body.transaction_id, body.amount_fen, body.paid_at)


def _signature_parts(header: str) -> tuple[int, str]:
    """(t, v1) of `t=<unix seconds>,v1=<hex>`, or BadSignature. Checked by shape before use: `int()`
    takes 4,300 digits (and non-ASCII ones), whose distance from now overflows a float, and
    `compare_digest` refuses non-ASCII text with a TypeError; both were 500s."""
    parts = dict(part.strip().split("=", 1) for part in header.split(",") if "=" in part)
    timestamp, supplied = parts.get("t", ""), parts.get("v1", "")
    if not _UNIX_SECONDS.fullmatch(timestamp) or not _HEX_SHA256.fullmatch(supplied):
        raise BadSignature("X-Pay-Signature must be t=<unix seconds>,v1=<64 hex digits>")
    return int(timestamp), supplied
