"""Request models of the flash-sale API (API.md, "Flash sales")."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, model_validator

from shared.kernel.values import Fen, LocationId, LongText, Phone, Quantity, ShortText, Sku
from shared.ordering.fulfilment import Address, Fulfilment, FulfilmentType

SALE_ID = re.compile(r"fs[0-9a-f]{24}")  # shared.flash_sales.model.new_sale_id


class FlashSaleIn(BaseModel):
    """`expected_peak_per_s` (optional, beyond API.md) sizes the shards: N = ceil(peak / 500)."""

    model_config = ConfigDict(extra="forbid")

    sku: Sku
    price_fen: Fen
    quantity: StrictInt
    per_user_limit: StrictInt
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    payment_window_s: StrictInt | None = None
    expected_peak_per_s: Annotated[StrictInt, Field(gt=0, le=1_000_000)] | None = None

    def ms(self, when: AwareDatetime) -> int:
        return int(when.timestamp() * 1000)


class AddressIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipient: ShortText
    phone: Phone
    city: ShortText
    detail: LongText


class FulfilmentIn(BaseModel):
    """As in checkout; same-city is refused for flash sales (its store is chosen by stock)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["delivery", "pickup", "ship_from_store"]
    store_id: LocationId | None = None
    address: AddressIn | None = None

    @model_validator(mode="after")
    def _has_what_the_type_needs(self) -> FulfilmentIn:
        if self.type in ("pickup", "ship_from_store") and self.store_id is None:
            raise ValueError(f"{self.type} needs a store_id")
        if self.type in ("delivery", "ship_from_store") and self.address is None:
            raise ValueError(f"{self.type} needs an address")
        return self

    def to_domain(self) -> Fulfilment:
        address = Address(**self.address.model_dump()) if self.address else None
        store_id = self.store_id if self.type != "delivery" else None
        return Fulfilment(FulfilmentType(self.type), store_id=store_id, address=address)


class FlashOrderIn(BaseModel):
    """No fulfilment: delivery from the warehouse, the address given at payment."""

    model_config = ConfigDict(extra="forbid")

    qty: Quantity
    fulfilment: FulfilmentIn | None = None
