"""Every PynamoDB item class of the single table. Importing this package registers them all."""

from shared.data.items.catalog import ProductItem
from shared.data.items.idempotency import IdempotencyItem
from shared.data.items.org import LocationItem, PartyItem

__all__ = ["IdempotencyItem", "LocationItem", "PartyItem", "ProductItem"]
