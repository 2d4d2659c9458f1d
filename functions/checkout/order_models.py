"""Request models of the order lifecycle routes (API.md, "Checkout and orders")."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from shared.kernel.values import PickupCode, Quantity, Sku

OrderId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class OrderPath(BaseModel):
    order_id: OrderId


class ShipIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tracking_number: str = Field(min_length=3, max_length=64)


class HandOverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pickup_code: PickupCode


class RefundLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: Sku
    qty: Quantity


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lines: list[RefundLineIn] = Field(min_length=1, max_length=50)
    reason: str = Field(min_length=1, max_length=500)

    def units(self) -> dict[str, int]:
        merged: dict[str, int] = {}
        for line in self.lines:
            merged[line.sku] = merged.get(line.sku, 0) + line.qty
        return merged


class RefundDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    approve: StrictBool
    restock: StrictBool = False
