"""Cancelling a flash sale on moto (issue 10, finding 5; docs/flash-sales.md, "Cancelling a sale"):
the cancel closes every shard in one write, so purchases are refused at once, even by a service
that still has the sale cached; the reconciler's next run returns every unsold unit to the sale's
location; orders placed before are untouched; cancelling again answers the same 200."""

from __future__ import annotations

import json

import pytest

from shared.data.stores.flash_sales import DynamoFlashSales
from shared.flash_sales.service import FlashSales
from shared.kernel.clock import FakeClock
from shared.kernel.errors import Ended, SaleCancelled
from shared.kernel.identity import Principal, Role
from shared.ordering.model import Status
from shared.platform import bootstrap
from tests.conftest import bearer
from tests.functional import test_flash_stock as on_stock
from tests.functional.flash_support import iso_in
from tests.functional.orders_support import stock_of
from tests.functional.test_flash_sales import dynamodb_calls
from tests.functional.test_flash_stock import PICKUP, balanced, buy, given_sale, pay

# The fixtures of the stock tests: the catalogue stocked at WH and S001, a fake clock, the service.
stocked, clock, flash = on_stock.stocked, on_stock.clock, on_stock.flash


def test_cancel_stops_sales_at_once_and_the_reconciler_returns_the_unsold_units(stocked, flash, clock):
    sale = given_sale(flash, quantity=6, location="S001")
    other_process: FlashSales = bootstrap.flash_sales(clock)
    paid, unpaid = buy(other_process, sale, "c-1", PICKUP), buy(other_process, sale, "c-2")  # it caches the sale
    pay(clock, paid)
    assert stock_of("TEA-1", "S001") == (19, 5, 14)

    with dynamodb_calls() as sent:
        answer = flash.cancel(sale.sale_id)
    assert answer["status"] == "CANCELLED"
    assert sent == ["GetItem", "TransactWriteItems"]  # a consistent read, then sale and shards in one write
    # The other process still has the sale cached: its order's one transaction meets the closed shard
    with dynamodb_calls() as sent, pytest.raises(SaleCancelled):
        buy(other_process, sale, "c-3")
    assert sent == ["TransactWriteItems"]  # no extra round trip: the shard's own condition refused it
    with dynamodb_calls() as sent, pytest.raises(SaleCancelled):
        buy(other_process, sale, "c-3")
    assert sent == ["GetItem"]  # it forgot the sale, read it again, and refused before any write
    # A process on the contended path: its single-item decrement is refused the same way
    contended: FlashSales = bootstrap.flash_sales(clock)
    contended.sale(sale.sale_id)
    contended.book._sales[sale.sale_id] = sale  # as cached before the cancel
    contended.contention.note_conflict(sale.sale_id)
    with dynamodb_calls() as sent, pytest.raises(SaleCancelled):
        buy(contended, sale, "c-4")
    assert sent == ["UpdateItem"]
    assert flash.view(sale.sale_id)["status"] == "CANCELLED" and flash.view(sale.sale_id)["remaining"] == 4

    assert flash.reconcile() == 0  # nothing unclaimed; the settle is what moves stock
    assert stock_of("TEA-1", "S001") == (19, 1, 18)
    assert flash.view(sale.sale_id)["remaining"] == 0
    assert bootstrap.order_lifecycle(clock).load(paid).status is Status.PAID
    bootstrap.order_lifecycle(clock).cancel(unpaid, Principal("c-2", Role.CUSTOMER))
    flash.reconcile()
    assert stock_of("TEA-1", "S001") == (19, 0, 19)
    assert stock_of("TEA-1", "WH") == (20, 0, 20)
    balanced()


def test_an_ended_sale_cannot_be_cancelled_and_a_racing_cancel_gets_the_first(stocked, flash, clock: FakeClock):
    ended, live = given_sale(flash, quantity=2), given_sale(flash, quantity=2)
    first = DynamoFlashSales().cancel(live, clock.now_ms())
    clock.advance(1)
    assert DynamoFlashSales().cancel(live, clock.now_ms()) == first  # a request that read it before the first
    clock.advance(601)
    with pytest.raises(Ended):
        flash.cancel(ended.sale_id)
    with pytest.raises(Ended):
        DynamoFlashSales().cancel(ended, clock.now_ms())
    assert stock_of("TEA-1", "WH") == (20, 4, 16)
    flash.reconcile()
    assert stock_of("TEA-1", "WH") == (20, 0, 20)
    balanced()


def test_over_http_cancel_is_idempotent_and_purchases_get_409(client, tokens, stocked):
    admin = bearer(tokens["merchant_admin"])
    body = {"sku": "TEA-1", "price_fen": 5000, "quantity": 3, "per_user_limit": 1}
    created = client.http.post(
        "/admin/flash-sales",
        headers=admin,
        body=json.dumps({**body, "starts_at": iso_in(-1), "ends_at": iso_in(3600)}),
    )
    assert created.status_code == 201, created.json_body
    sale_id = created.json_body["flash_sale_id"]
    path = f"/admin/flash-sales/{sale_id}/cancel"
    assert client.http.post(path, headers=bearer(tokens["customer"])).status_code == 403
    first = client.http.post(path, headers=admin)
    assert first.status_code == 200, first.json_body
    assert first.json_body["status"] == "CANCELLED" and first.json_body["flash_sale_id"] == sale_id
    again = client.http.post(path, headers=admin)
    assert (again.status_code, again.json_body) == (200, first.json_body)
    order = {"qty": 1, "fulfilment": {"type": "pickup", "store_id": "S001"}}
    bought = client.http.post(
        f"/flash-sales/{sale_id}/orders", headers=bearer(tokens["customer"]), body=json.dumps(order)
    )
    assert bought.status_code == 409 and bought.json_body["code"] == "FLASH_SALE_CANCELLED", bought.json_body
    unknown = client.http.post("/admin/flash-sales/fs" + "0" * 24 + "/cancel", headers=admin)
    assert unknown.status_code == 404
