"""Request models of the promotion API (API.md, "Promotions"; the fields beyond it are in
docs/openapi.yaml). Shapes and ranges here; the rules that tie fields together (tiers ascending, an
amount never above its threshold, a limited price per SKU) are the domain's
(`shared.promotions.model`), also 422."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictInt

from shared.kernel.values import Fen, PriceFen, Sku
from shared.promotions.model import Kind, Promotion, Tier
from shared.web.requests import ScopeIn

PromotionId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]
Title = Annotated[str, Field(min_length=1, max_length=100)]


def ms(when: AwareDatetime) -> int:
    return int(when.timestamp() * 1000)


class PromotionPath(BaseModel):
    promotion_id: PromotionId


class TierIn(BaseModel):
    """By amount (`threshold_fen`) or by item count (`min_qty`); `off_fen` or `percent_off` for a
    threshold promotion, `gift_sku` and `gift_qty` for a gift."""

    model_config = ConfigDict(extra="forbid")

    threshold_fen: Fen | None = None
    min_qty: Annotated[StrictInt, Field(ge=1, le=1_000_000)] | None = None
    off_fen: Fen | None = None
    percent_off: Annotated[StrictInt, Field(ge=1, le=99)] | None = None
    gift_sku: Sku | None = None
    gift_qty: Annotated[StrictInt, Field(ge=1, le=99)] | None = None

    def to_tier(self) -> Tier:
        return Tier(
            threshold_fen=self.threshold_fen or 0,
            min_qty=self.min_qty or 0,
            off_fen=self.off_fen,
            percent_off=self.percent_off,
            gift_sku=self.gift_sku,
            gift_qty=self.gift_qty or 0,
        )


class PromotionIn(BaseModel):
    """`version`: the version you read (0: create only); left out, the PUT replaces whatever is
    there, after any PUT that got there first."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["spend_threshold", "quantity_threshold", "limited_price", "gift"]
    name: Title | None = None
    tiers: Annotated[list[TierIn], Field(max_length=10)] | None = None
    repeat: StrictBool = False
    scope: ScopeIn | None = None
    price_fen: PriceFen | None = None
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    version: Annotated[StrictInt, Field(ge=0, le=10**9)] | None = None

    def to_draft(self, promotion_id: str) -> Promotion:
        return Promotion(
            promotion_id=promotion_id,
            kind=Kind(self.kind),
            starts_ms=ms(self.starts_at),
            ends_ms=ms(self.ends_at),
            tiers=tuple(t.to_tier() for t in self.tiers or ()),
            repeat=self.repeat,
            scope=(self.scope or ScopeIn()).to_scope(),
            price_fen=self.price_fen,
            name=self.name or promotion_id,
        )
