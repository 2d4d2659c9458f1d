"""Promotion items (docs/pricing.md, "Where checkout finds the promotions"; docs/data-model.md)."""

from __future__ import annotations

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute

from shared.data.table import BaseItem

PROMOTIONS_PARTITION = "PROMOTIONS"
END_DIGITS = 15  # epoch ms, zero-padded so that the index sorts promotions by their end


class PromotionItem(BaseItem, discriminator="Promotion"):
    """pk `PROMO#<id>`, sk `PROMOTION`: one promotion, written under `version` (a conditional put).
    gsi1 `PROMOTIONS` / `<ends ms, 15 digits>#<id>`: the promotions not yet ended are one Query of
    one partition, `gsi1sk > <now>` (never a Scan); the ended ones stay for the record, below it."""

    promotion_id = UnicodeAttribute()
    record = JSONAttribute()  # shared.promotions.model.Promotion.to_record()
    starts_at = NumberAttribute()  # epoch ms
    ends_at = NumberAttribute()
    version = NumberAttribute()
    updated_at = NumberAttribute()

    @staticmethod
    def key(promotion_id: str) -> tuple[str, str]:
        return f"PROMO#{promotion_id}", "PROMOTION"

    @staticmethod
    def index_key(ends_ms: int, promotion_id: str) -> str:
        return f"{ends_ms:0{END_DIGITS}d}#{promotion_id}"
