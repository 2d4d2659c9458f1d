"""The checkout service over an in-memory reader, and the stock count service over a fake store."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from functions.checkout.models import CartIn
from shared.catalog.model import Product
from shared.inventory.locations import Location
from shared.inventory.model import StockChanged, StockLevel
from shared.inventory.stock import set_on_hand
from shared.kernel.errors import ConcurrentUpdate, OnHandBelowReserved, OutOfStock
from shared.ordering.checkout import Checkout
from shared.ordering.ports import CheckoutData
from shared.ordering.pricing import PricingRules

TEA = Product(sku="TEA", name="龙井", price_fen=16800, member_price_fen=15800, low_stock_threshold=3)
STORES = {
    "WH": Location("WH", "warehouse", "仓", "Jiaxing"),
    "S001": Location("S001", "store", "静安", "Shanghai", 31229000, 121448000),
}
ADDRESS = {"recipient": "王芳", "phone": "13800000000", "city": "Shanghai", "detail": "南京西路 1 号"}


@dataclass
class FakeReader:
    available: dict[tuple[str, str], int]
    members: frozenset[str] = frozenset()
    asked: list = field(default_factory=list)

    def __call__(self, skus, customer_sub, locations):
        self.asked.append(locations)
        wanted = (
            [loc for loc in STORES.values() if loc.is_store]
            if locations is None
            else [STORES[i] for i in locations if i in STORES]
        )
        return CheckoutData(
            products={sku: TEA for sku in skus if sku == "TEA"},
            is_member=customer_sub in self.members,
            availability=self.available,
            locations={loc.location_id: loc for loc in wanted},
        )


def cart(fulfilment: dict, qty: int = 2) -> CartIn:
    return CartIn.model_validate({"lines": [{"sku": "TEA", "qty": qty}], "fulfilment": fulfilment})


def checkout(reader: FakeReader) -> Checkout:
    return Checkout(read=reader, rules=PricingRules(), payment_window_s=900)


def test_a_named_location_is_read_by_id_and_same_city_reads_every_store():
    reader = FakeReader({("TEA", "WH"): 5, ("TEA", "S001"): 5})
    checkout(reader).quote(cart({"type": "delivery", "address": ADDRESS}), "c-1")
    checkout(reader).quote(cart({"type": "pickup", "store_id": "S001"}), "c-1")
    checkout(reader).quote(cart({"type": "same_city", "address": ADDRESS}), "c-1")
    assert reader.asked == [["WH"], ["S001"], None]


def test_the_quote_refuses_a_short_location_but_placement_leaves_it_to_the_reservation():
    reader = FakeReader({("TEA", "WH"): 1}, members=frozenset({"c-1"}))
    with pytest.raises(OutOfStock):
        checkout(reader).quote(cart({"type": "delivery", "address": ADDRESS}), "c-1")
    placement = checkout(reader).prepare_placement(cart({"type": "delivery", "address": ADDRESS}), "c-1")
    assert placement.location == "WH" and placement.payment_window_s == 900
    assert placement.quote.lines[0].unit_price_fen == 15800
    assert placement.fulfilment == {"type": "delivery", "address": ADDRESS}


def test_pickup_keeps_only_the_store_in_the_order_record():
    reader = FakeReader({("TEA", "S001"): 5})
    placement = checkout(reader).prepare_placement(cart({"type": "pickup", "store_id": "S001"}), "c-9")
    assert placement.fulfilment == {"type": "pickup", "store_id": "S001"}
    assert placement.quote.lines[0].unit_price_fen == 16800


@dataclass
class FakeStock:
    level: StockLevel | None
    races: int = 0
    written: list = field(default_factory=list)

    def read_for_count(self, sku, location):
        return TEA, STORES.get(location), self.level

    def write_count(self, level, expected):
        if self.races:
            self.races -= 1
            raise StockChanged("raced")
        self.written.append(level)
        self.level = level

    def sheet(self, sku):  # pragma: no cover - not used here
        raise NotImplementedError


def test_a_count_keeps_reservations_and_copies_the_threshold():
    stock = FakeStock(StockLevel("TEA", "WH", 10, 4, 6), races=2)
    level, was_new = set_on_hand("TEA", "WH", 12, stock)
    assert (level, was_new) == (StockLevel("TEA", "WH", 12, 4, 8, low_stock_threshold=3), False)
    assert stock.written == [level]


def test_a_count_gives_up_when_the_stock_never_stops_changing():
    stock = FakeStock(None, races=99)
    with pytest.raises(ConcurrentUpdate):
        set_on_hand("TEA", "WH", 12, stock, attempts=3)
    assert stock.written == []


def test_a_count_below_reserved_is_refused():
    with pytest.raises(OnHandBelowReserved):
        set_on_hand("TEA", "WH", 3, FakeStock(StockLevel("TEA", "WH", 10, 4, 6)))
