"""Request models that more than one function's API takes (API.md): the address and the
fulfilment of checkout, which flash sales take too (narrowed by their own request model); the scope
of a coupon template and of a promotion."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, model_validator

from shared.kernel.scope import Scope
from shared.kernel.values import LocationId, LongText, Phone, ShortText, Sku
from shared.ordering.fulfilment import Address, Fulfilment, FulfilmentType

Category = Annotated[str, Field(min_length=1, max_length=64)]


class ScopeIn(BaseModel):
    """Left out: everything. SKUs and categories add up; exclusions win over both."""

    model_config = ConfigDict(extra="forbid")

    skus: list[Sku] = Field(default_factory=list, max_length=200)
    categories: list[Category] = Field(default_factory=list, max_length=200)
    exclude_skus: list[Sku] = Field(default_factory=list, max_length=200)
    exclude_categories: list[Category] = Field(default_factory=list, max_length=200)

    def to_scope(self) -> Scope:
        return Scope.of(self.model_dump())


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

    @property
    def has_coordinates(self) -> bool:
        """Whether the body named `lat` or `lng` at all (even as null)."""
        return bool(self.model_fields_set & {"lat", "lng"})

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
