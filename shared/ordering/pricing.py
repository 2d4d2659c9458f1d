"""Pricing a cart: pure arithmetic on integer fen, no I/O.

The order of application is fixed (docs/pricing.md says it for people who do not read Python):
limited-time price, member price, threshold promotions (满减 / 满折, and 满赠 gifts), coupons,
shipping, shipping coupon.

- One line per SKU. A cart that names a SKU twice is refused (`DuplicateSku`, 422) rather than
  merged; the quote's lines are the lines the client sent, then one line per gift given.
- Unit price: a flash-sale price (`unit_price_override`) replaces the list price and is not
  combined with anything. Otherwise a running `limited_price` promotion gives the line its final
  price (the lowest such price, and only when it is below what the customer would pay anyway);
  members pay `Product.member_price_fen` where it is lower, less the member discount
  (`member_discount_bp`, the best of the member's level and paid membership, docs/pricing.md,
  "Member benefits"), rounded per unit in the merchant's favour. Those are prices: they show in
  `unit_price_fen`, never in `discount_fen`. A flash- or limited-priced line takes no other
  promotion and no coupon (不与其他优惠同享).
- Threshold promotions, measured on the covered lines at their own (list or member) price: each
  line takes at most one; the promotion that saves the most on the lines still free goes first
  (the smaller id on a tie), then the next. Each saving is capped at its lines' merchandise and
  allocated to them in proportion to their value by largest remainder, so lines sum exactly.
- Gifts (满赠): a gift promotion reached adds a line of its gift SKU at unit price 0 (its stock is
  reserved like any line's). A gift whose SKU is already a line of the cart, is not in the
  catalogue or is short at the order's location is not given, and the quote says why.
- Coupons (docs/coupons.md, "At checkout"), after the promotions: a coupon id the customer does not
  hold is `UnknownCoupon` (422), one that cannot be used here is `CouponNotUsable` (422, with
  `details.reason`): never silently dropped. At most one merchandise coupon and one shipping
  coupon. A merchandise coupon takes off what it saves on the lines it covers, after the
  promotions, capped at those lines' payable, allocated to them by largest remainder.
- Shipping is priced on the merchandise after every discount, and a shipping coupon takes off at
  most the shipping; it is listed in `applied` (kind `shipping_coupon`) and lowers `shipping_fen`,
  so `discount_fen` (= the sum of the line discounts) is the merchandise reductions only.
- Points (docs/membership.md, "Spending at checkout"), last: the member's points pay part of the
  merchandise after promotions and coupons, at the merchant's rate, capped by the rule (basis
  points of that payable, and fen) and never below 1% of it; allocated to the lines by largest
  remainder like any discount, and listed in `applied` (kind `points`, id the points spent).
  Points never pay shipping, and shipping is priced before them: spending points never loses
  free shipping. Flash- and limited-priced lines take none.

Invariants (tests/unit/test_pricing_properties.py, tests/unit/test_promotions_pricing.py): every
line's payable = unit * qty - discount >= 0; sum of payables + shipping == total; every discount
within what it applies to; refunds of a line, in any partition of its quantity, sum exactly to
what the line paid.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from shared.catalog.model import Product
from shared.kernel.errors import (
    CouponNotUsable,
    DuplicateSku,
    InsufficientPoints,
    OrderTooLarge,
    RuleViolation,
    UnknownCoupon,
    UnknownSku,
)
from shared.kernel.money import allocate
from shared.kernel.values import MAX_AMOUNT_FEN
from shared.ordering.model import (
    Applied,
    GiftTerms,
    OrderCoupon,
    OrderPromotion,
    PricedLine,
    PromotionApplied,
    Quote,
    refund_amount,
)

# PricedLine, Applied, Quote and refund_amount are the order's own values, in shared.ordering.model
# (which imports only the kernel); pricing makes them, and its callers may import them from here.
__all__ = [
    "FULFILMENT_TYPES",
    "PICKUP",
    "Applied",
    "CartLine",
    "PointsOffer",
    "PricedLine",
    "PricingRules",
    "PromotionApplied",
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


POINTS_KIND = "points"  # `Applied.kind` of a points deduction; its `id` is the number of points spent
BP = 10_000


@dataclass(frozen=True)
class PointsOffer:
    """The points a cart names (`points`) and the merchant's rule for spending them, as checkout
    read them: `per_yuan` points take one yuan off (0: points cannot be spent), capped at `cap_bp`
    of the merchandise payable after promotions and coupons and, when above 0, at `cap_fen`.
    `available`: the member's points as read (None: not read); the order's own transaction is the
    check that counts (docs/membership.md, "Spending at checkout")."""

    points: int
    per_yuan: int
    cap_bp: int
    cap_fen: int = 0
    available: int | None = None

    def deduction(self, payable_fen: int) -> tuple[int, int]:
        """(fen off, points spent) on merchandise of `payable_fen`: the fen the points buy, capped,
        and the fewest of the points named that buy them (a fraction of a fen is never paid for)."""
        if self.points <= 0:
            return 0, 0
        if self.per_yuan <= 0:
            raise RuleViolation("this merchant does not take points", points=self.points, reason="points_not_accepted")
        cap = payable_fen * min(self.cap_bp, MAX_POINTS_BP) // BP
        if self.cap_fen > 0:
            cap = min(cap, self.cap_fen)
        fen = min(self.points * 100 // self.per_yuan, cap)
        spent = -(-fen * self.per_yuan // 100)
        if self.available is not None and spent > self.available:
            raise InsufficientPoints(
                "not enough points available", points=spent, available=self.available, reason="insufficient_points"
            )
        return fen, spent


MAX_POINTS_BP = 9_900  # at least 1% of the merchandise is paid in money: refunds return points against it


@dataclass(frozen=True)
class _Member:
    """What the customer's membership does to a product's price: member prices (`is_member`) and
    a discount in basis points off that price, the discount rounded down (in the merchant's favour)."""

    is_member: bool
    discount_bp: int = 0

    def price(self, product: Product) -> int:
        own = product.price_for(self.is_member)
        return own - own * self.discount_bp // BP


def points_spent(quote: Quote) -> int:
    """The points a quote spends (0: none)."""
    return sum(int(a.id) for a in quote.applied if a.kind == POINTS_KIND)


def _default_shipping() -> Mapping[str, int]:
    return MappingProxyType({"delivery": 1000, "ship_from_store": 1000, "same_city": 1500})


@dataclass(frozen=True)
class PricingRules:
    """The merchant's shipping rules; `shared.platform.bootstrap.pricing_rules()` builds them from
    settings. (Promotions are data, not settings: `shared.promotions`, read with the cart.)

    Defaults: free shipping from 99 yuan of merchandise (after discounts), otherwise 10 yuan for
    delivery and ship-from-store and 15 yuan for same-city; pickup always free.
    """

    free_shipping_threshold_fen: int = 9900
    shipping_fen: Mapping[str, int] = field(default_factory=_default_shipping)

    def __post_init__(self) -> None:
        if any(a < 0 for a in (self.free_shipping_threshold_fen, *self.shipping_fen.values())):
            raise ValueError("pricing amounts must not be negative")
        if PICKUP in self.shipping_fen and self.shipping_fen[PICKUP] != 0:
            raise ValueError("pickup is free")

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
    promotions: Sequence[OrderPromotion] = (),
    gifts_short: Collection[str] = (),
    points: PointsOffer | None = None,
    member_discount_bp: int = 0,
) -> Quote:
    """Price `lines` with the running `promotions` and the coupons named in `coupon_ids` (found in
    `coupons`, the customer's); `gifts_short`: gift SKUs the order's location cannot serve;
    `points`: the member's points to spend, last (InsufficientPoints, 409, past those read).
    Raises UnknownSku, DuplicateSku, UnknownCoupon, CouponNotUsable (422) and never returns a
    quote whose lines do not sum exactly to its total. `member_discount_bp`: the member's discount
    off its own unit prices (0..10,000), not on flash-sale prices."""
    if not 0 <= member_discount_bp <= BP:
        raise ValueError("member_discount_bp is 0..10000")
    member = _Member(is_member, member_discount_bp)
    named = _named_coupons(coupon_ids, coupons or {})
    _check_lines(lines, products)
    overrides = unit_price_override or {}
    categories = [products[line.sku].category for line in lines]
    limited = _limited_prices(lines, products, categories, member, overrides, promotions)
    units = [
        limited[line.sku][0]
        if line.sku in limited
        else _unit_price(products[line.sku], member, overrides.get(line.sku))
        for line in lines
    ]
    gross = [unit * line.qty for unit, line in zip(units, lines, strict=True)]
    # Flash- and limited-priced lines take no other promotion and no coupon.
    eligible = [0 if line.sku in overrides or line.sku in limited else g for line, g in zip(lines, gross, strict=True)]

    applied: list[Applied] = []
    shaped = [
        PromotionApplied(promotion_id, "limited_price", (member.price(products[sku]) - price) * qty, (sku,))
        for sku, qty in ((line.sku, line.qty) for line in lines)
        if sku in limited
        for price, promotion_id in (limited[sku],)
    ]
    discounts = _threshold_promotions(lines, categories, gross, eligible, promotions, applied, shaped)
    gifts = _gifts(lines, categories, gross, eligible, products, promotions, gifts_short, shaped)
    promoted = bool(applied) or any(p.kind == "gift" and p.skipped is None for p in shaped)

    covered = [
        [e > 0 and c.covers(line.sku, cat) for line, cat, e in zip(lines, categories, eligible, strict=True)]
        for c in named
    ]
    for coupon, mask in zip(named, covered, strict=True):
        if not coupon.is_shipping:
            discounts = _apply_coupon(coupon, mask, gross, discounts, promoted, applied)

    subtotal = sum(gross)
    shipping = rules.shipping_for(fulfilment_type, subtotal - sum(discounts))
    for coupon, mask in zip(named, covered, strict=True):
        if coupon.is_shipping:
            base = sum(g - d for g, d, on in zip(gross, discounts, mask, strict=True) if on)
            off = _shipping_coupon(coupon, base, shipping, promoted)
            shipping -= off
            applied.append(Applied("shipping_coupon", coupon.coupon_id, off))
    if points is not None:
        discounts = _apply_points(points, gross, discounts, eligible, applied)
    priced = tuple(
        PricedLine(line.sku, line.qty, unit, discount, g - discount)
        for line, unit, g, discount in zip(lines, units, gross, discounts, strict=True)
    ) + tuple(PricedLine(sku, qty, 0, 0, 0) for sku, qty in gifts)
    discount = sum(discounts)
    if max(subtotal, subtotal - discount + shipping) > MAX_AMOUNT_FEN:
        # Refused here, at quote and order alike, so that every order placed can be paid in one payment.
        raise OrderTooLarge("the order is above what one payment carries", max_fen=MAX_AMOUNT_FEN)
    total = subtotal - discount + shipping
    gift_terms = _gift_terms(shaped, promotions, products, member)
    return Quote(priced, subtotal, discount, shipping, total, tuple(applied), tuple(shaped), gift_terms)


def _limited_prices(
    lines: Sequence[CartLine],
    products: Mapping[str, Product],
    categories: Sequence[str | None],
    member: _Member,
    overrides: Mapping[str, int],
    promotions: Sequence[OrderPromotion],
) -> dict[str, tuple[int, str]]:
    """The lines a limited price applies to: sku -> (final unit price, promotion id); the lowest
    price of the running limited-price promotions, only where it is below the customer's own price."""
    limited: dict[str, tuple[int, str]] = {}
    for line, category in zip(lines, categories, strict=True):
        if line.sku in overrides:
            continue
        own = member.price(products[line.sku])
        offers = [(p.limited_price(line.sku, category), p.promotion_id) for p in promotions]
        priced = sorted((price, pid) for price, pid in offers if price is not None and 0 <= price < own)
        if priced:
            limited[line.sku] = priced[0]
    return limited


def _threshold_promotions(
    lines: Sequence[CartLine],
    categories: Sequence[str | None],
    gross: Sequence[int],
    eligible: Sequence[int],
    promotions: Sequence[OrderPromotion],
    applied: list[Applied],
    shaped: list[PromotionApplied],
) -> list[int]:
    """The line discounts of the threshold promotions: best saving first, a line at most once."""
    discounts = [0] * len(lines)
    free = {i for i, e in enumerate(eligible) if e > 0}
    waiting = sorted((p for p in promotions if p.is_threshold), key=lambda p: p.promotion_id)
    while waiting and free:
        best: tuple[int, OrderPromotion, list[int]] | None = None
        for promotion in waiting:
            idx = [i for i in sorted(free) if promotion.covers(lines[i].sku, categories[i])]
            amount = sum(gross[i] for i in idx)
            off = min(promotion.saving(amount, sum(lines[i].qty for i in idx)), amount) if idx else 0
            if off > 0 and (best is None or off > best[0]):
                best = (off, promotion, idx)
        if best is None:
            break
        off, promotion, idx = best
        for i, share in zip(idx, allocate(off, [gross[i] for i in idx]), strict=True):
            discounts[i] += share
        free -= set(idx)
        waiting.remove(promotion)
        applied.append(Applied("promotion", promotion.promotion_id, off))
        shaped.append(PromotionApplied(promotion.promotion_id, "threshold", off, tuple(lines[i].sku for i in idx)))
    return discounts


def _gifts(
    lines: Sequence[CartLine],
    categories: Sequence[str | None],
    gross: Sequence[int],
    eligible: Sequence[int],
    products: Mapping[str, Product],
    promotions: Sequence[OrderPromotion],
    gifts_short: Collection[str],
    shaped: list[PromotionApplied],
) -> list[tuple[str, int]]:
    """The gift lines earned, one per gift SKU, by promotion id; the ones not given say why."""
    given: list[tuple[str, int]] = []
    in_cart = {line.sku for line in lines}
    for promotion in sorted((p for p in promotions if p.is_gift), key=lambda p: p.promotion_id):
        idx = [i for i, e in enumerate(eligible) if e > 0 and promotion.covers(lines[i].sku, categories[i])]
        gift = promotion.gift(sum(gross[i] for i in idx), sum(lines[i].qty for i in idx)) if idx else None
        if gift is None:
            continue
        sku, qty = gift
        skipped = None
        if sku in in_cart or any(sku == g for g, _ in given):
            skipped = "sku_in_cart"  # one line per SKU: the order's refunds and stock are per SKU
        elif sku not in products:
            skipped = "unknown_sku"
        elif sku in gifts_short:
            skipped = "out_of_stock"  # 赠完即止: the gift runs out, the order still goes through
        else:
            given.append((sku, qty))
        skus = tuple(lines[i].sku for i in idx)
        shaped.append(PromotionApplied(promotion.promotion_id, "gift", 0, skus, sku, qty, skipped))
    return given


def _gift_terms(
    shaped: Sequence[PromotionApplied],
    promotions: Sequence[OrderPromotion],
    products: Mapping[str, Product],
    member: _Member,
) -> tuple[GiftTerms, ...]:
    """What the order keeps of each gift given, for its refunds (docs/pricing.md, "Refunds below a
    threshold"): the lines measured, the tiers as they are now, and one unit's value, the gift's
    own price for this customer."""
    by_id = {p.promotion_id: p for p in promotions}
    return tuple(
        GiftTerms(p.promotion_id, sku, member.price(products[sku]), p.skus, by_id[p.promotion_id].gift_tiers(sku))
        for p in shaped
        if p.kind == "gift" and p.skipped is None and (sku := p.gift_sku) is not None
    )


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


def _apply_points(
    offer: PointsOffer, gross: list[int], discounts: list[int], eligible: list[int], applied: list[Applied]
) -> list[int]:
    """The line discounts after the points: what they take off the lines' payable (flash- and
    limited-priced lines excluded), allocated to them by largest remainder."""
    base = [g - d if e > 0 else 0 for g, d, e in zip(gross, discounts, eligible, strict=True)]
    off, spent = offer.deduction(sum(base))
    if off <= 0:
        return discounts
    applied.append(Applied(POINTS_KIND, str(spent), off))
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


def _unit_price(product: Product, member: _Member, override_fen: int | None) -> int:
    if override_fen is not None:
        if override_fen < 0:
            raise RuleViolation("a price must not be negative", sku=product.sku)
        return override_fen
    return member.price(product)
