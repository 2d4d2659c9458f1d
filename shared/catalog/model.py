"""The catalogue: products and their list and member prices. Pure domain and service code; the
repository is passed in (DynamoDB in Lambda, an in-memory fake in unit tests)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol

from shared.kernel.errors import RuleViolation


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    price_fen: int
    name_en: str | None = None
    category: str | None = None
    member_price_fen: int | None = None
    low_stock_threshold: int | None = None
    updated_at_ms: int = 0

    def __post_init__(self) -> None:
        if self.price_fen < 0:
            raise RuleViolation("price_fen must not be negative", sku=self.sku)
        if self.member_price_fen is not None and self.member_price_fen > self.price_fen:
            raise RuleViolation(
                "member_price_fen must not exceed price_fen",
                sku=self.sku,
                price_fen=self.price_fen,
                member_price_fen=self.member_price_fen,
            )

    def price_for(self, is_member: bool) -> int:
        if is_member and self.member_price_fen is not None:
            return self.member_price_fen
        return self.price_fen


@dataclass(frozen=True)
class Page:
    products: list[Product]
    next_cursor: dict | None
    available: dict[str, int] = field(default_factory=dict)  # sku -> units available over all locations


class ProductRepository(Protocol):
    def get(self, sku: str) -> Product | None: ...

    def put(self, product: Product) -> bool:
        """Store the product; True if it was new."""
        ...

    def list(self, limit: int, cursor: dict | None) -> Page: ...


def upsert_product(product: Product, repo: ProductRepository, now_ms: int) -> tuple[Product, bool]:
    """Create or replace a product; returns it and whether it was new."""
    stored = replace(product, updated_at_ms=now_ms)
    was_new = repo.put(stored)
    return stored, was_new


class AvailabilityReader(Protocol):
    def available_totals(self, skus: list[str]) -> dict[str, int]:
        """Units available per SKU, summed over every location."""
        ...


def list_products(
    repo: ProductRepository, limit: int, cursor: dict | None, stock: AvailabilityReader | None = None
) -> Page:
    """A page of the catalogue in SKU order, with availability when `stock` is given: one Query
    for the page and one batched read of its stock items (docs/data-model.md)."""
    page = repo.list(limit, cursor)
    if stock is None or not page.products:
        return page
    return replace(page, available=stock.available_totals([p.sku for p in page.products]))
