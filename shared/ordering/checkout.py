"""Checkout: from a cart to a priced quote and the location whose stock serves it.

`Checkout.quote` answers `POST /checkout/quote` and holds nothing. `Checkout.prepare_placement`
does the same reading and pricing for `POST /orders`; the order itself is written by
`shared.ordering.placement.OrderPlacement` in one transaction whose conditional stock parts are the
real check.

Reads: one BatchGetItem (products, stock at the chosen location, the member item, the named
location) when the fulfilment names its location; same-city adds the cached list of stores and
reads stock at every store in the same BatchGetItem (more calls only past 100 keys).

A SKU the catalogue does not have is 422 UNKNOWN_SKU with `details.sku` (the first unknown) and
`details.skus` (all of them): the SKU comes from the body, so it is a broken rule, not a missing
resource.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

from shared.kernel.clock import SYSTEM, Clock
from shared.kernel.credited import CreditFacts
from shared.kernel.errors import (
    CouponInUse,
    CouponNotAvailable,
    CouponNotUsable,
    DomainError,
    NotStarted,
    OutOfStock,
    RuleViolation,
    UnknownCoupon,
)
from shared.ordering.fulfilment import SAME_CITY_RADIUS_KM, Fulfilment, choose_location, shortages
from shared.ordering.model import COUPON_KINDS, OrderCoupon, Placement
from shared.ordering.ports import CheckoutData, CheckoutReader, PointsReader
from shared.ordering.pricing import CartLine, PricingRules, Quote, points_spent, price_cart

# What a named coupon can be refused with at checkout (docs/coupons.md, "At checkout").
COUPON_REFUSALS = (UnknownCoupon, CouponNotUsable, CouponInUse, CouponNotAvailable, NotStarted)
SUGGESTION_CANDIDATES = 5  # merchandise coupons tried in the suggestion, best single saving first


@dataclass(frozen=True)
class Cart:
    lines: tuple[CartLine, ...]
    coupon_ids: tuple[str, ...]
    fulfilment: Fulfilment
    points: int = 0  # the member's points to spend (docs/membership.md, "Spending at checkout")

    def to_cart(self) -> Cart:
        return self


class WalletReader(Protocol):
    def __call__(self, customer_sub: str, now_ms: int) -> Mapping[str, OrderCoupon]:
        """The customer's coupons that are AVAILABLE at `now_ms`, by id (the quote's advice only:
        one query beside the checkout's batched read; placing an order never calls it)."""
        ...


class CartSource(Protocol):
    """A cart, or a request model that becomes one (`functions.checkout.models.CartIn`)."""

    def to_cart(self) -> Cart: ...


@dataclass(frozen=True)
class PricedCheckout:
    quote: Quote
    location: str
    fulfilment: Fulfilment
    is_member: bool
    coupons: tuple[OrderCoupon, ...] = ()  # the coupons the quote applied, for the order to lock
    credit: CreditFacts | None = None  # what an order placed now credits is decided from
    usable_coupons: tuple[dict[str, Any], ...] = ()  # the quote's advice: each usable coupon's saving
    suggested_coupon_ids: tuple[str, ...] = ()
    points_available: int | None = None  # the member's points as read, when the cart named points

    def to_dict(self) -> dict:
        """The quote response of API.md, plus where the units would come from (and, for a cart
        that names points, what they take off: `points`)."""
        body = {
            **self.quote.to_dict(),
            "fulfilment": {"type": str(self.fulfilment.type), "location": self.location},
            "usable_coupons": [dict(c) for c in self.usable_coupons],
            "suggested_coupon_ids": list(self.suggested_coupon_ids),
        }
        if self.points_available is not None:
            off = sum(a.amount_fen for a in self.quote.applied if a.kind == "points")
            body["points"] = {
                "spent": points_spent(self.quote),
                "deduction_fen": off,
                "available": self.points_available,
            }
        return body


def fulfilment_record(fulfilment: Fulfilment) -> dict:
    """The fulfilment as an order keeps it (JSON): type, store, address."""
    record: dict = {"type": str(fulfilment.type)}
    if fulfilment.store_id is not None:
        record["store_id"] = fulfilment.store_id
    if fulfilment.address is not None:
        record["address"] = {k: v for k, v in asdict(fulfilment.address).items() if v is not None}
    return record


@dataclass(frozen=True)
class Checkout:
    read: CheckoutReader
    rules: PricingRules
    payment_window_s: int
    same_city_radius_km: float = SAME_CITY_RADIUS_KM
    clock: Clock = SYSTEM  # a coupon's use window is checked against it
    wallet: WalletReader | None = None  # the customer's coupons, for the quote's suggestions
    points: PointsReader | None = None  # the points rule and balance, for a cart that names points

    def quote(self, cart: CartSource, customer_sub: str) -> PricedCheckout:
        """Price the cart for this customer at the location its fulfilment chooses. Refuses with
        OUT_OF_STOCK (409) when that location is short of a line, as placing it would.

        With a wallet: lists the customer's usable coupons with their saving on this cart and the
        best combination (`suggested_coupon_ids`). A named coupon that cannot be used is refused as
        the order refuses it, and the refusal's `details.reasons` says why for every named coupon
        that cannot be used, with `details.suggested_coupon_ids`."""
        wanted = cart.to_cart()
        data = self._read(wanted, customer_sub)
        now = self.clock.now_ms()
        wallet = dict(self.wallet(customer_sub, now)) if self.wallet is not None else {}
        try:
            priced = self._price_with(wanted, data, check_stock=True)
        except COUPON_REFUSALS as refused:
            refused.details["reasons"] = self._reasons(wanted, data, now)
            if self.wallet is not None:
                refused.details["suggested_coupon_ids"] = list(self._advice(wanted, data, wallet, now)[1])
            raise
        if self.wallet is None:
            return priced
        usable, suggested = self._advice(wanted, data, {**wallet, **data.coupons}, now)
        return replace(priced, usable_coupons=usable, suggested_coupon_ids=suggested)

    def prepare_placement(self, cart: CartSource, customer_sub: str) -> Placement:
        """What `OrderPlacement.place` writes. Stock at a named location is not pre-checked:
        the conditional reservation in the order's transaction decides, against fresh values."""
        priced = self._price(cart.to_cart(), customer_sub, check_stock=False)
        return Placement(
            quote=priced.quote,
            location=priced.location,
            fulfilment=fulfilment_record(priced.fulfilment),
            payment_window_s=self.payment_window_s,
            coupons=priced.coupons,
            credit=priced.credit,
        )

    def _read(self, cart: Cart, customer_sub: str) -> CheckoutData:
        fixed = cart.fulfilment.fixed_location
        skus, locations = [line.sku for line in cart.lines], None if fixed is None else [fixed]
        # The customer's coupons come in the same read (the reader is asked for them only when named).
        if cart.coupon_ids:
            data = self.read(skus, customer_sub, locations, coupon_ids=cart.coupon_ids)
        else:
            data = self.read(skus, customer_sub, locations)
        if cart.points <= 0:
            return data
        if self.points is None:
            raise RuleViolation("points cannot be spent here", points=cart.points, reason="points_not_accepted")
        return replace(data, points=self.points(customer_sub, cart.points))

    def _price(self, cart: Cart, customer_sub: str, *, check_stock: bool) -> PricedCheckout:
        return self._price_with(cart, self._read(cart, customer_sub), check_stock=check_stock)

    def _priced(
        self,
        cart: Cart,
        data: CheckoutData,
        coupon_ids: Sequence[str],
        coupons: Mapping[str, OrderCoupon],
        now: int,
        gifts_short: frozenset[str] = frozenset(),
    ) -> Quote:
        for coupon_id in coupon_ids:
            if coupon_id in coupons:
                coupons[coupon_id].check_usable(now)
        return price_cart(
            cart.lines,
            data.products,
            is_member=data.is_member,
            fulfilment_type=str(cart.fulfilment.type),
            rules=self.rules,
            coupon_ids=coupon_ids,
            coupons=coupons,
            promotions=[p for p in data.promotions if p.is_running(now)],
            gifts_short=gifts_short,
            points=data.points,
            member_discount_bp=data.member_discount_bp,
        )

    def _reasons(self, cart: Cart, data: CheckoutData, now: int) -> list[dict[str, Any]]:
        """Why each named coupon cannot be used on this cart, tried alone (then together, for a
        pair that only clashes as a pair: `one_per_kind`, `named_twice`)."""
        reasons: list[dict[str, Any]] = []
        for coupon_id in dict.fromkeys(cart.coupon_ids):
            refusal = self._refusal(cart, data, [coupon_id], now)
            if refusal is not None:
                reasons.append(refusal)
        if not reasons:
            together = self._refusal(cart, data, list(cart.coupon_ids), now)
            reasons += [] if together is None else [together]
        return reasons

    def _refusal(self, cart: Cart, data: CheckoutData, ids: Sequence[str], now: int) -> dict[str, Any] | None:
        try:
            self._priced(cart, data, ids, data.coupons, now)
        except COUPON_REFUSALS as refused:
            return {"coupon_id": refused.details.get("coupon_id", ids[0]), "code": refused.code, **_why(refused)}
        except DomainError:
            return None  # not the coupon's doing: the cart's own refusal is the answer
        return None

    def _advice(
        self, cart: Cart, data: CheckoutData, coupons: Mapping[str, OrderCoupon], now: int
    ) -> tuple[tuple[dict[str, Any], ...], tuple[str, ...]]:
        """Every coupon of `coupons` usable on this cart with what it saves (its amount in `applied`:
        alone, or for a shipping coupon usable only beside a merchandise coupon, in the suggestion),
        best first; and the combination of at most one merchandise coupon (of the
        SUGGESTION_CANDIDATES best alone) and one shipping coupon that makes the total lowest
        (fewer coupons, then the smaller ids, on a tie; none when no coupon lowers the total)."""
        usable: list[dict[str, Any]] = []
        for coupon_id, coupon in coupons.items():
            try:
                quote = self._priced(cart, data, [coupon_id], coupons, now)
            except DomainError:
                continue
            saving = sum(a.amount_fen for a in quote.applied if a.id == coupon_id and a.kind in COUPON_KINDS)
            if saving > 0:
                kind = "shipping_coupon" if coupon.is_shipping else "coupon"
                usable.append({"coupon_id": coupon_id, "kind": kind, "saving_fen": saving})
        merchandise = [None, *[c["coupon_id"] for c in sorted(usable, key=_best) if c["kind"] == "coupon"]]
        # Every shipping coupon, not only those usable alone: one may need the merchandise coupon
        # that takes the order below the free-shipping threshold.
        shipping = [None, *sorted(c for c, coupon in coupons.items() if coupon.is_shipping)]
        best: tuple[int, int, tuple[str, ...]] | None = None
        best_quote: Quote | None = None
        for first in merchandise[: SUGGESTION_CANDIDATES + 1]:
            for second in shipping:
                ids = tuple(c for c in (first, second) if c is not None)
                try:  # () is the cart without coupons: a coupon that loses free shipping can cost more
                    tried = self._priced(cart, data, ids, coupons, now)
                except DomainError:
                    continue
                key = (tried.total_fen, len(ids), ids)
                if best is None or key < best:
                    best, best_quote = key, tried
        listed = {c["coupon_id"] for c in usable}
        for applied in best_quote.applied if best_quote is not None else ():
            if applied.kind in COUPON_KINDS and applied.id not in listed and applied.amount_fen > 0:
                usable.append({"coupon_id": applied.id, "kind": applied.kind, "saving_fen": applied.amount_fen})
        return tuple(sorted(usable, key=_best)), (() if best is None else best[2])

    def _price_with(self, cart: Cart, data: CheckoutData, *, check_stock: bool) -> PricedCheckout:
        # Pricing first: an unknown SKU, a duplicate line or a coupon is the clearer answer.
        now = self.clock.now_ms()
        quote = self._priced(cart, data, cart.coupon_ids, data.coupons, now)
        location = choose_location(
            cart.fulfilment,
            cart.lines,
            list(data.locations.values()),
            data.availability,
            radius_km=self.same_city_radius_km,
        )
        if check_stock:
            short = shortages(cart.lines, location, data.availability)
            if short:
                raise OutOfStock("not enough stock", sku=short[0], location=location)
        # A gift the location cannot serve is not given (docs/pricing.md, "Gifts"); the order's
        # reservation of the gift line is still the check that counts.
        gifts = [CartLine(line.sku, line.qty) for line in quote.lines[len(cart.lines) :]]
        gifts_short = frozenset(shortages(gifts, location, data.availability))
        if gifts_short:
            quote = self._priced(cart, data, cart.coupon_ids, data.coupons, now, gifts_short)
        applied = tuple(data.coupons[a.id] for a in quote.applied if a.kind in COUPON_KINDS)
        available = data.points.available if data.points is not None else None
        return PricedCheckout(
            quote, location, cart.fulfilment, data.is_member, applied, data.credit, points_available=available
        )


def _best(usable: Mapping[str, Any]) -> tuple[int, str]:
    return -usable["saving_fen"], usable["coupon_id"]


def _why(refused: DomainError) -> dict[str, Any]:
    """A refusal as the quote lists it: its reason and figures, and its message."""
    keys = ("reason", "threshold_fen", "eligible_fen")
    detail: dict[str, Any] = {key: refused.details[key] for key in keys if key in refused.details}
    return {**detail, "message": refused.message}
