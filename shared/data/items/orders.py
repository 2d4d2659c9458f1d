from __future__ import annotations

import json
from typing import Any

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute

from shared.data.table import BaseItem


class CompactJSONAttribute(JSONAttribute):
    """JSON without the spaces after `,` and `:` and with text as UTF-8, not `\\uXXXX` escapes:
    the order's body is most of its size, and an order under 1 KB costs half the write units
    (docs/data-model.md, "Orders"). Read as any JSON, so bodies written before read the same."""

    def serialize(self, value: Any) -> str | None:
        return None if value is None else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class OrderItem(BaseItem, discriminator="Order"):
    """pk `ORDER#<id>`, sk `ORDER`.
    gsi1 `CUSTOMER#<sub>` / `<created_at iso>#<id>`: a customer's orders, newest first.
    gsi2 `DUE#<shard>` / `<expires_at iso>#<id>`: present only while PENDING_PAYMENT, so the expiry
    sweeper finds due orders with a key condition (gsi2sk <= now) instead of a scan. Sharded over
    DUE_SHARDS partitions so a flash sale's burst of pending orders does not make one hot GSI partition.
    Every change is a Put conditional on the status and `version` read.
    A placed order carries the idempotency of the request that created it (docs/orders.md,
    "Idempotency"): its id is derived from the caller and the Idempotency-Key, and `request_hash`
    (the request's fingerprint, shortened) stays on it; a replay is answered the order as placed,
    rebuilt from the item (`Order.first_answer`), so no copy of the response is kept. The body
    leaves out fields at their defaults (null, 0, empty). The table's stream carries its changes to
    the relay, which derives the order's events from them (docs/events.md)."""

    order_id = UnicodeAttribute()
    customer_id = UnicodeAttribute()
    status = UnicodeAttribute()
    version = NumberAttribute()
    expires_at = NumberAttribute()  # epoch ms
    location = UnicodeAttribute()
    flash_sale_id = UnicodeAttribute(null=True)
    total_fen = NumberAttribute()
    body = CompactJSONAttribute()  # the rest of the order (lines, amounts, fulfilment, history, ...)
    # The creating request's fingerprint: 22 characters (base64url of its first 16 bytes); 64 hex
    # characters on orders placed before it was shortened, which also kept a `response` attribute
    # (a zlib'd copy of the first answer), no longer read or written.
    request_hash = UnicodeAttribute(null=True)

    @staticmethod
    def key(order_id: str) -> tuple[str, str]:
        return f"ORDER#{order_id}", "ORDER"


class PaymentItem(BaseItem, discriminator="Payment"):
    """pk `PAYMENT#<transaction_id>`, sk `PAYMENT`: one per provider transaction, so the same
    notification twice has no second effect. status APPLIED (the order is paid by it) or
    NEEDS_REFUND (it arrived for an expired or cancelled order, paid an order twice, or named no
    order of ours). A notification whose transaction id is another order's is kept beside it, sk
    `CLASH#<order_id>` (NEEDS_REFUND, once per order).
    gsi1 `PAYMENTS#NEEDS_REFUND` / `<recorded iso>#<transaction_id>#<order_id>`, on NEEDS_REFUND
    items only (sparse: applied payments, a flash sale's thousands a second, never reach it):
    finance's list of payments to refund."""

    transaction_id = UnicodeAttribute()
    order_id = UnicodeAttribute()
    amount_fen = NumberAttribute()
    paid_at = UnicodeAttribute()
    status = UnicodeAttribute()  # APPLIED | NEEDS_REFUND | REFUNDED (leaves the gsi1 queue)
    reason = UnicodeAttribute(null=True)
    provider = UnicodeAttribute(null=True)  # "wechatpay"; absent: the HMAC webhook (before it was kept)
    refunded_by = UnicodeAttribute(null=True)  # "wechatpay:<refund_id>" or the finance user who marked it
    refunded_at = NumberAttribute(null=True)
    refund_note = UnicodeAttribute(null=True)
    # NEEDS_REFUND only: the order part of its PaymentNeedsRefund (compact JSON), which the relay
    # derives from this item's INSERT (docs/events.md).
    order_part = UnicodeAttribute(null=True)

    @staticmethod
    def key(transaction_id: str) -> tuple[str, str]:
        return f"PAYMENT#{transaction_id}", "PAYMENT"

    @staticmethod
    def clash_key(transaction_id: str, order_id: str) -> tuple[str, str]:
        return f"PAYMENT#{transaction_id}", f"CLASH#{order_id}"


class RefundItem(BaseItem, discriminator="Refund"):
    """pk `ORDER#<id>`, sk `REFUND#<refund_id>`: beside its order, so one query reads both.
    gsi1 `REFUNDS#<status>` / `<created iso>#<id>` lets merchant admins list requests to decide."""

    refund_id = UnicodeAttribute()
    order_id = UnicodeAttribute()
    customer_id = UnicodeAttribute()
    status = UnicodeAttribute()  # REQUESTED | ISSUED | REJECTED
    lines = JSONAttribute()  # [{"sku", "qty", "amount_fen"}]
    amount_fen = NumberAttribute()
    reason = UnicodeAttribute()
    restock = UnicodeAttribute(null=True)  # "yes" / "no" once decided
    # Paid back through the provider (WeChat Pay): PROCESSING until it settles, then SUCCESS, ABNORMAL,
    # CLOSED or REFUSED (docs/payments.md, "Refunds"); absent for the HMAC webhook's orders.
    payout_status = UnicodeAttribute(null=True)
    # ISSUED only: the order after the refund as RefundIssued shows it (compact JSON) and the time of
    # the decision; the relay derives RefundIssued from the change that sets them (docs/events.md).
    order_part = UnicodeAttribute(null=True)
    decided_at = NumberAttribute(null=True)
    # A request made with an Idempotency-Key (the refund id is derived from it): its fingerprint, and
    # the lines it asked for when the issue changed them (a gift's deduction), so a replay is answered
    # the first answer (docs/orders.md, "Refunds").
    request_hash = UnicodeAttribute(null=True)
    asked_lines = JSONAttribute(null=True)

    @staticmethod
    def key(order_id: str, refund_id: str) -> tuple[str, str]:
        return f"ORDER#{order_id}", f"REFUND#{refund_id}"


class SavedAddressItem(BaseItem, discriminator="SavedAddress"):
    """pk `CUSTOMER#<sub>`, sk `ADDRESS#DEFAULT`: the customer's default address (PUT /me/address),
    read by key when a flash order names no fulfilment. Personal data: never logged."""

    customer_id = UnicodeAttribute()
    address = JSONAttribute()  # {"recipient", "phone", "city", "detail", "lat"?, "lng"?}

    @staticmethod
    def key(customer_id: str) -> tuple[str, str]:
        return f"CUSTOMER#{customer_id}", "ADDRESS#DEFAULT"
