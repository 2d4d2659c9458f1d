"""The cart in the body of `POST /checkout/quote` and `POST /orders` (API.md, "Checkout and orders")."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from shared.kernel.values import Quantity, Sku
from shared.ordering.checkout import Cart
from shared.ordering.fulfilment import Fulfilment
from shared.ordering.pricing import CartLine
from shared.web.requests import FulfilmentIn

MAX_LINES = 50
MAX_POINTS = 100_000_000  # a bound for the schema; the balance and the rule decide
CouponId = Annotated[str, Field(min_length=1, max_length=64)]


class LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Sku
    qty: Quantity


class CartIn(BaseModel):
    """Duplicate SKUs pass the schema and are refused by pricing with 422 DUPLICATE_SKU naming the
    SKU; coupon ids pass and are refused with 422 UNKNOWN_COUPON until coupons exist."""

    model_config = ConfigDict(extra="forbid")

    lines: list[LineIn] = Field(min_length=1, max_length=MAX_LINES)
    coupon_ids: list[CouponId] = Field(default_factory=list, max_length=10)
    fulfilment: FulfilmentIn
    # The member's points to spend (docs/membership.md, "Spending at checkout"); 0: none.
    points: StrictInt = Field(default=0, ge=0, le=MAX_POINTS)  # strict: `false` is not 0 points

    def to_cart_lines(self) -> list[CartLine]:
        return [CartLine(line.sku, line.qty) for line in self.lines]

    def to_fulfilment(self) -> Fulfilment:
        return self.fulfilment.to_domain()

    def to_cart(self) -> Cart:
        return Cart(tuple(self.to_cart_lines()), tuple(self.coupon_ids), self.to_fulfilment(), self.points)
