"""Request and response models of the catalogue API (API.md, "Catalogue and stock")."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.catalog.model import Product
from shared.inventory.ports import StockSheet
from shared.kernel.values import Count, Name, PriceFen, Sku


class ProductIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    name_en: Name | None = None
    price_fen: PriceFen
    category: str | None = Field(default=None, max_length=64)
    member_price_fen: PriceFen | None = None
    low_stock_threshold: Count | None = None

    def to_domain(self, sku: str) -> Product:
        return Product(sku=sku, **self.model_dump())


class SkuPath(BaseModel):
    sku: Sku


def product_view(product: Product, available: int | None = None) -> dict:
    """A product as the storefront sees it; `available` (units over all locations) when known."""
    view = {
        "sku": product.sku,
        "name": product.name,
        "name_en": product.name_en,
        "category": product.category,
        "price_fen": product.price_fen,
        "member_price_fen": product.member_price_fen,
        "low_stock_threshold": product.low_stock_threshold,
        "updated_at": _iso(product.updated_at_ms),
    }
    if available is not None:
        view["available"] = available
    return view


def stocked_product_view(sheet: StockSheet) -> dict:
    """The single-product view: the total and what each location has available."""
    return {
        **product_view(sheet.product, sheet.available),
        "locations": [{"location": level.location, "available": level.available} for level in sheet.levels],
    }


def _iso(epoch_ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
