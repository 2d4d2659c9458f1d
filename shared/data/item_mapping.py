"""Items to domain objects: PynamoDB classes stop here and never reach the domain."""

from __future__ import annotations

from shared.catalog.model import Product
from shared.data.items import LocationItem, ProductItem, StockItem
from shared.inventory.locations import Location
from shared.inventory.model import StockLevel


def _int_or_none(value: float | None) -> int | None:
    return int(value) if value is not None else None


def product_of(item: ProductItem) -> Product:
    return Product(
        sku=item.sku,
        name=item.name,
        name_en=item.name_en,
        category=item.category,
        price_fen=int(item.price_fen),
        member_price_fen=_int_or_none(item.member_price_fen),
        low_stock_threshold=_int_or_none(item.low_stock_threshold),
        updated_at_ms=int(item.updated_at),
    )


def level_of(item: StockItem) -> StockLevel:
    return StockLevel(
        sku=item.sku,
        location=item.location,
        on_hand=int(item.on_hand),
        reserved=int(item.reserved),
        available=int(item.available),
        low_stock_threshold=_int_or_none(item.low_stock_threshold),
    )


def location_of(item: LocationItem) -> Location:
    return Location(
        location_id=item.location_id,
        kind=item.kind,
        name=item.name,
        city=item.city,
        city_en=item.city_en,
        lat_e6=_int_or_none(item.lat_e6),
        lng_e6=_int_or_none(item.lng_e6),
    )
