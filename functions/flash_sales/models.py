"""Request models of the flash-sale API (API.md, "Flash sales")."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, field_validator

from shared.flash_sales.commands import FlashOrder
from shared.flash_sales.model import STOCK_LOCATION, NewFlashSale
from shared.kernel.values import Fen, LocationId, Quantity, Sku
from shared.web.requests import FulfilmentIn

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
    location: LocationId = STOCK_LOCATION  # the quantity is held out of this location's stock

    def to_command(self) -> NewFlashSale:
        return NewFlashSale(
            sku=self.sku,
            price_fen=self.price_fen,
            quantity=self.quantity,
            per_user_limit=self.per_user_limit,
            starts_at_ms=_ms(self.starts_at),
            ends_at_ms=_ms(self.ends_at),
            payment_window_s=self.payment_window_s,
            expected_peak_per_s=self.expected_peak_per_s,
            location=self.location,
        )


def _ms(when: AwareDatetime) -> int:
    return int(when.timestamp() * 1000)


class FlashOrderIn(BaseModel):
    """No fulfilment: delivery to the buyer's saved default address (`PUT /me/address`), else 422
    FULFILMENT_REQUIRED. The fulfilment is
    checkout's without same-city (its store is chosen by stock; flash units are the sale's) and
    without coordinates (docs/openapi.yaml, FlashFulfilmentIn and FlashAddressIn)."""

    model_config = ConfigDict(extra="forbid")

    qty: Quantity
    fulfilment: FulfilmentIn | None = None

    @field_validator("fulfilment")
    @classmethod
    def _as_flash_sales_offer_it(cls, fulfilment: FulfilmentIn | None) -> FulfilmentIn | None:
        if fulfilment is None:
            return None
        if fulfilment.type == "same_city":
            raise ValueError("same-city delivery is not offered for flash sales")
        if fulfilment.address is not None and fulfilment.address.has_coordinates:
            raise ValueError("a flash-sale address has no lat or lng")
        return fulfilment

    def to_command(self) -> FlashOrder:
        return FlashOrder(self.qty, self.fulfilment.to_domain() if self.fulfilment else None)
