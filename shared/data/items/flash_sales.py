"""Flash-sale items (docs/flash-sales.md). Every hot thing has a partition of its own: each shard,
each buyer's count and each claim has its own `pk`, so no two of them share a partition's
1,000 writes per second."""

from __future__ import annotations

from pynamodb.attributes import BooleanAttribute, JSONAttribute, NumberAttribute, UnicodeAttribute

from shared.data.items.shard_counter import CounterShardItem
from shared.data.table import BaseItem

SALES_PARTITION = "FLASHSALES"


class FlashSaleItem(BaseItem, discriminator="FlashSale"):
    """pk `FLASH#<id>`, sk `SALE`: the campaign, immutable once created but for `cancelled_at`.
    gsi1 `FLASHSALES` / `<ends_at ms, 13 digits>#<id>`: the reconciler finds live and recent sales."""

    sale_id = UnicodeAttribute()
    sku = UnicodeAttribute()
    price_fen = NumberAttribute()
    quantity = NumberAttribute()
    per_user_limit = NumberAttribute()
    starts_at = NumberAttribute()  # epoch ms
    ends_at = NumberAttribute()  # epoch ms
    payment_window_s = NumberAttribute()
    shards = NumberAttribute()
    product_name = UnicodeAttribute()
    list_price_fen = NumberAttribute()
    location = UnicodeAttribute(null=True)  # whose stock holds the units (None: sales made before, WH)
    cancelled_at = NumberAttribute(null=True)  # epoch ms, set once when the merchant cancels the sale

    @staticmethod
    def key(sale_id: str) -> tuple[str, str]:
        return f"FLASH#{sale_id}", "SALE"


class FlashShardItem(CounterShardItem, discriminator="FlashShard"):
    """pk `FLASH#<id>#SHARD#<n>`, sk `SHARD`: one shard of the sale's units, a shard of the counter
    coupons use too (`shared.data.shard_counter`: shard, initial, remaining, ordered, taken, returned).
    remaining = initial + returned - ordered - taken - settled >= 0, kept by every write under a condition.
    `ordered`: units taken inside an order's own transaction (the order holds them atomically).
    `taken`: units taken by a single-item decrement before the order is written (the contended
    path); it only grows and numbers those units, so the reconciler can tell which were claimed."""

    sale_id = UnicodeAttribute()
    settled = NumberAttribute(null=True)  # units given back to the sale's location after its end
    # Set with the sale's `cancelled_at`: every purchase's decrement is conditional on its absence,
    # so a process that still has the sale cached sells nothing after the cancel.
    closed = BooleanAttribute(null=True)

    @staticmethod
    def key(sale_id: str, shard: int) -> tuple[str, str]:
        return f"FLASH#{sale_id}#SHARD#{shard}", "SHARD"


class FlashBuyerItem(BaseItem, discriminator="FlashBuyer"):
    """pk `FLASH#<id>#BUYER#<sub>`, sk `BUYER`: units the buyer holds in live orders of the sale.
    Moved in the order's transaction under `bought <= limit - qty`; given back on cancel/expiry."""

    bought = NumberAttribute()

    @staticmethod
    def key(sale_id: str, customer_id: str) -> tuple[str, str]:
        return f"FLASH#{sale_id}#BUYER#{customer_id}", "BUYER"


class FlashClaimItem(BaseItem, discriminator="FlashClaim"):
    """pk `FLASH#<id>#S<n>#U<first unit>`, sk `CLAIM`: who owns units first_unit .. first_unit+qty-1
    of shard n. status ORDER (an order holds them) or VOID (they went back to the shard, and the
    order that took them can never be written). Put under attribute_not_exists(pk), so exactly one
    of the order and the give-back wins.
    gsi1 `FLASHUNITS#<id>#<n>` / `<first unit, 12 digits>`: the reconciler reads a shard's claims in order."""

    sale_id = UnicodeAttribute()
    shard = NumberAttribute()
    first_unit = NumberAttribute()
    qty = NumberAttribute()
    status = UnicodeAttribute()  # ORDER | VOID
    order_id = UnicodeAttribute(null=True)

    @staticmethod
    def key(sale_id: str, shard: int, first_unit: int) -> tuple[str, str]:
        return f"FLASH#{sale_id}#S{shard}#U{first_unit:012d}", "CLAIM"

    @staticmethod
    def index_key(sale_id: str, shard: int, first_unit: int) -> tuple[str, str]:
        return f"FLASHUNITS#{sale_id}#{shard}", f"{first_unit:012d}"


class FlashReconcileItem(BaseItem, discriminator="FlashReconcile"):
    """pk `FLASH#<id>`, sk `RECONCILE`: how far the reconciler has checked each shard.
    marks: {"<shard>": [checked_through, pending_through, pending_seen_at_ms]}; `version` makes two
    reconcilers running at once take turns."""

    marks = JSONAttribute()
    version = NumberAttribute()

    @staticmethod
    def key(sale_id: str) -> tuple[str, str]:
        return f"FLASH#{sale_id}", "RECONCILE"
