from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute

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


class ProviderRefundItem(BaseItem, discriminator="ProviderRefund"):
    """pk `ORDER#<order id>`, sk `PAYOUT#<out_refund_no>`: money going back through WeChat Pay, beside the
    order (a REFUND.* notification names both). Every change is conditional on `version`.
    gsi2 `PAYOUTS#OPEN` / `<next check iso>#<out_refund_no>` while PENDING or PROCESSING (sparse: the
    query job reads the due ones by key condition, never a scan); gsi1 `PAYOUTS#ATTENTION` /
    `<updated iso>#<out_refund_no>` once ABNORMAL, CLOSED or REFUSED: finance's list."""

    out_refund_no = UnicodeAttribute()
    order_id = UnicodeAttribute()
    source = UnicodeAttribute()  # "refund" | "payment"
    source_id = UnicodeAttribute()  # the refund id, or the transaction id of the payment
    transaction_id = UnicodeAttribute()
    refund_fen = NumberAttribute()
    total_fen = NumberAttribute()
    reason = UnicodeAttribute()
    status = UnicodeAttribute()
    version = NumberAttribute()
    updated_at = NumberAttribute()
    next_check_at = NumberAttribute()
    provider_refund_id = UnicodeAttribute(null=True)
    provider_code = UnicodeAttribute(null=True)
    success_time = UnicodeAttribute(null=True)
    received_account = UnicodeAttribute(null=True)

    @staticmethod
    def key(order_id: str, out_refund_no: str) -> tuple[str, str]:
        return f"ORDER#{order_id}", f"PAYOUT#{out_refund_no}"
