"""Placing an order, on the in-memory ordering ports: what is held, what is written, what a replay
gets back. (The same rules on moto: tests/functional/test_order_lifecycle.py.)"""

from __future__ import annotations

import pytest

from shared.catalog.model import Product
from shared.inventory.locations import Location
from shared.kernel.errors import IdempotencyKeyReused, OutOfStock, TemporarilyUnavailable, UnknownSku
from shared.kernel.idempotency import IdempotentRequest
from shared.ordering.checkout import Cart
from shared.ordering.fulfilment import Address, Fulfilment, FulfilmentType
from shared.ordering.model import Order, Status
from shared.ordering.placement import Placement
from shared.ordering.ports import OrderingUnitOfWork
from shared.ordering.pricing import CartLine, PricingRules, price_cart
from tests.fakes.ordering import OrderingOnFakes, ordering_on_fakes

TEA = Product(sku="TEA-1", name="龙井", price_fen=10000)
CUP = Product(sku="CUP-1", name="杯子", price_fen=3333)
S001 = Location("S001", "store", "静安", "Shanghai")
HOME = Address("Li Lei", "13700000000", "Shanghai", "1 Road")


@pytest.fixture
def shop() -> OrderingOnFakes:
    return ordering_on_fakes(
        products=[TEA, CUP],
        stock={("TEA-1", "WH"): 10, ("CUP-1", "WH"): 5, ("TEA-1", "S001"): 3},
        locations=[Location("WH", "warehouse", "仓"), S001],
    )


def cart(lines: dict[str, int], fulfilment: Fulfilment | None = None) -> Cart:
    return Cart(
        tuple(CartLine(sku, qty) for sku, qty in lines.items()),
        (),
        fulfilment or Fulfilment(FulfilmentType.DELIVERY, address=HOME),
    )


def order_request(customer: str, key: str | None, lines: dict[str, int]) -> IdempotentRequest:
    return IdempotentRequest.of(f"orders:{customer}", key, {"lines": lines})


def place(shop: OrderingOnFakes, lines: dict[str, int], customer: str = "alice", key: str | None = None, **kw):
    return shop.placement.place_order(cart(lines, **kw), customer, order_request(customer, key, lines))


def test_an_order_holds_its_units_and_is_written_with_its_event_in_one_transaction(shop):
    # When alice orders 2 teas and a cup for delivery
    stored = place(shop, {"TEA-1": 2, "CUP-1": 1})
    # Then it is 201, PENDING_PAYMENT, priced by the checkout, and expires after the payment window
    assert stored.status == 201 and stored.body["status"] == "PENDING_PAYMENT"
    order = shop.reads.get(stored.body["order_id"])
    assert order is not None and order.total_fen == 2 * 10000 + 3333 + order.shipping_fen
    assert order.expires_at_ms == shop.clock.now_ms() + 900_000
    # And the warehouse holds the units, and one transaction wrote order, stock and event
    assert shop.tables.stock_of("TEA-1", "WH") == (10, 2, 8)
    assert shop.tables.stock_of("CUP-1", "WH") == (5, 1, 4)
    assert shop.tables.events_of(order.order_id) == ["OrderPlaced"]
    assert shop.tables.commits == 1


def test_the_fulfilment_chooses_the_location_that_holds_the_units(shop):
    stored = place(shop, {"TEA-1": 1}, fulfilment=Fulfilment(FulfilmentType.PICKUP, store_id="S001"))
    assert stored.body["fulfilment"]["type"] == "pickup"
    assert shop.tables.stock_of("TEA-1", "S001") == (3, 1, 2)
    assert shop.tables.stock_of("TEA-1", "WH") == (10, 0, 10)


def test_a_short_line_holds_nothing_and_names_the_sku(shop):
    # When one line of two is short
    with pytest.raises(OutOfStock) as refused:
        place(shop, {"TEA-1": 1, "CUP-1": 6})
    # Then the error names that SKU and location, and nothing was held or written
    assert refused.value.details == {"sku": "CUP-1", "location": "WH"}
    assert shop.tables.stock_of("TEA-1", "WH") == (10, 0, 10)
    assert shop.tables.orders == {} and shop.tables.events == [] and shop.tables.responses == {}


def test_the_same_key_replays_the_first_answer_and_holds_nothing_more(shop):
    first = place(shop, {"TEA-1": 1}, key="k-1")
    again = place(shop, {"TEA-1": 1}, key="k-1")
    assert again == first
    assert shop.tables.stock_of("TEA-1", "WH") == (10, 1, 9)
    assert len(shop.tables.orders) == 1


def test_a_reused_key_with_another_body_is_refused_and_another_customer_has_its_own_keys(shop):
    first = place(shop, {"TEA-1": 1}, key="k-1")
    with pytest.raises(IdempotencyKeyReused):  # 422
        place(shop, {"TEA-1": 2}, key="k-1")
    other = place(shop, {"TEA-1": 1}, customer="bob", key="k-1")
    assert other.body["order_id"] != first.body["order_id"]
    assert shop.tables.stock_of("TEA-1", "WH") == (10, 2, 8)


def test_a_replay_gets_its_first_answer_even_when_the_checks_would_now_refuse_it(shop):
    # Given an order placed with a key, and then the product leaves the catalogue
    first = place(shop, {"TEA-1": 1}, key="k-1")
    del shop.checkout_reads.products["TEA-1"]
    # When the same request comes again, it gets its order back
    assert place(shop, {"TEA-1": 1}, key="k-1") == first
    # But a new request (or one without a key of its own) hears why it is refused
    with pytest.raises(UnknownSku):
        place(shop, {"TEA-1": 1}, key="k-2")
    with pytest.raises(UnknownSku):
        place(shop, {"TEA-1": 1})


def test_a_busy_database_holds_nothing_and_the_retry_with_the_key_places_once(shop):
    shop.tables.unavailable = 1
    with pytest.raises(TemporarilyUnavailable):
        place(shop, {"TEA-1": 1}, key="k-1")
    assert shop.tables.stock_of("TEA-1", "WH") == (10, 0, 10) and shop.tables.orders == {}
    stored = place(shop, {"TEA-1": 1}, key="k-1")
    assert stored.status == 201 and shop.tables.stock_of("TEA-1", "WH") == (10, 1, 9)


class NothingToHold:
    """A holder whose units were taken before the order (a flash sale's contended path)."""

    def __init__(self) -> None:
        self.held: list[str] = []

    def hold(self, uow: OrderingUnitOfWork, order: Order) -> None:
        self.held.append(order.order_id)


def test_a_holder_decides_what_holds_the_units(shop):
    quote = price_cart(
        [CartLine("TEA-1", 2)], {"TEA-1": TEA}, is_member=False, fulfilment_type="delivery", rules=PricingRules()
    )
    priced = Placement(quote=quote, location="WH", fulfilment={"type": "delivery"}, payment_window_s=60)
    holder = NothingToHold()
    stored = shop.placement.place(priced, "alice", order_request("alice", None, {}), holder=holder)
    assert holder.held == [stored.body["order_id"]]
    assert shop.tables.stock_of("TEA-1", "WH") == (10, 0, 10)
    assert shop.reads.get(stored.body["order_id"]).status is Status.PENDING_PAYMENT
