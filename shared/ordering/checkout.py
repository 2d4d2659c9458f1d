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

from dataclasses import asdict, dataclass
from typing import Protocol

from shared.kernel.clock import SYSTEM, Clock
from shared.kernel.errors import OutOfStock
from shared.ordering.fulfilment import SAME_CITY_RADIUS_KM, Fulfilment, choose_location, shortages
from shared.ordering.model import COUPON_KINDS, OrderCoupon, Placement
from shared.ordering.ports import CheckoutReader
from shared.ordering.pricing import CartLine, PricingRules, Quote, price_cart


@dataclass(frozen=True)
class Cart:
    lines: tuple[CartLine, ...]
    coupon_ids: tuple[str, ...]
    fulfilment: Fulfilment

    def to_cart(self) -> Cart:
        return self


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

    def to_dict(self) -> dict:
        """The quote response of API.md, plus where the units would come from."""
        return {**self.quote.to_dict(), "fulfilment": {"type": str(self.fulfilment.type), "location": self.location}}


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

    def quote(self, cart: CartSource, customer_sub: str) -> PricedCheckout:
        """Price the cart for this customer at the location its fulfilment chooses. Refuses with
        OUT_OF_STOCK (409) when that location is short of a line, as placing it would."""
        return self._price(cart.to_cart(), customer_sub, check_stock=True)

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
        )

    def _price(self, cart: Cart, customer_sub: str, *, check_stock: bool) -> PricedCheckout:
        fixed = cart.fulfilment.fixed_location
        skus, locations = [line.sku for line in cart.lines], None if fixed is None else [fixed]
        # The customer's coupons come in the same read (the reader is asked for them only when named).
        data = (
            self.read(skus, customer_sub, locations, coupon_ids=cart.coupon_ids)
            if cart.coupon_ids
            else self.read(skus, customer_sub, locations)
        )
        now = self.clock.now_ms()
        for coupon_id in cart.coupon_ids:
            if coupon_id in data.coupons:
                data.coupons[coupon_id].check_usable(now)
        # Pricing first: an unknown SKU, a duplicate line or a coupon is the clearer answer.
        quote = price_cart(
            cart.lines,
            data.products,
            is_member=data.is_member,
            fulfilment_type=str(cart.fulfilment.type),
            rules=self.rules,
            coupon_ids=cart.coupon_ids,
            coupons=data.coupons,
        )
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
        applied = tuple(data.coupons[a.id] for a in quote.applied if a.kind in COUPON_KINDS)
        return PricedCheckout(quote, location, cart.fulfilment, data.is_member, applied)
