"""Pricing a cart: pure arithmetic on integer fen, no I/O.

Rules (docs/checkout.md says the same for people who do not read Python):

- One line per SKU. A cart that names a SKU twice is refused (`DuplicateSku`, 422) rather than
  merged, so the quote's lines are exactly the lines the client sent.
- Unit price: a flash-sale price (`unit_price_override`) replaces the list price and is not
  combined with the member price; otherwise members pay `Product.member_price_fen` where the
  product has one. The member saving therefore shows in `unit_price_fen` (it is a price, like the
  flash price), never in `discount_fen`: `discount_fen` and `applied` hold only order-level
  reductions, and `sum(applied.amount_fen) == discount_fen`.
- Order-level promotion (满减, "spend X, get Y off"): when the merchandise of the lines at their
  own (list or member) price reaches the threshold, Y fen come off. Flash-priced lines neither
  count toward the threshold nor take a share of the reduction. The reduction is allocated to the
  eligible lines in proportion to their value by largest remainder, so lines sum exactly.
- Shipping: pickup is free; other fulfilment types pay a flat fee per type unless the merchandise
  after discounts reaches the free-shipping threshold. Shipping is not allocated to lines.
- Coupons (docs/coupons.md, "At checkout"), after the promotion: a coupon id the customer does not
  hold is `UnknownCoupon` (422), one that cannot be used here is `CouponNotUsable` (422, with
  `details.reason`): never silently dropped. At most one merchandise coupon and one shipping
  coupon. A merchandise coupon takes off what it saves on the lines it covers (flash-priced lines
  excluded), after the promotion, capped at those lines' payable, allocated to them by largest
  remainder. Shipping is then priced on the merchandise after every discount, and a shipping
  coupon takes off at most the shipping; it is listed in `applied` (kind `shipping_coupon`) and
  lowers `shipping_fen`, so `discount_fen` (= the sum of the line discounts) is the merchandise
  reductions only.

Invariants (tests/unit/test_pricing_properties.py): every line's payable = unit * qty - discount
>= 0; sum of payables + shipping == total; refunds of a line, in any partition of its quantity,
sum exactly to what the line paid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from shared.catalog.model import Product
from shared.kernel.errors import CouponNotUsable, DuplicateSku, OrderTooLarge, RuleViolation, UnknownCoupon, UnknownSku
from shared.kernel.money import allocate
from shared.kernel.values import MAX_AMOUNT_FEN
from shared.ordering.model import Applied, OrderCoupon, PricedLine, Quote, refund_amount

# PricedLine, Applied, Quote and refund_amount are the order's own values, in shared.ordering.model
# (which imports only the kernel); pricing makes them, and its callers may import them from here.
__all__ = [
    "FULFILMENT_TYPES",
    "PICKUP",
    "Applied",
    "CartLine",
    "PricedLine",
    "PricingRules",
    "Quote",
    "price_cart",
    "refund_amount",
]

PICKUP = "pickup"
FULFILMENT_TYPES = frozenset({"delivery", "pickup", "ship_from_store", "same_city"})


@dataclass(frozen=True)
class CartLine:
    sku: str
    qty: int


def _default_shipping() -> Mapping[str, int]:
    return MappingProxyType({"delivery": 1000, "ship_from_store": 1000, "same_city": 1500})


@dataclass(frozen=True)
class PricingRules:
    """The merchant's pricing rules; `shared.platform.bootstrap.pricing_rules()` builds them from settings.

    Defaults: free shipping from 99 yuan of merchandise (after discounts), otherwise 10 yuan for
    delivery and ship-from-store and 15 yuan for same-city; pickup always free; 满300减30.
    A promotion threshold of 0 or an amount of 0 switches the promotion off.
    """

    free_shipping_threshold_fen: int = 9900
    shipping_fen: Mapping[str, int] = field(default_factory=_default_shipping)
    promotion_id: str = "FULL-300-OFF-30"
    promotion_threshold_fen: int = 30000
    promotion_off_fen: int = 3000

    def __post_init__(self) -> None:
        amounts = [self.free_shipping_threshold_fen, self.promotion_threshold_fen, self.promotion_off_fen]
        if any(a < 0 for a in (*amounts, *self.shipping_fen.values())):
            raise ValueError("pricing amounts must not be negative")
        if PICKUP in self.shipping_fen and self.shipping_fen[PICKUP] != 0:
            raise ValueError("pickup is free")
        if self.promotion_on and self.promotion_off_fen > self.promotion_threshold_fen:
            # Otherwise the reduction could exceed the merchandise it is taken from.
            raise ValueError("a promotion cannot take off more than its threshold")

    @property
    def promotion_on(self) -> bool:
        return self.promotion_threshold_fen > 0 and self.promotion_off_fen > 0

    def shipping_for(self, fulfilment_type: str, merchandise_fen: int) -> int:
        if fulfilment_type not in FULFILMENT_TYPES:
            raise RuleViolation("unknown fulfilment type", fulfilment_type=fulfilment_type)
        if fulfilment_type == PICKUP or merchandise_fen >= self.free_shipping_threshold_fen:
            return 0
        return self.shipping_fen.get(fulfilment_type, 0)


def price_cart(
    lines: Sequence[CartLine],
    products: Mapping[str, Product],
    *,
    is_member: bool,
    fulfilment_type: str,
    rules: PricingRules,
    unit_price_override: Mapping[str, int] | None = None,
    coupon_ids: Sequence[str] = (),
    coupons: Mapping[str, OrderCoupon] | None = None,
) -> Quote:
    """Price `lines` with the coupons named in `coupon_ids` (found in `coupons`, the customer's).
    Raises UnknownSku, DuplicateSku, UnknownCoupon, CouponNotUsable (422) and never returns a
    quote whose lines do not sum exactly to its total."""
    named = _named_coupons(coupon_ids, coupons or {})
    _check_lines(lines, products)
    overrides = unit_price_override or {}
    units = [_unit_price(products[line.sku], is_member, overrides.get(line.sku)) for line in lines]
    gross = [unit * line.qty for unit, line in zip(units, lines, strict=True)]
    eligible = [0 if line.sku in overrides else g for line, g in zip(lines, gross, strict=True)]

    applied: list[Applied] = []
    discounts = [0] * len(lines)
    if rules.promotion_on and sum(eligible) >= rules.promotion_threshold_fen:
        discounts = allocate(rules.promotion_off_fen, eligible)
        applied.append(Applied("promotion", rules.promotion_id, rules.promotion_off_fen))

    promoted = bool(applied)
    categories = [products[line.sku].category for line in lines]
    covered = [
        [e > 0 and c.covers(line.sku, cat) for line, cat, e in zip(lines, categories, eligible, strict=True)]
        for c in named
    ]
    for coupon, mask in zip(named, covered, strict=True):
        if not coupon.is_shipping:
            discounts = _apply_coupon(coupon, mask, gross, discounts, promoted, applied)

    priced = tuple(
        PricedLine(line.sku, line.qty, unit, discount, g - discount)
        for line, unit, g, discount in zip(lines, units, gross, discounts, strict=True)
    )
    subtotal = sum(gross)
    discount = sum(discounts)
    shipping = rules.shipping_for(fulfilment_type, subtotal - discount)
    for coupon, mask in zip(named, covered, strict=True):
        if coupon.is_shipping:
            base = sum(g - d for g, d, on in zip(gross, discounts, mask, strict=True) if on)
            off = _shipping_coupon(coupon, base, shipping, promoted)
            shipping -= off
            applied.append(Applied("shipping_coupon", coupon.coupon_id, off))
    if max(subtotal, subtotal - discount + shipping) > MAX_AMOUNT_FEN:
        # Refused here, at quote and order alike, so that every order placed can be paid in one payment.
        raise OrderTooLarge("the order is above what one payment carries", max_fen=MAX_AMOUNT_FEN)
    return Quote(priced, subtotal, discount, shipping, subtotal - discount + shipping, tuple(applied))


def _named_coupons(coupon_ids: Sequence[str], coupons: Mapping[str, OrderCoupon]) -> list[OrderCoupon]:
    """The coupons named, each the customer's, at most one per kind group."""
    unknown = [c for c in coupon_ids if c not in coupons]
    if unknown:
        raise UnknownCoupon("no such coupon in your wallet", coupon_id=unknown[0], coupon_ids=list(coupon_ids))
    if len(set(coupon_ids)) != len(coupon_ids):
        raise CouponNotUsable("a coupon is named twice", coupon_id=coupon_ids[0], reason="named_twice")
    named = [coupons[c] for c in coupon_ids]
    for shipping in (False, True):
        group = [c.coupon_id for c in named if c.is_shipping is shipping]
        if len(group) > 1:
            raise CouponNotUsable(
                "one merchandise coupon and one shipping coupon per order",
                coupon_id=group[1],
                coupon_ids=group,
                reason="one_per_kind",
            )
    return named


def _apply_coupon(
    coupon: OrderCoupon,
    mask: list[bool],
    gross: list[int],
    discounts: list[int],
    promoted: bool,
    applied: list[Applied],
) -> list[int]:
    """The line discounts after `coupon`: what it saves on the lines it covers, capped at their
    payable, allocated to them by largest remainder."""
    base = [g - d if on else 0 for g, d, on in zip(gross, discounts, mask, strict=True)]
    eligible = sum(base)
    off = min(coupon.discount(eligible, 0, promoted=promoted), eligible)
    applied.append(Applied("coupon", coupon.coupon_id, off))
    return [d + share for d, share in zip(discounts, allocate(off, base), strict=True)]


def _shipping_coupon(coupon: OrderCoupon, eligible_fen: int, shipping_fen: int, promoted: bool) -> int:
    if shipping_fen <= 0:
        raise CouponNotUsable(
            "this order has no shipping to take off", coupon_id=coupon.coupon_id, reason="no_shipping"
        )
    return min(coupon.discount(eligible_fen, shipping_fen, promoted=promoted), shipping_fen)


def _check_lines(lines: Sequence[CartLine], products: Mapping[str, Product]) -> None:
    if not lines:
        raise RuleViolation("a cart needs at least one line")
    seen: set[str] = set()
    for line in lines:
        if line.sku in seen:
            raise DuplicateSku("each SKU may appear on one line only; add up the quantities", sku=line.sku)
        seen.add(line.sku)
        if line.qty <= 0:
            raise RuleViolation("quantities must be positive", sku=line.sku, qty=line.qty)
    unknown = [line.sku for line in lines if line.sku not in products]
    if unknown:
        raise UnknownSku("no such product", sku=unknown[0], skus=unknown)


def _unit_price(product: Product, is_member: bool, override_fen: int | None) -> int:
    if override_fen is not None:
        if override_fen < 0:
            raise RuleViolation("a price must not be negative", sku=product.sku)
        return override_fen
    return product.price_for(is_member)
