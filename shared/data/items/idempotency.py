from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute

from shared.data.table import BaseItem


class IdempotencyItem(BaseItem, discriminator="Idempotency"):
    """pk `IDEMPOTENCY#<scope>#<key>`, sk `IDEMPOTENCY`. Written with `attribute_not_exists(pk)` in
    the same transaction as what it protects; holds the response to replay. `ttl` clears it after a day."""

    request_hash = UnicodeAttribute()
    status_code = NumberAttribute()
    response_body = UnicodeAttribute()

    @staticmethod
    def key(scope: str, idempotency_key: str) -> tuple[str, str]:
        return f"IDEMPOTENCY#{scope}#{idempotency_key}", "IDEMPOTENCY"
