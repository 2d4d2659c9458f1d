"""A replay of the request that placed an order is answered from the order itself (`Order.first_answer`,
the order as placed), not from a stored copy: after every change the lifecycle and the refunds
make, the answer rebuilt from the order must be the first answer, byte for byte as JSON."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from shared.catalog.model import Product
from shared.inventory.locations import Location
from shared.kernel.errors import WrongPickupCode
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.kernel.identity import Principal, Role
from shared.ordering.checkout import Cart
from shared.ordering.fulfilment import Address, Fulfilment, FulfilmentType
from shared.ordering.pricing import CartLine
from shared.payments.hmac_webhook import PaymentNotice
from tests.fakes.ordering import OrderingOnFakes, ordering_on_fakes

TEA = Product(sku="TEA-1", name="龙井", price_fen=10000)
CUP = Product(sku="CUP-1", name="杯子", price_fen=3333)
ALICE = Principal("alice", Role.CUSTOMER)
STAFF = Principal("staff", Role.STORE_STAFF, "S001")
ADMIN = Principal("admin", Role.MERCHANT_ADMIN)
DELIVERY = Fulfilment(FulfilmentType.DELIVERY, address=Address("韩梅梅", "13700000000", "上海", "徐汇区 3 号"))
PICKUP = Fulfilment(FulfilmentType.PICKUP, store_id="S001")


@pytest.fixture
def shop() -> OrderingOnFakes:
    return ordering_on_fakes(
        products=[TEA, CUP],
        stock={("TEA-1", "WH"): 10, ("CUP-1", "WH"): 10, ("TEA-1", "S001"): 5, ("CUP-1", "S001"): 5},
        locations=[Location("WH", "warehouse", "仓"), Location("S001", "store", "静安", "Shanghai")],
        payment_window_s=60,
    )


def placed(shop: OrderingOnFakes, fulfilment: Fulfilment = DELIVERY) -> StoredResponse:
    lines = {"TEA-1": 1, "CUP-1": 3}
    cart = Cart(tuple(CartLine(s, q) for s, q in lines.items()), (), fulfilment)
    return shop.placement.place_order(cart, "alice", IdempotentRequest.of("orders:alice", "k-1", lines))


def as_json(response: StoredResponse) -> tuple[int, str]:
    return response.status, json.dumps(response.body, ensure_ascii=False)


def answers_first(shop: OrderingOnFakes, first: StoredResponse, change: Callable[[], object]) -> int:
    """Apply `change`; the order it leaves answers `first`. Returns the order's version after it."""
    change()
    order = shop.reads.get(first.body["order_id"])
    assert order is not None
    assert as_json(order.first_answer()) == as_json(first)
    return order.version


def pay(shop: OrderingOnFakes, order_id: str, txn: str = "t-1") -> object:
    order = shop.reads.get(order_id)
    assert order is not None
    return shop.lifecycle.apply_payment(PaymentNotice(order_id, txn, order.total_fen, "2026-11-23T00:00:00Z"))


def test_a_placed_order_answers_what_its_placement_answered(shop):
    first = placed(shop)
    order = shop.reads.get(first.body["order_id"])
    assert order is not None and order.as_placed() == order
    assert as_json(order.first_answer()) == as_json(first)


def test_a_delivery_paid_refunded_shipped_and_completed_still_answers_its_first_answer(shop):
    first = placed(shop)
    order_id = first.body["order_id"]

    def request_refund(lines: dict[str, int]) -> str:
        request = IdempotentRequest.of(f"refunds:alice:{order_id}", None, {"lines": lines, "reason": "x"})
        return str(shop.refunds.request_refund(order_id, lines, "x", ALICE, request).body["refund_id"])

    versions = [
        answers_first(shop, first, lambda: pay(shop, order_id)),
        answers_first(shop, first, lambda: pay(shop, order_id, "t-2")),  # a second payment: a note
        answers_first(
            shop, first, lambda: shop.refunds.decide_refund(order_id, request_refund({"CUP-1": 1}), False, False, ADMIN)
        ),
        answers_first(
            shop, first, lambda: shop.refunds.decide_refund(order_id, request_refund({"CUP-1": 1}), True, True, ADMIN)
        ),
        answers_first(shop, first, lambda: shop.lifecycle.ship(order_id, "SF123456", ADMIN)),
        answers_first(shop, first, lambda: shop.lifecycle.complete(order_id, ALICE)),
        answers_first(
            shop,
            first,
            lambda: shop.refunds.decide_refund(order_id, request_refund({"CUP-1": 2, "TEA-1": 1}), True, False, ADMIN),
        ),
    ]
    assert versions == sorted(versions) and versions[-1] > 6  # every step changed the order
    assert shop.reads.get(order_id).status.value == "REFUNDED"


def test_a_pickup_locked_out_reset_and_handed_over_still_answers_its_first_answer(shop):
    first = placed(shop, PICKUP)
    order_id = first.body["order_id"]
    answers_first(shop, first, lambda: pay(shop, order_id))
    answers_first(shop, first, lambda: shop.lifecycle.ready_for_pickup(order_id, STAFF))
    code = shop.reads.get(order_id).pickup_code

    def wrong_code() -> None:
        with pytest.raises(WrongPickupCode):
            shop.lifecycle.hand_over(order_id, "000000" if code != "000000" else "111111", STAFF)

    answers_first(shop, first, wrong_code)
    answers_first(shop, first, lambda: shop.lifecycle.reset_pickup_attempts(order_id, ADMIN))
    answers_first(shop, first, lambda: shop.lifecycle.hand_over(order_id, code, STAFF))


def test_a_cancelled_and_an_expired_order_still_answer_their_first_answers(shop):
    first = placed(shop)
    answers_first(shop, first, lambda: shop.lifecycle.cancel(first.body["order_id"], ALICE))
    lines = {"TEA-1": 2}
    cart = Cart((CartLine("TEA-1", 2),), (), DELIVERY)
    second = shop.placement.place_order(cart, "alice", IdempotentRequest.of("orders:alice", "k-2", lines))
    shop.clock.advance(61)
    answers_first(shop, second, shop.lifecycle.expire_due)
