"""Issue 10's books findings over HTTP against the local stack: concurrent refund requests (6),
payments that pay no order of ours (7), the pickup lock-out (12) and a flash order without a
fulfilment (14). Test names carry the finding's number; docs/security.md lists the cases."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from shared.web.auth import Role, issue_token
from tests.hostile.flows import ADDRESS, DELIVERY, notify, order, product, ready_pickup
from tests.hostile.tally import record

CLIENTS = 20


def secret(stack) -> str:
    return stack.environment["PAYMENT_WEBHOOK_SECRET"]


# -- 6: concurrent refund requests ----------------------------------------------------------------
def test_6_twenty_refund_requests_at_once_for_the_only_unit_accept_exactly_one(api, tokens, stack):
    # Given a paid order of one unit
    sku = product(api, tokens["merchant_admin"])
    placed = order(api, tokens["customer"], sku, DELIVERY)
    assert api.post(f"/dev/pay/{placed['order_id']}").status_code == 200
    url = f"{stack.api_url}/orders/{placed['order_id']}/refunds"
    start = threading.Barrier(CLIENTS, timeout=60)
    run = uuid.uuid4().hex[:8]

    def ask(i: int) -> requests.Response:
        headers = {"Authorization": f"Bearer {tokens['customer']}", "Idempotency-Key": f"refund-{run}-{i}"}
        start.wait()
        body = {"lines": [{"sku": sku, "qty": 1}], "reason": "坏了"}
        return record(requests.post(url, json=body, headers=headers, timeout=60))

    # When 20 clients ask for it back at the same moment, each with its own Idempotency-Key
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        answers = list(pool.map(ask, range(CLIENTS)))
    # Then one is accepted and 19 get the 422 a request sent after it gets; one refund is REQUESTED
    assert sorted(a.status_code for a in answers) == [201] + [422] * (CLIENTS - 1), [a.text for a in answers]
    refused = [a.json() for a in answers if a.status_code == 422]
    assert {(r["code"], r["details"]["refundable_qty"]) for r in refused} == {("RULE_VIOLATION", 0)}
    view = api.get(f"/orders/{placed['order_id']}", token=tokens["customer"]).json()
    assert [r["status"] for r in view["refunds"]] == ["REQUESTED"]
    # And rejecting it gives the unit back: it can be asked for again
    decision = f"/admin/orders/{placed['order_id']}/refunds/{view['refunds'][0]['refund_id']}/decision"
    assert api.post(decision, token=tokens["merchant_admin"], json={"approve": False}).status_code == 200
    again = api.post(
        url.removeprefix(stack.api_url),
        token=tokens["customer"],
        json={"lines": [{"sku": sku, "qty": 1}], "reason": "x"},
    )
    assert again.status_code == 201, again.text


# -- 7: money that arrived is recorded -------------------------------------------------------------
def needing_refund(api, tokens) -> dict[tuple[str, str], dict]:
    items = api.pages("/finance/payments", limit=100, token=tokens["finance"], params={"status": "needs_refund"})
    return {(p["transaction_id"], p["order_id"]): p for p in items}


def test_7_a_payment_for_no_order_and_a_reused_transaction_id_are_recorded_for_finance(api, tokens, stack):
    # Given order X paid by a transaction, and order Y unpaid
    sku = product(api, tokens["merchant_admin"])
    x, y = (order(api, tokens["customer"], sku, DELIVERY) for _ in range(2))
    txn, lost, gone = f"wx-{uuid.uuid4().hex[:12]}", f"wx-{uuid.uuid4().hex[:12]}", f"o{uuid.uuid4().hex}"
    paid_at = "2026-11-23T01:00:00Z"
    paid = notify(
        api,
        secret(stack),
        {"order_id": x["order_id"], "transaction_id": txn, "amount_fen": x["total_fen"], "paid_at": paid_at},
    )
    assert paid.json()["outcome"] == "paid"
    # When the provider notifies a signed payment for an order that does not exist, and X's transaction for Y
    unknown = notify(
        api, secret(stack), {"order_id": gone, "transaction_id": lost, "amount_fen": 4200, "paid_at": paid_at}
    )
    clash = notify(
        api,
        secret(stack),
        {"order_id": y["order_id"], "transaction_id": txn, "amount_fen": y["total_fen"], "paid_at": paid_at},
    )
    # Then both are acknowledged as needing a refund, Y is not paid by X's money, and finance lists both
    assert (unknown.status_code, unknown.json()) == (200, {"order_id": gone, "outcome": "needs_refund"})
    assert (clash.status_code, clash.json()["outcome"], clash.json()["status"]) == (
        200,
        "needs_refund",
        "PENDING_PAYMENT",
    )
    assert api.get(f"/orders/{y['order_id']}", token=tokens["customer"]).json()["status"] == "PENDING_PAYMENT"
    listed = needing_refund(api, tokens)
    assert listed[(lost, gone)]["reason"] == "no such order" and listed[(lost, gone)]["amount_fen"] == 4200
    assert listed[(txn, y["order_id"])]["reason"] == f"transaction id already recorded for order {x['order_id']}"
    assert (txn, x["order_id"]) not in listed  # the applied payment is not a refund
    # And sent again, each is a duplicate, listed once
    again = notify(
        api, secret(stack), {"order_id": gone, "transaction_id": lost, "amount_fen": 4200, "paid_at": paid_at}
    )
    assert again.json()["outcome"] == "duplicate"
    assert sum(1 for key in needing_refund(api, tokens) if key[0] in (txn, lost)) == 2


def test_7_only_finance_reads_the_list_and_it_names_its_status(api, tokens):
    for role in ("customer", "merchant_admin", "store_staff"):
        assert api.get("/finance/payments", token=tokens[role], params={"status": "needs_refund"}).status_code == 403
    refused = api.get("/finance/payments", token=tokens["finance"], params={"status": "APPLIED"})
    assert (refused.status_code, refused.json()["code"]) == (400, "MALFORMED_REQUEST")
    forged = api.get("/finance/payments", token=tokens["finance"], params={"status": "needs_refund", "cursor": "e30.x"})
    assert forged.status_code == 400


# -- 12: the pickup lock-out has a way out -----------------------------------------------------------
def test_12_a_merchant_admin_resets_a_locked_pickup_audited_and_the_code_then_works(api, tokens):
    # Given a readied pickup and 5 wrong codes
    sku = product(api, tokens["merchant_admin"])
    order_id, code = ready_pickup(api, tokens, sku)
    path = f"/orders/{order_id}"
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    tries = [api.post(f"{path}/hand-over", token=tokens["store_staff"], json={"pickup_code": wrong}) for _ in range(5)]
    assert [t.status_code for t in tries] == [422] * 5
    # Then the right code is 429 for staff and admin alike, and nobody but a merchant admin may reset
    for role in ("store_staff", "merchant_admin"):
        assert api.post(f"{path}/hand-over", token=tokens[role], json={"pickup_code": code}).status_code == 429
    for role in ("store_staff", "guide", "customer", "finance"):
        assert api.post(f"{path}/pickup-code/reset", token=tokens[role]).status_code == 403
    # When a merchant admin resets it
    reset = api.post(f"{path}/pickup-code/reset", token=tokens["merchant_admin"])
    # Then the history says who and when, and the store hands over with the customer's code
    assert reset.status_code == 200, reset.text
    entry = reset.json()["history"][-1]
    assert (entry["action"], entry["note"]) == ("reset_pickup_attempts", "after 5 wrong codes") and entry["by"]
    handed = api.post(f"{path}/hand-over", token=tokens["store_staff"], json={"pickup_code": code})
    assert (handed.status_code, handed.json()["status"]) == (200, "COMPLETED")


# -- 14: a flash order without fulfilment is delivered somewhere, or refused ---------------------------
def test_14_a_flash_order_without_fulfilment_goes_to_the_saved_address_else_is_422(api, tokens, stack):
    # Given a flash sale of a product with stock, and a customer who has saved no address
    sku = product(api, tokens["merchant_admin"])
    now = time.time()
    sale = {
        "sku": sku,
        "price_fen": 1000,
        "quantity": 3,
        "per_user_limit": 1,
        "starts_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 5)),
        "ends_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600)),
    }
    created = api.post("/admin/flash-sales", token=tokens["merchant_admin"], json=sale)
    assert created.status_code == 201, created.text
    orders = f"/flash-sales/{created.json()['flash_sale_id']}/orders"
    buyer = issue_token(stack.environment["JWT_SECRET"], f"h14-{uuid.uuid4().hex[:8]}", Role.CUSTOMER)
    # When they buy naming no fulfilment: 422 FULFILMENT_REQUIRED, nothing sold
    refused = api.post(orders, token=buyer, json={"qty": 1})
    assert (refused.status_code, refused.json()["code"]) == (422, "FULFILMENT_REQUIRED")
    assert api.get("/me/address", token=buyer).status_code == 404
    # When they save a default address, then buy the same way
    assert api.put("/me/address", token=buyer, json=ADDRESS).json() == ADDRESS
    bought = api.post(orders, token=buyer, json={"qty": 1})
    # Then the order is a delivery to it
    assert bought.status_code == 201, bought.text
    assert bought.json()["fulfilment"] == {"type": "delivery", "address": ADDRESS}
