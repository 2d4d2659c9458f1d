"""A coupon at checkout: what the order's pricing asks of it (`shared.ordering.model.OrderCoupon`,
met structurally: this module does not import ordering). docs/coupons.md, "At checkout"."""

from __future__ import annotations

from dataclasses import dataclass

from shared.coupons.model import Channel, Coupon, Kind
from shared.kernel.errors import CouponNotUsable


@dataclass(frozen=True)
class CouponAtCheckout:
    coupon: Coupon  # as read with the cart (the order's transaction locks exactly this version)

    @property
    def coupon_id(self) -> str:
        return self.coupon.coupon_id

    @property
    def is_shipping(self) -> bool:
        return self.coupon.terms.benefit.kind is Kind.SHIPPING

    def check_usable(self, now_ms: int) -> None:
        if Channel.ONLINE not in self.coupon.terms.channels:
            raise CouponNotUsable(
                "the coupon is for use in stores only", coupon_id=self.coupon_id, reason="offline_only"
            )
        self.coupon.check_usable(now_ms)

    def covers(self, sku: str, category: str | None) -> bool:
        return self.coupon.terms.scope.covers(sku, category)

    def discount(self, eligible_fen: int, shipping_fen: int, *, promoted: bool) -> int:
        terms = self.coupon.terms
        if promoted and not terms.stackable_with_promotions:
            raise CouponNotUsable(
                "the coupon does not combine with the promotion on this order",
                coupon_id=self.coupon_id,
                reason="not_stackable_with_promotions",
            )
        if eligible_fen <= 0:
            raise CouponNotUsable(
                "the coupon covers nothing in this cart", coupon_id=self.coupon_id, reason="out_of_scope"
            )
        threshold = terms.benefit.threshold_fen
        if eligible_fen < threshold:
            raise CouponNotUsable(
                "the cart is below the coupon's threshold",
                coupon_id=self.coupon_id,
                reason="below_threshold",
                threshold_fen=threshold,
                eligible_fen=eligible_fen,
            )
        return terms.benefit.saving(eligible_fen, shipping_fen)
