"""The cart in the body of `POST /checkout/quote` and `POST /orders` (API.md, "Checkout and orders")."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, model_validator

from shared.kernel.values import LocationId, LongText, Phone, Quantity, ShortText, Sku
from shared.ordering.checkout import Cart
from shared.ordering.fulfilment import Address, Fulfilment, FulfilmentType
from shared.ordering.pricing import CartLine

MAX_LINES = 50
CouponId = Annotated[str, Field(min_length=1, max_length=64)]


class LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Sku
    qty: Quantity


class AddressIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipient: ShortText
    phone: Phone
    city: ShortText
    detail: LongText
    # Coordinates are not money: floats are fine. Same-city uses them to find the nearest store.
    # StrictFloat: numbers only (ints too); lax float would take `false` or "31.2" as a coordinate.
    lat: StrictFloat | None = Field(default=None, ge=-90, le=90)
    lng: StrictFloat | None = Field(default=None, ge=-180, le=180)

    @model_validator(mode="after")
    def _both_coordinates_or_neither(self) -> AddressIn:
        if (self.lat is None) != (self.lng is None):
            raise ValueError("give both lat and lng, or neither")
        return self

    def to_domain(self) -> Address:
        return Address(self.recipient, self.phone, self.city, self.detail, self.lat, self.lng)


class FulfilmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["delivery", "pickup", "ship_from_store", "same_city"]
    store_id: LocationId | None = None
    address: AddressIn | None = None

    @model_validator(mode="after")
    def _has_what_the_type_needs(self) -> FulfilmentIn:
        if self.type in ("pickup", "ship_from_store") and self.store_id is None:
            raise ValueError(f"{self.type} needs a store_id")
        # Ship-from-store posts the parcel from the store, so it needs an address as well.
        if self.type in ("delivery", "same_city", "ship_from_store") and self.address is None:
            raise ValueError(f"{self.type} needs an address")
        return self

    def to_domain(self) -> Fulfilment:
        address = self.address.to_domain() if self.address else None
        store_id = self.store_id if self.type in ("pickup", "ship_from_store") else None
        return Fulfilment(FulfilmentType(self.type), store_id=store_id, address=address)


class CartIn(BaseModel):
    """Duplicate SKUs pass the schema and are refused by pricing with 422 DUPLICATE_SKU naming the
    SKU; coupon ids pass and are refused with 422 UNKNOWN_COUPON until coupons exist."""

    model_config = ConfigDict(extra="forbid")

    lines: list[LineIn] = Field(min_length=1, max_length=MAX_LINES)
    coupon_ids: list[CouponId] = Field(default_factory=list, max_length=10)
    fulfilment: FulfilmentIn

    def to_cart_lines(self) -> list[CartLine]:
        return [CartLine(line.sku, line.qty) for line in self.lines]

    def to_fulfilment(self) -> Fulfilment:
        return self.fulfilment.to_domain()

    def to_cart(self) -> Cart:
        return Cart(tuple(self.to_cart_lines()), tuple(self.coupon_ids), self.to_fulfilment())
