"""Request and response models of the stock admin API (API.md, "Catalogue and stock")."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from shared.inventory.model import StockLevel
from shared.inventory.ports import StockSheet
from shared.kernel.values import Count, LocationId, Sku


class StockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    location: LocationId
    on_hand: Count


class SkuPath(BaseModel):
    sku: Sku


def level_view(level: StockLevel) -> dict:
    return {"sku": level.sku, **level.to_dict()}


def sheet_view(sheet: StockSheet) -> dict:
    return {"sku": sheet.product.sku, "locations": [level.to_dict() for level in sheet.levels]}
