"""What placing an order writes (issue 15): the order carries its request's idempotency and the
relay derives its OrderPlaced from the order's INSERT, so a flash order writes its shard, its order
and the buyer's count, and an ordinary order its order and one reservation per line; nothing else.
Counted at the SDK, as the table would be charged: every item a write request names. The order item
stays under 1 KB by DynamoDB's size rules (a write unit per started KB, two inside a transaction):
it keeps the request's fingerprint, not its response, and a replay is answered the order as placed."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest

from bench._write_units import KB, item_size
from infra.local.runner import EventRunner
from shared.catalog import model as catalog
from shared.catalog.model import Product
from shared.data.connection import events
from shared.data.items import StockItem
from shared.kernel.clock import iso
from shared.kernel.errors import IdempotencyKeyReused
from shared.kernel.idempotency import IdempotentRequest
from shared.kernel.identity import Principal, Role
from shared.ordering.checkout import fulfilment_record
from shared.ordering.placement import Placement
from shared.ordering.pricing import CartLine, PricingRules, price_cart
from shared.payments.hmac_webhook import PaymentNotice
from shared.platform import bootstrap
from tests.conftest import bearer
from tests.fakes.promotions import full_300_off_30
from tests.functional.events_support import Queue, announced, stream_records
from tests.functional.flash_support import HOME_DELIVERY, buy, flash_service, given_sale
from tests.functional.orders_support import given_catalogue, stock_of

DELIVERY = {
    "type": "delivery",
    "address": {"recipient": "王芳", "phone": "13800138000", "city": "上海", "detail": "静安区南京西路1号"},
}
THREE = {
    "TEA-1": Product(sku="TEA-1", name="龙井", price_fen=10000),
    "CUP-1": Product(sku="CUP-1", name="杯子", price_fen=3333),
    "PEN-1": Product(sku="PEN-1", name="笔", price_fen=500),
}


class WriteCounter:
    """Items named by the write requests sent on the shared DynamoDB client, per operation."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []  # (operation, the item's pk)
        self.put: dict[str, dict[str, Any]] = {}  # the item of each Put in a transaction, by pk

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        name = model.name
        if name == "TransactWriteItems":
            for part in params["TransactItems"]:
                for kind in ("Put", "Update", "Delete"):
                    if kind in part:
                        self.items.append((f"Transact{kind}", _pk(part[kind])))
                if "Put" in part:
                    self.put[_pk(part["Put"])] = part["Put"]["Item"]
        elif name in ("PutItem", "UpdateItem", "DeleteItem"):
            self.items.append((name, _pk(params)))
        elif name == "BatchWriteItem":
            for requests in params["RequestItems"].values():
                self.items.extend(("BatchWriteItem", _pk(next(iter(r.values())))) for r in requests)


def _pk(request: dict[str, Any]) -> str:
    source = request.get("Item") or request.get("Key") or {}
    return str(source.get("pk", {}).get("S", ""))


@contextmanager
def counting() -> Iterator[WriteCounter]:
    counter = WriteCounter()
    unique_id = f"write-counter-{uuid.uuid4().hex[:8]}"
    events().register("before-parameter-build.dynamodb", counter, unique_id=unique_id)
    try:
        yield counter
    finally:
        events().unregister("before-parameter-build.dynamodb", unique_id=unique_id)


@pytest.fixture
def catalogue(table):
    given_catalogue({("TEA-1", "WH"): 1000, ("CUP-1", "WH"): 1000})
    now = int(time.time() * 1000)
    catalog.upsert_product(THREE["PEN-1"], bootstrap.products(), now)
    pk, sk = StockItem.key("PEN-1", "WH")
    StockItem(pk, sk, sku="PEN-1", location="WH", on_hand=1000, reserved=0, available=1000).save()


def test_an_uncontended_flash_order_writes_three_items_and_its_event_comes_from_the_order(table, catalogue):
    # Given a flash sale (read once by the service before the purchase is counted)
    flash = flash_service()
    sale = given_sale(flash, quantity=10, per_user_limit=2)
    flash.sale(sale.sale_id)
    # When a buyer buys with a key
    with counting() as writes:
        placed = buy(flash, sale, "c-1", key="k-1")
    # Then one transaction wrote the shard, the order and the buyer's count: three items
    assert placed.status == 201
    shard, buyer = f"FLASH#{sale.sale_id}#SHARD#", f"FLASH#{sale.sale_id}#BUYER#c-1"
    kinds = sorted(
        "shard" if pk.startswith(shard) else "buyer" if pk == buyer else pk.split("#")[0] for _, pk in writes.items
    )
    assert kinds == ["ORDER", "buyer", "shard"]  # no outbox Event item, no idempotency record
    # And the stream announces its OrderPlaced, with the envelope and payload the outbox wrote
    order_id = placed.body["order_id"]
    [event] = [e for e in announced() if e["aggregate_id"] == order_id]
    assert event["type"] == "OrderPlaced"
    assert event["occurred_at"] == placed.body["created_at"]
    payload = event["payload"]
    assert payload["order_id"] == order_id and payload["customer_id"] == "c-1"
    assert payload["status"] == "PENDING_PAYMENT" and payload["flash_sale_id"] == sale.sale_id
    assert payload["expires_at"] == placed.body["expires_at"] and payload["total_fen"] == placed.body["total_fen"]
    assert payload["lines"] == [{"sku": "TEA-1", "qty": 1, "payable_fen": placed.body["lines"][0]["payable_fen"]}]
    # And the order item is under 1 KB (2 write units in the transaction, not 4)
    assert item_size(writes.put[f"ORDER#{order_id}"]) < KB


def test_a_flash_replay_returns_the_order_and_a_reused_key_with_another_body_is_refused(table, catalogue):
    # Given a flash order placed with a key
    flash = flash_service()
    sale = given_sale(flash, quantity=10, per_user_limit=3)
    first = buy(flash, sale, "c-1", key="k-1")
    # When the same request comes again, it writes nothing new and answers the first order
    with counting() as writes:
        again = buy(flash, sale, "c-1", key="k-1")
    assert again == first and again.replayed
    assert [pk.split("#")[0] for _, pk in writes.items if not pk.startswith("FLASH#")] == ["ORDER"]  # refused
    # And the key with another body is IDEMPOTENCY_KEY_REUSED, nothing sold
    with pytest.raises(IdempotencyKeyReused):
        buy(flash, sale, "c-1", qty=2, key="k-1")
    # And another buyer's same key is another order
    other = buy(flash, sale, "c-2", key="k-1")
    assert other.body["order_id"] != first.body["order_id"]
    assert sum(e["type"] == "OrderPlaced" for e in announced()) == 2


def test_a_three_line_order_writes_four_items_and_its_payment_five(table, catalogue):
    # Given a 3-line cart, priced
    lines = [CartLine("TEA-1", 1), CartLine("CUP-1", 2), CartLine("PEN-1", 3)]
    quote = price_cart(
        lines,
        THREE,
        is_member=False,
        fulfilment_type="delivery",
        rules=PricingRules(),
        promotions=(full_300_off_30(),),
    )
    wanted = Placement(quote=quote, location="WH", fulfilment=fulfilment_record(HOME_DELIVERY), payment_window_s=900)
    request = IdempotentRequest.of("orders:c-1", "k-3", {"lines": {"TEA-1": 1, "CUP-1": 2, "PEN-1": 3}})
    placement = bootstrap.ordering()
    # When it is placed
    with counting() as writes:
        placed = placement.place(wanted, "c-1", request)
    # Then the order and its three reservations are the only items written
    assert placed.status == 201
    assert len(writes.items) == 4
    assert sorted(pk.split("#")[0] for _, pk in writes.items) == ["ORDER", "PRODUCT", "PRODUCT", "PRODUCT"]
    assert item_size(writes.put[f"ORDER#{placed.body['order_id']}"]) < KB  # with its address and promotion
    # And a replay answers the first response and holds nothing more
    with counting() as again:
        replayed = placement.place(wanted, "c-1", request)
    assert replayed == placed and replayed.replayed
    [event] = [e for e in announced() if e["aggregate_id"] == placed.body["order_id"]]
    assert event["type"] == "OrderPlaced" and event["occurred_at"] == iso(_ms(placed.body["created_at"]))
    assert sorted(pk.split("#")[0] for _, pk in again.items) == ["ORDER", "PRODUCT", "PRODUCT", "PRODUCT"]  # refused
    assert stock_of("PEN-1") == (1000, 3, 997)  # held once
    # When it is paid
    notice = PaymentNotice(placed.body["order_id"], "t-3", placed.body["total_fen"], "2026-11-23T00:00:00Z")
    with counting() as payment:
        assert bootstrap.order_lifecycle().apply_payment(notice).outcome == "paid"
    # Then the order, the payment record and the three stock commits are written: five items, no outbox
    assert sorted(pk.split("#")[0] for _, pk in payment.items) == ["ORDER", "PAYMENT", "PRODUCT", "PRODUCT", "PRODUCT"]
    paid = [e for e in announced() if e["aggregate_id"] == placed.body["order_id"] and e["type"] == "OrderPaid"]
    assert [(e["payload"]["transaction_id"], e["payload"]["paid_at"], e["payload"]["status"]) for e in paid] == [
        ("t-3", "2026-11-23T00:00:00Z", "PAID")
    ]
    assert item_size(payment.put[f"ORDER#{placed.body['order_id']}"]) < KB  # paid, still under 1 KB


def test_a_replay_after_the_order_changed_answers_the_first_response_byte_for_byte(client, tokens, catalogue):
    # Given an order placed over HTTP with a key, then paid and shipped
    body = json.dumps({"lines": [{"sku": "TEA-1", "qty": 1}, {"sku": "CUP-1", "qty": 2}], "fulfilment": DELIVERY})
    headers = {**bearer(tokens["customer"]), "Idempotency-Key": "k-http"}
    first = client.http.post("/orders", headers=headers, body=body)
    assert first.status_code == 201
    order = first.json_body
    notice = PaymentNotice(order["order_id"], "t-http", order["total_fen"], "2026-11-23T00:00:00Z")
    assert bootstrap.order_lifecycle().apply_payment(notice).outcome == "paid"
    shipped = client.http.post(
        f"/orders/{order['order_id']}/ship",
        headers=bearer(tokens["merchant_admin"]),
        body=json.dumps({"tracking_number": "SF1"}),
    )
    assert shipped.status_code == 200 and shipped.json_body["status"] == "FULFILLING"
    # When the same request comes again
    again = client.http.post("/orders", headers=headers, body=body)
    # Then it is answered what it was answered first, byte for byte, and nothing more is held
    assert (again.status_code, again.body) == (201, first.body)
    assert stock_of("TEA-1") == (999, 0, 999)  # paid once: committed, nothing reserved again
    # And the key with another body is still refused
    other = json.dumps({"lines": [{"sku": "TEA-1", "qty": 2}], "fulfilment": DELIVERY})
    reused = client.http.post("/orders", headers=headers, body=other)
    assert reused.status_code == 422 and reused.json_body["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_a_flash_replay_after_payment_answers_the_first_response(table, catalogue):
    flash = flash_service()
    sale = given_sale(flash, quantity=10, per_user_limit=3)
    first = buy(flash, sale, "c-1", key="k-1")
    notice = PaymentNotice(first.body["order_id"], "t-f", first.body["total_fen"], "2026-11-23T00:00:00Z")
    assert bootstrap.order_lifecycle().apply_payment(notice).outcome == "paid"
    again = buy(flash, sale, "c-1", key="k-1")
    assert again.replayed and json.dumps(again.body) == json.dumps(first.body)


def test_the_relay_forwards_the_derived_order_placed_once_per_redelivery_id(table, catalogue):
    # Given a flash order, its stream relayed twice (a redelivery)
    flash = flash_service()
    sale = given_sale(flash, quantity=10)
    placed = buy(flash, sale, "c-1", key="k-9", qty=1)
    runner = EventRunner(quiet=True)
    runner.drain(sources=["stream"])
    relay = bootstrap.event_relay()
    assert relay.relay(stream_records()) == {"batchItemFailures": []}
    # Then the notifications queue holds the OrderPlaced twice under ONE event id (consumers dedupe)
    notifications = Queue.of(table, "NotificationsQueue")
    placed_events = [e for e in notifications.events() if e["type"] == "OrderPlaced"]
    assert len(placed_events) == 2
    assert {e["event_id"] for e in placed_events} == {placed_events[0]["event_id"]}
    assert placed_events[0]["aggregate_id"] == placed.body["order_id"]


def _ms(created_at: str) -> int:
    return int(datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp() * 1000)


def test_cancelling_writes_the_order_and_its_releases_and_the_stream_announces_order_cancelled(table, catalogue):
    # Given a placed order of two lines
    request = IdempotentRequest.of("orders:c-1", "k-c", {"lines": {"TEA-1": 1, "CUP-1": 1}})
    quote = price_cart(
        [CartLine("TEA-1", 1), CartLine("CUP-1", 1)],
        THREE,
        is_member=False,
        fulfilment_type="delivery",
        rules=PricingRules(),
    )
    wanted = Placement(quote=quote, location="WH", fulfilment=fulfilment_record(HOME_DELIVERY), payment_window_s=900)
    placed = bootstrap.ordering().place(wanted, "c-1", request)
    order_id = placed.body["order_id"]
    # When its customer cancels it
    with counting() as writes:
        cancelled = bootstrap.order_lifecycle().cancel(order_id, Principal("c-1", Role.CUSTOMER))
    # Then the order and the two releases are written, no outbox Event item
    assert sorted(pk.split("#")[0] for _, pk in writes.items) == ["ORDER", "PRODUCT", "PRODUCT"]
    # And the stream announces OrderCancelled once, with the cancelled order's payload
    [event] = [e for e in announced() if e["aggregate_id"] == order_id and e["type"] == "OrderCancelled"]
    assert event["payload"] == cancelled.event_payload()
    assert event["occurred_at"] == iso(cancelled.history[-1].at_ms)
