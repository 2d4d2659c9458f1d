"""A flash sale's units are the location's stock (issue 10, finding 5; docs/flash-sales.md, "Stock"),
on the in-memory stores, which model the stock rows: held (reserved) when the sale is created,
committed when an order is paid, back to the location when the sale ends, and restocked there by a
refund. on_hand = available + reserved at every location after every step."""

from __future__ import annotations

import pytest

from shared.catalog.model import Product
from shared.flash_sales.commands import FlashOrder
from shared.flash_sales.model import FlashSale, NewFlashSale
from shared.inventory.locations import Location
from shared.kernel.errors import OutOfStock
from shared.kernel.idempotency import IdempotentRequest
from shared.kernel.identity import Principal, Role
from shared.ordering.fulfilment import Address, Fulfilment, FulfilmentType
from shared.ordering.model import Status
from shared.payments.hmac_webhook import PaymentNotice
from tests.fakes.flash_sales import FlashOnFakes, MemoryShards, flash_on_fakes

TEA = Product(sku="TEA-1", name="龙井", price_fen=10000)
STORE = Location("S001", "store", "静安店", "上海")
ADMIN = Principal("admin", Role.MERCHANT_ADMIN)
HOME = Fulfilment(FulfilmentType.DELIVERY, address=Address("韩梅梅", "13700000000", "上海", "徐汇区 3 号"))
PICKUP = Fulfilment(FulfilmentType.PICKUP, store_id="S001")


@pytest.fixture
def fakes() -> FlashOnFakes:
    return flash_on_fakes(products=[TEA], stores=[STORE], stock={("TEA-1", "WH"): 20, ("TEA-1", "S001"): 20})


def balanced(fakes: FlashOnFakes) -> None:
    for (sku, location), row in fakes.ordering.tables.stock.items():
        on_hand, reserved, available = row.levels()
        assert on_hand == reserved + available and available >= 0 and reserved >= 0, (sku, location, row)


def given_sale(fakes: FlashOnFakes, quantity: int = 5, location: str | None = None, window_s: int = 60) -> FlashSale:
    now = fakes.clock.now_ms()
    extra = {} if location is None else {"location": location}
    wanted = NewFlashSale("TEA-1", 5000, quantity, 2, now - 1000, now + 600_000, window_s, 500, **extra)  # type: ignore[arg-type]
    created = fakes.flash.create(wanted, IdempotentRequest.of("flash-sales:admin", None, {"q": quantity}))
    return fakes.flash.sale(created.body["flash_sale_id"])


def buy(fakes: FlashOnFakes, sale: FlashSale, customer: str, qty: int = 1, fulfilment: Fulfilment = HOME) -> str:
    request = IdempotentRequest.of(f"flash:{sale.sale_id}:{customer}", None, {"qty": qty})
    answer = fakes.flash.purchase(sale.sale_id, customer, FlashOrder(qty, fulfilment), request)
    assert answer.status == 201, answer.body
    return str(answer.body["order_id"])


def pay(fakes: FlashOnFakes, order_id: str) -> None:
    order = fakes.lifecycle.load(order_id)
    fakes.lifecycle.apply_payment(PaymentNotice(order_id, f"t-{order_id}", order.total_fen, "2026-11-23T00:00:00Z"))


def end(fakes: FlashOnFakes, sale: FlashSale) -> None:
    fakes.clock.advance((sale.ends_at_ms - fakes.clock.now_ms()) / 1000 + 1)


def test_creating_a_sale_holds_its_quantity_at_the_warehouse_by_default(fakes):
    sale = given_sale(fakes, quantity=5)
    assert sale.location == "WH"
    assert fakes.stock("TEA-1", "WH") == (20, 5, 15)
    assert fakes.stock("TEA-1", "S001") == (20, 0, 20)
    balanced(fakes)


def test_a_sale_of_more_than_the_location_has_is_refused_and_holds_nothing(fakes):
    with pytest.raises(OutOfStock) as refused:
        given_sale(fakes, quantity=21, location="S001")
    assert refused.value.details == {"sku": "TEA-1", "location": "S001"}
    assert fakes.stock("TEA-1", "S001") == (20, 0, 20) and fakes.tables.sales == {}
    with pytest.raises(OutOfStock):
        given_sale(fakes, quantity=1, location="S999")  # no stock row there at all


def test_paying_commits_from_the_hold_and_the_unsold_rest_goes_back_once_at_the_end(fakes):
    sale = given_sale(fakes, quantity=5, location="S001")
    assert fakes.stock("TEA-1", "S001") == (20, 5, 15)
    paid, unpaid, cancelled = buy(fakes, sale, "c-1"), buy(fakes, sale, "c-2"), buy(fakes, sale, "c-3")
    assert fakes.stock("TEA-1", "S001") == (20, 5, 15)  # bought units stay held until paid
    pay(fakes, paid)
    assert fakes.stock("TEA-1", "S001") == (19, 4, 15)
    fakes.lifecycle.cancel(cancelled, Principal("c-3", Role.CUSTOMER))
    assert fakes.stock("TEA-1", "S001") == (19, 4, 15)  # back on the sale's shard, still held
    balanced(fakes)
    # When the sale ends, what is on its shards (2 unsold and the cancelled one) goes back
    end(fakes, sale)
    fakes.flash.reconcile()
    assert fakes.stock("TEA-1", "S001") == (19, 1, 18)
    fakes.flash.reconcile()
    assert fakes.stock("TEA-1", "S001") == (19, 1, 18)  # exactly once
    # The order unpaid at the end expires after it: its unit goes back on the next run
    fakes.clock.advance(120)
    assert fakes.lifecycle.expire_due() == 1
    assert fakes.lifecycle.load(unpaid).status is Status.CANCELLED
    fakes.flash.reconcile()
    assert fakes.stock("TEA-1", "S001") == (19, 0, 19)
    assert fakes.stock("TEA-1", "WH") == (20, 0, 20)
    assert fakes.balanced(sale)
    balanced(fakes)


def test_a_settle_before_the_end_moves_nothing_and_a_changed_shard_is_not_settled(fakes):
    sale = given_sale(fakes, quantity=4)
    assert fakes.flash.reconciler.settle_sale(sale) == 0
    end(fakes, sale)
    shards = MemoryShards(fakes.tables)
    level = shards.levels(sale)[0]
    assert shards.settle(sale, level.shard, level.remaining + 1) is False  # not what it holds
    assert fakes.stock("TEA-1", "WH") == (20, 4, 16)
    assert fakes.flash.reconciler.settle_sale(sale) == 4
    assert fakes.stock("TEA-1", "WH") == (20, 0, 20)
    balanced(fakes)


def test_a_restocked_refund_of_a_flash_pickup_returns_the_unit_to_the_sales_location(fakes):
    # Given a WH sale whose unit is picked up at S001 and paid
    sale = given_sale(fakes, quantity=2)
    order_id = buy(fakes, sale, "c-1", fulfilment=PICKUP)
    pay(fakes, order_id)
    assert fakes.lifecycle.load(order_id).location == "S001"
    assert fakes.stock("TEA-1", "WH") == (19, 1, 18)
    # When it is refunded with restock
    customer = Principal("c-1", Role.CUSTOMER)
    request = IdempotentRequest.of(f"refunds:c-1:{order_id}", None, {})
    asked = fakes.refunds.request_refund(order_id, {"TEA-1": 1}, "broken", customer, request)
    fakes.refunds.decide_refund(order_id, asked.body["refund_id"], True, True, ADMIN)
    # Then the unit is back at WH, and the pickup store's stock is untouched
    assert fakes.stock("TEA-1", "WH") == (20, 1, 19)
    assert fakes.stock("TEA-1", "S001") == (20, 0, 20)
    balanced(fakes)
