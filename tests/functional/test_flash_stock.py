"""A flash sale's units are a location's stock (issue 10, finding 5; docs/flash-sales.md, "Stock"),
on moto: held when the sale is created (409 OUT_OF_STOCK if the location has too few), committed
when an order is paid, back at the location when the sale ends (unsold, cancelled and expired
units, once), restocked there by a refund. on_hand = available + reserved after every step."""

from __future__ import annotations

import json

import pytest

from shared.data.items import LocationItem, StockItem
from shared.flash_sales.commands import FlashOrder
from shared.flash_sales.model import FlashSale, NewFlashSale
from shared.flash_sales.service import FlashSales
from shared.kernel.clock import FakeClock, now_ms
from shared.kernel.idempotency import IdempotentRequest
from shared.kernel.identity import Principal, Role
from shared.ordering.fulfilment import Address, Fulfilment, FulfilmentType
from shared.ordering.model import Status
from shared.payments.hmac_webhook import PaymentNotice
from shared.platform import bootstrap
from tests.conftest import bearer
from tests.functional.flash_support import iso_in
from tests.functional.orders_support import given_catalogue, stock_of

HOME = Fulfilment(FulfilmentType.DELIVERY, address=Address("韩梅梅", "13700000000", "上海", "徐汇区 3 号"))
PICKUP = Fulfilment(FulfilmentType.PICKUP, store_id="S001")
ADMIN = Principal("admin", Role.MERCHANT_ADMIN)


@pytest.fixture
def stocked(table):
    given_catalogue({("TEA-1", "WH"): 20, ("TEA-1", "S001"): 20})
    pk, sk = LocationItem.key("S001")
    LocationItem(
        pk, sk, location_id="S001", kind="store", name="静安店", city="上海", gsi1pk="LOCATIONS", gsi1sk="S001"
    ).save()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(now_ms())


@pytest.fixture
def flash(table, clock: FakeClock) -> FlashSales:
    return bootstrap.flash_sales(clock)  # with the stores (flash_service lists none)


def balanced() -> None:
    for item in StockItem.scan():
        if not isinstance(item, StockItem):
            continue
        assert int(item.on_hand) == int(item.reserved) + int(item.available), (item.sku, item.location)
        assert int(item.available) >= 0 and int(item.reserved) >= 0


def given_sale(flash: FlashSales, quantity: int, location: str = "WH", window_s: int = 60) -> FlashSale:
    now = flash.clock.now_ms()
    wanted = NewFlashSale("TEA-1", 5000, quantity, 2, now - 1000, now + 600_000, window_s, 500, location=location)
    created = flash.create(wanted, IdempotentRequest.of("flash-sales:test", None, {"q": quantity}))
    return flash.sale(created.body["flash_sale_id"])


def buy(flash: FlashSales, sale: FlashSale, customer: str, fulfilment: Fulfilment = HOME) -> str:
    request = IdempotentRequest.of(f"flash:{sale.sale_id}:{customer}", None, {"qty": 1})
    answer = flash.purchase(sale.sale_id, customer, FlashOrder(1, fulfilment), request)
    assert answer.status == 201, answer.body
    return str(answer.body["order_id"])


def pay(clock: FakeClock, order_id: str) -> None:
    lifecycle = bootstrap.order_lifecycle(clock)
    order = lifecycle.load(order_id)
    lifecycle.apply_payment(PaymentNotice(order_id, f"t-{order_id}", order.total_fen, "2026-11-23T00:00:00Z"))


def test_create_buy_pay_cancel_expire_and_end_keep_the_location_whole(stocked, flash, clock):
    sale = given_sale(flash, quantity=5, location="S001")
    assert stock_of("TEA-1", "S001") == (20, 5, 15) and stock_of("TEA-1", "WH") == (20, 0, 20)
    paid, unpaid, cancelled = buy(flash, sale, "c-1"), buy(flash, sale, "c-2"), buy(flash, sale, "c-3")
    assert stock_of("TEA-1", "S001") == (20, 5, 15)
    pay(clock, paid)
    assert stock_of("TEA-1", "S001") == (19, 4, 15)
    bootstrap.order_lifecycle(clock).cancel(cancelled, Principal("c-3", Role.CUSTOMER))
    assert stock_of("TEA-1", "S001") == (19, 4, 15)
    balanced()
    # The sale ends: the two unsold units and the cancelled one go back, once
    clock.advance((sale.ends_at_ms - clock.now_ms()) / 1000 + 1)
    flash.reconcile()
    assert stock_of("TEA-1", "S001") == (19, 1, 18)
    flash.reconcile()
    assert stock_of("TEA-1", "S001") == (19, 1, 18)
    # The order still unpaid at the end expires after it; the next run gives its unit back
    clock.advance(120)
    assert bootstrap.order_lifecycle(clock).expire_due() == 1
    assert bootstrap.order_lifecycle(clock).load(unpaid).status is Status.CANCELLED
    flash.reconcile()
    assert stock_of("TEA-1", "S001") == (19, 0, 19) and stock_of("TEA-1", "WH") == (20, 0, 20)
    balanced()


def test_a_restocked_refund_of_a_flash_pickup_goes_back_to_the_sales_location(stocked, flash, clock):
    sale = given_sale(flash, quantity=2)
    order_id = buy(flash, sale, "c-1", PICKUP)
    pay(clock, order_id)
    assert stock_of("TEA-1", "WH") == (19, 1, 18)
    refunds = bootstrap.order_refunds(clock)
    request = IdempotentRequest.of(f"refunds:c-1:{order_id}", None, {})
    asked = refunds.request_refund(order_id, {"TEA-1": 1}, "broken", Principal("c-1", Role.CUSTOMER), request)
    refunds.decide_refund(order_id, asked.body["refund_id"], True, True, ADMIN)
    # Before: the pickup store's on_hand went from 20 to 21. Now the unit is back at WH
    assert stock_of("TEA-1", "S001") == (20, 0, 20)
    assert stock_of("TEA-1", "WH") == (20, 1, 19)
    balanced()


def test_over_http_a_sale_names_its_location_and_too_few_there_is_409(client, tokens, stocked):
    def create(**extra):
        body = {
            "sku": "TEA-1",
            "price_fen": 5000,
            "quantity": 20,
            "per_user_limit": 1,
            "starts_at": iso_in(-1),
            "ends_at": iso_in(3600),
            **extra,
        }
        return client.http.post("/admin/flash-sales", headers=bearer(tokens["merchant_admin"]), body=json.dumps(body))

    held = create(location="S001")
    assert held.status_code == 201, held.json_body
    assert stock_of("TEA-1", "S001") == (20, 20, 0)
    refused = create(location="S001")
    assert refused.status_code == 409 and refused.json_body["code"] == "OUT_OF_STOCK"
    assert refused.json_body["details"] == {"sku": "TEA-1", "location": "S001"}
    assert create().status_code == 201  # WH by default
    assert stock_of("TEA-1", "WH") == (20, 20, 0)
    balanced()
