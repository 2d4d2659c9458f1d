from __future__ import annotations

from pynamodb.attributes import UnicodeAttribute

from shared.data.table import BaseItem


class PrepayItem(BaseItem, discriminator="Prepay"):
    """pk `ORDER#<id>`, sk `PREPAY#<provider>`: the provider's prepay of the order, beside it, so the
    same order gets the same prepay while it is usable (docs/payments.md). Written conditional on the
    one read (absent, or the same `created_at`), so two concurrent prepays keep one."""

    order_id = UnicodeAttribute()
    openid = UnicodeAttribute()
    prepay_id = UnicodeAttribute()
    pay_timestamp = UnicodeAttribute()
    pay_nonce = UnicodeAttribute()

    @staticmethod
    def key(order_id: str, provider: str = "wechatpay") -> tuple[str, str]:
        return f"ORDER#{order_id}", f"PREPAY#{provider}"
