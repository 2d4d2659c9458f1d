"""Issue 10's books on the serialised moto table: concurrent refund requests for the same units
(finding 6), payments that pay no order of ours recorded and listed for finance (finding 7), and
a pickup lock-out a merchant admin lifts (finding 12); the services, then the routes."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.data.stores.ordering_uow import unit_of_work
from shared.data.stores.orders import DynamoOrders
from shared.kernel.clock import FakeClock, now_ms
from shared.kernel.errors import RuleViolation
from shared.kernel.idempotency import IdempotentRequest
from shared.kernel.identity import Principal, Role
from shared.ordering.refunds import OrderRefunds
from shared.payments.hmac_webhook import sign
from shared.platform import bootstrap
from tests.conftest import TEST_ENV, bearer
from tests.functional.orders_support import given_catalogue, placement, request, stock_of

CUSTOMER = Principal("c-1", Role.CUSTOMER)
PICKUP = {"type": "pickup", "store_id": "S001"}


@pytest.fixture
def clock():
    return FakeClock(now_ms())


@pytest.fixture
def stocked(table):
    given_catalogue({("TEA-1", "WH"): 10, ("CUP-1", "WH"): 5, ("TEA-1", "S001"): 3})


@pytest.fixture
def place(table, clock):
    placing = bootstrap.ordering(clock)

    def place(lines, fulfilment=None, location="WH"):
        body = {"lines": lines, "fulfilment": fulfilment}
        stored = placing.place(placement(lines, fulfilment, location), "c-1", request("c-1", None, body))
        return stored.body

    return place


def post(client, path, token, body=None):
    return client.http.post(path, headers=bearer(token), body=json.dumps(body or {}))


def get(client, path, token):
    return client.http.get(path, headers=bearer(token))


def notify(client, order_id, txn, amount_fen):
    raw = json.dumps(
        {"order_id": order_id, "transaction_id": txn, "amount_fen": amount_fen, "paid_at": "2026-11-23T01:00:00Z"}
    )
    signature = sign(TEST_ENV["PAYMENT_WEBHOOK_SECRET"], raw.encode(), int(time.time()))
    headers = {"X-Pay-Signature": signature, "Content-Type": "application/json"}
    return client.http.post("/payments/notify", headers=headers, body=raw)


# -- 6: concurrent refund requests ---------------------------------------------------------------
class EveryoneReadsFirst(DynamoOrders):
    """The table's reads, holding each request back after its first read of the order (and of its
    refunds) until all have read: the interleaving in which a read-then-write check lets all in."""

    def __init__(self, parties: int) -> None:
        self._gate = threading.Barrier(parties, timeout=60)
        self._seen = threading.local()

    def get(self, order_id, consistent=True):
        found = super().get(order_id, consistent)
        self._first("order")
        return found

    def refunds_of(self, order_id):
        found = super().refunds_of(order_id)
        self._first("refunds")
        return found

    def _first(self, what: str) -> None:
        if not getattr(self._seen, what, False):
            setattr(self._seen, what, True)
            self._gate.wait()


def test_twenty_requests_that_all_read_the_paid_order_first_hold_its_only_unit_once(stocked, place, client, tokens):
    # Given a paid order of one cup
    order = place({"CUP-1": 1})
    assert client.http.post(f"/dev/pay/{order['order_id']}").json_body["outcome"] == "paid"
    refunds = OrderRefunds(unit_of_work, EveryoneReadsFirst(20), FakeClock(now_ms()))
    lines = {"CUP-1": 1}

    def send(i: int) -> str:
        key = IdempotentRequest.of(f"refunds:c-1:{order['order_id']}", f"k-{i}", {"lines": lines, "reason": "x"})
        try:
            return str(refunds.request_refund(order["order_id"], lines, "x", CUSTOMER, key).status)
        except RuleViolation:
            return "422"

    # When 20 requests with their own keys read the order, then all write
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = sorted(pool.map(send, range(20)))
    # Then one is accepted and 19 refused, as when sent one after another
    assert answers == ["201"] + ["422"] * 19
    view = get(client, f"/orders/{order['order_id']}", tokens["customer"]).json_body
    assert [r["status"] for r in view["refunds"]] == ["REQUESTED"]
    # And over HTTP: one more is 422; rejecting gives the unit back, and it can be asked for again
    again = post(
        client,
        f"/orders/{order['order_id']}/refunds",
        tokens["customer"],
        {"lines": [{"sku": "CUP-1", "qty": 1}], "reason": "y"},
    )
    assert (again.status_code, again.json_body["details"]) == (422, {"sku": "CUP-1", "refundable_qty": 0})
    decision = f"/admin/orders/{order['order_id']}/refunds/{view['refunds'][0]['refund_id']}/decision"
    assert post(client, decision, tokens["merchant_admin"], {"approve": False}).json_body["status"] == "REJECTED"
    after = post(
        client,
        f"/orders/{order['order_id']}/refunds",
        tokens["customer"],
        {"lines": [{"sku": "CUP-1", "qty": 1}], "reason": "y"},
    )
    assert after.status_code == 201
    issued = post(
        client,
        f"/admin/orders/{order['order_id']}/refunds/{after.json_body['refund_id']}/decision",
        tokens["merchant_admin"],
        {"approve": True, "restock": True},
    )
    assert issued.json_body["status"] == "ISSUED" and stock_of("CUP-1") == (5, 0, 5)
    final = get(client, f"/orders/{order['order_id']}", tokens["customer"]).json_body
    assert final["status"] == "REFUNDED" and final["refunded_fen"] == order["lines"][0]["payable_fen"]


# -- 7: payments that pay no order of ours --------------------------------------------------------
def test_a_payment_for_no_order_and_a_reused_transaction_id_are_recorded_and_listed_for_finance(
    stocked, place, client, tokens
):
    # Given order X paid by wx-1 and order Y unpaid
    x, y = place({"TEA-1": 1}), place({"TEA-1": 1})
    assert notify(client, x["order_id"], "wx-1", x["total_fen"]).json_body["outcome"] == "paid"
    # When the provider notifies a payment for an order that does not exist, and wx-1 for Y, each twice
    lost = [notify(client, "o-none", "wx-lost", 4200) for _ in range(2)]
    clash = [notify(client, y["order_id"], "wx-1", y["total_fen"]) for _ in range(2)]
    # Then both are acknowledged as needing a refund once, and Y is not paid by X's transaction
    assert [r.status_code for r in lost + clash] == [200] * 4
    assert [r.json_body["outcome"] for r in lost + clash] == ["needs_refund", "duplicate"] * 2
    assert lost[0].json_body == {"order_id": "o-none", "outcome": "needs_refund"}
    assert clash[0].json_body == {"order_id": y["order_id"], "status": "PENDING_PAYMENT", "outcome": "needs_refund"}
    assert get(client, f"/orders/{y['order_id']}", tokens["customer"]).json_body["status"] == "PENDING_PAYMENT"
    assert stock_of("TEA-1") == (9, 1, 8)
    # And finance lists both, newest first, a page at a time
    first = get(client, "/finance/payments?status=needs_refund&limit=1", tokens["finance"])
    assert first.status_code == 200 and first.json_body["next_cursor"]
    rest = get(
        client,
        f"/finance/payments?status=needs_refund&limit=1&cursor={first.json_body['next_cursor']}",
        tokens["finance"],
    )
    listed = first.json_body["items"] + rest.json_body["items"]
    assert [(p["transaction_id"], p["order_id"], p["status"]) for p in listed] == [
        ("wx-1", y["order_id"], "NEEDS_REFUND"),
        ("wx-lost", "o-none", "NEEDS_REFUND"),
    ]
    assert listed[0]["reason"] == f"transaction id already recorded for order {x['order_id']}"
    assert listed[1]["amount_fen"] == 4200 and listed[1]["reason"] == "no such order"


def test_the_finance_list_is_finances_and_names_its_status(table, client, tokens):
    assert get(client, "/finance/payments?status=needs_refund", tokens["customer"]).status_code == 403
    assert get(client, "/finance/payments?status=needs_refund", tokens["merchant_admin"]).status_code == 403
    for query in ("", "?status=applied"):
        refused = get(client, f"/finance/payments{query}", tokens["finance"])
        assert (refused.status_code, refused.json_body["code"]) == (400, "MALFORMED_REQUEST")
    empty = get(client, "/finance/payments?status=needs_refund", tokens["finance"])
    assert empty.json_body == {"items": [], "next_cursor": None}


# -- 12: the pickup lock-out ----------------------------------------------------------------------
def test_a_locked_pickup_is_reset_by_a_merchant_admin_audited_and_then_handed_over(stocked, place, client, tokens):
    # Given a paid pickup readied at S001, and 5 wrong codes
    order = place({"TEA-1": 1}, PICKUP, "S001")
    path = f"/orders/{order['order_id']}"
    assert client.http.post(f"/dev/pay/{order['order_id']}").status_code == 200
    assert post(client, f"{path}/ready-for-pickup", tokens["store_staff"]).status_code == 200
    code = get(client, path, tokens["customer"]).json_body["pickup_code"]
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    assert [
        post(client, f"{path}/hand-over", tokens["store_staff"], {"pickup_code": wrong}).status_code for _ in range(5)
    ] == [422] * 5
    # Then the right code is 429, even from a merchant admin, and only a merchant admin may reset
    for role in ("store_staff", "merchant_admin"):
        assert post(client, f"{path}/hand-over", tokens[role], {"pickup_code": code}).status_code == 429
    for role in ("store_staff", "guide", "customer", "finance"):
        assert post(client, f"{path}/pickup-code/reset", tokens[role]).status_code == 403
    # When a merchant admin resets it
    reset = post(client, f"{path}/pickup-code/reset", tokens["merchant_admin"])
    # Then the order's history says who and when, and the store hands over with the customer's code
    assert reset.status_code == 200 and reset.json_body["status"] == "FULFILLING"
    entry = reset.json_body["history"][-1]
    assert (entry["action"], entry["by"], entry["note"]) == ("reset_pickup_attempts", "admin", "after 5 wrong codes")
    assert entry["at"].endswith("Z")
    handed = post(client, f"{path}/hand-over", tokens["store_staff"], {"pickup_code": code})
    assert handed.status_code == 200 and handed.json_body["status"] == "COMPLETED"
    assert post(client, f"{path}/pickup-code/reset", tokens["merchant_admin"]).status_code == 409


# -- 14: a flash order without fulfilment -----------------------------------------------------------
HOME = {"recipient": "韩梅梅", "phone": "+86 137 0000 1234", "city": "上海", "detail": "徐汇区 3 号"}


def test_the_saved_address_is_the_callers_own(table, client, tokens):
    put = client.http.put(
        "/me/address", headers=bearer(tokens["customer"]), body=json.dumps({**HOME, "lat": 31.2, "lng": 121.4})
    )
    assert (put.status_code, put.json_body) == (200, {**HOME, "lat": 31.2, "lng": 121.4})
    assert get(client, "/me/address", tokens["customer"]).json_body == {**HOME, "lat": 31.2, "lng": 121.4}
    assert get(client, "/me/address", tokens["customer2"]).status_code == 404
    assert get(client, "/me/address", tokens["merchant_admin"]).status_code == 403
    blank = client.http.put("/me/address", headers=bearer(tokens["customer"]), body=json.dumps({**HOME, "city": "  "}))
    assert blank.status_code == 422


def test_a_flash_order_without_fulfilment_goes_to_the_saved_address_else_is_422(stocked, client, tokens):
    # Given a flash sale running now
    now = time.time()
    sale = {
        "sku": "TEA-1",
        "price_fen": 5000,
        "quantity": 5,
        "per_user_limit": 1,
        "starts_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 5)),
        "ends_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600)),
    }
    created = post(client, "/admin/flash-sales", tokens["merchant_admin"], sale)
    assert created.status_code == 201, created.json_body
    orders = f"/flash-sales/{created.json_body['flash_sale_id']}/orders"
    # When a customer with no saved address buys without naming a fulfilment
    refused = post(client, orders, tokens["customer"], {"qty": 1})
    # Then 422 FULFILMENT_REQUIRED and nothing sold
    assert (refused.status_code, refused.json_body["code"]) == (422, "FULFILMENT_REQUIRED")
    assert client.http.get(orders.removesuffix("/orders")).json_body["remaining"] == 5
    # When they save a default address (with coordinates) and buy again
    client.http.put(
        "/me/address", headers=bearer(tokens["customer"]), body=json.dumps({**HOME, "lat": 31.2, "lng": 121.4})
    )
    bought = post(client, orders, tokens["customer"], {"qty": 1})
    # Then the order is a delivery from the warehouse to that address (no coordinates: flash sales have no same-city)
    assert bought.status_code == 201, bought.json_body
    assert bought.json_body["fulfilment"] == {"type": "delivery", "address": HOME}
    assert bought.json_body["location"] == "WH"
