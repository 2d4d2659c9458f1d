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
- Coupons: there is no coupon module yet, so every coupon id is refused (`UnknownCoupon`, 422);
  a coupon is never silently ignored.

Invariants (tests/unit/test_pricing_properties.py): every line's payable = unit * qty - discount
>= 0; sum of payables + shipping == total; refunds of a line, in any partition of its quantity,
sum exactly to what the line paid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from shared.catalog.model import Product
from shared.kernel.errors import DuplicateSku, OrderTooLarge, RuleViolation, UnknownCoupon, UnknownSku
from shared.kernel.money import allocate
from shared.kernel.values import MAX_AMOUNT_FEN
from shared.ordering.model import Applied, PricedLine, Quote, refund_amount

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
) -> Quote:
    """Price `lines`. Raises UnknownSku, DuplicateSku, UnknownCoupon (422) and never returns a
    quote whose lines do not sum exactly to its total."""
    if coupon_ids:
        raise UnknownCoupon("coupons are not accepted yet", coupon_id=coupon_ids[0], coupon_ids=list(coupon_ids))
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

    priced = tuple(
        PricedLine(line.sku, line.qty, unit, discount, g - discount)
        for line, unit, g, discount in zip(lines, units, gross, discounts, strict=True)
    )
    subtotal = sum(gross)
    discount = sum(discounts)
    shipping = rules.shipping_for(fulfilment_type, subtotal - discount)
    if max(subtotal, subtotal - discount + shipping) > MAX_AMOUNT_FEN:
        # Refused here, at quote and order alike, so that every order placed can be paid in one payment.
        raise OrderTooLarge("the order is above what one payment carries", max_fen=MAX_AMOUNT_FEN)
    return Quote(priced, subtotal, discount, shipping, subtotal - discount + shipping, tuple(applied))


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
