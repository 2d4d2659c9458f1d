"""Issue 12 end to end, over HTTP against the `make dev` stack: a member bound to a guide of S001
orders, pays and completes; after the after-sale window (5 s under the local stage) a settlement
run pays the dealer, the store and the guide exactly their rates of the paid amount, freight
excluded; the OrderPaid event delivered three times writes each entry once; a refund of one of
two units after settlement is a negative line in the next run; and the reconciliation then shows
the store and the dealer with no difference, the order in them to the fen."""

from __future__ import annotations

import json
import math
import time
import uuid

import boto3
import pytest

from shared.data.stream import decode
from shared.kernel.clock import iso
from shared.payments.hmac_webhook import sign
from shared.web.auth import Role, issue_token
from tests.e2e.http_api import eventually
from tests.functional.events_support import stream_records

pytestmark = pytest.mark.e2e

DELIVERY = {
    "type": "delivery",
    "address": {"recipient": "李雷", "phone": "13900139002", "city": "上海", "detail": "静安区5号"},
}
RULES = {"rates_bp": {"dealer": 500, "store": 800, "guide": 300}}


def aws(stack, service: str):  # type: ignore[no-untyped-def]
    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=stack.moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def event_body(stack, order_id: str, event_type: str) -> str:
    """The message the relay forwards for the order's event, read from the table's stream as the
    relay reads it: an outbox Event item's body, or the event derived from the order's own change
    (docs/events.md). A redelivered record derives the same message, so there is one."""
    arn = aws(stack, "dynamodb").describe_table(TableName=stack.table_name)["Table"]["LatestStreamArn"]
    bodies = {
        event.body
        for record in stream_records(aws(stack, "dynamodbstreams"), arn)
        for event in decode(record).forwarded
        if event.event_type == event_type and json.loads(event.body)["aggregate_id"] == order_id
    }
    if not bodies:
        raise AssertionError(f"no {event_type} announced for {order_id}")
    [body] = bodies
    return body


def queue_empty(sqs, url: str) -> bool:  # type: ignore[no-untyped-def]
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return all(attributes[n] == "0" for n in names)


def ledger(api, token: str) -> dict:
    response = api.get("/me/commissions", token=token)
    assert response.status_code == 200, response.text
    return response.json()


def settle_period_now(api, finance: str) -> str:
    """A run for a period that ends at the next whole second (after what is settleable now)."""
    period_end_s = math.ceil(time.time())
    eventually(lambda: time.time() >= period_end_s, every_s=0.1)
    period_end = iso(period_end_s * 1000)
    first = api.post("/finance/settlements", token=finance, json={"period_end": period_end})
    again = api.post("/finance/settlements", token=finance, json={"period_end": period_end})
    assert (first.status_code, again.status_code) == (202, 202), first.text
    assert again.json()["run_id"] == first.json()["run_id"]
    run_id = first.json()["run_id"]
    eventually(lambda: api.get(f"/finance/settlements/{run_id}", token=finance).json()["status"] == "DONE")
    return run_id


def reconciliation(api, finance: str, period_end: str) -> dict:
    response = api.get(f"/finance/reconciliation?period_end={period_end}", token=finance)
    assert response.status_code == 200, response.text
    return response.json()


def statement_rows(api, finance: str, run_id: str) -> dict[tuple[str, str], list[str]]:
    response = api.get(f"/finance/settlements/{run_id}/statement.csv", token=finance)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeffpayee_kind,payee_id,name,gross_fen,clawbacks_fen,net_fen")
    return {(r[0], r[1]): r for r in (line.split(",") for line in text.lstrip("\ufeff").splitlines()[1:])}


def test_a_bound_members_order_is_settled_at_exact_rates_once_and_a_later_refund_is_clawed_back(api, stack, tokens):
    secret = stack.environment["JWT_SECRET"]
    admin, finance = tokens["merchant_admin"], tokens["finance"]
    tag = uuid.uuid4().hex[:8].upper()
    guide_id, sku, sub = f"G-{tag}", f"CMS-{tag}", f"c-cms-{tag.lower()}"
    guide = issue_token(secret, guide_id, Role.GUIDE, "S001")
    customer = issue_token(secret, sub, Role.CUSTOMER)
    # Given a guide of S001 (dealer D001, seeded), the rules, and a product of 40 yuan
    assert api.put(f"/admin/guides/{guide_id}", token=admin, json={"name": "导购 韩梅梅", "store_id": "S001"}).ok
    assert api.put("/admin/commission-rules", token=admin, json=RULES).ok
    assert api.put(f"/admin/products/{sku}", token=admin, json={"name": "佣金测试茶", "price_fen": 4000}).ok
    assert api.put(f"/admin/stock/{sku}", token=admin, json={"location": "WH", "on_hand": 5}).ok
    # And a member bound to the guide from its QR scene
    bound = api.post(f"/guides/{guide_id}/bind", token=customer)
    assert bound.status_code == 200 and (bound.json()["store_id"], bound.json()["dealer_id"]) == ("S001", "D001")

    # When the member orders two units for delivery (10 yuan freight) and pays
    order = api.post("/orders", token=customer, json={"lines": [{"sku": sku, "qty": 2}], "fulfilment": DELIVERY})
    assert order.status_code == 201, order.text
    order = order.json()
    assert (order["shipping_fen"], order["total_fen"]) == (1_000, 9_000)
    notice = {
        "order_id": order["order_id"],
        "transaction_id": f"wx-{tag}",
        "amount_fen": 9_000,
        "paid_at": "2026-11-23T02:00:00Z",
    }
    raw = json.dumps(notice).encode()
    before_paid = iso(int(time.time() * 1000) - 1)
    pay_secret = stack.environment["PAYMENT_WEBHOOK_SECRET"]
    paid = api.post("/payments/notify", data=raw, headers={"X-Pay-Signature": sign(pay_secret, raw, int(time.time()))})
    assert paid.json()["outcome"] == "paid"
    # Then the guide's ledger shows 3% of the 80 yuan paid for goods, pending
    eventually(lambda: ledger(api, guide)["summary"]["pending_fen"] == 240)

    # When SQS delivers the OrderPaid twice more
    sqs = aws(stack, "sqs")
    url = sqs.get_queue_url(QueueName="retail-local-CommissionQueue")["QueueUrl"]
    body = event_body(stack, order["order_id"], "OrderPaid")
    assert json.loads(body)["payload"]["credited"] == {"dealer_id": "D001", "store_id": "S001", "guide_id": guide_id}
    for _ in range(2):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    eventually(lambda: queue_empty(sqs, url))
    # Then each entry was written once
    mine = ledger(api, guide)
    assert mine["summary"]["pending_fen"] == 240 and len(mine["items"]) == 1

    # When the order is shipped and the member confirms receipt
    assert api.post(f"/orders/{order['order_id']}/ship", token=admin, json={"tracking_number": f"SF{tag}"}).ok
    assert api.post(f"/orders/{order['order_id']}/complete", token=customer).ok
    # Then it is frozen through the after-sale window, and settleable once it closed
    eventually(lambda: ledger(api, guide)["summary"]["settleable_fen"] == 240)

    # When finance settles the period (twice at once: one run)
    run_id = settle_period_now(api, finance)
    # Then the statement pays the guide, the store and the dealer their exact rates of 80 yuan
    rows = statement_rows(api, finance, run_id)
    assert rows[("guide", guide_id)][3:8] == ["240", "0", "240", "2.40", "1"]
    assert int(rows[("store", "S001")][5]) >= 640 and int(rows[("dealer", "D001")][5]) >= 400
    assert rows[("dealer", "D001")][2] == "华东经销商"
    entries = api.get(f"/finance/settlements/{run_id}/payees/dealer:D001.csv", token=finance).content.decode()
    assert f"{order['order_id']},P#{sku}#dealer,{sku},dealer,earning,400,4.00" in entries
    assert ledger(api, guide)["summary"] == {"pending_fen": 0, "frozen_fen": 0, "settleable_fen": 0, "settled_fen": 240}

    # When one of the two units is refunded after settlement
    asked = api.post(
        f"/orders/{order['order_id']}/refunds",
        token=customer,
        json={"lines": [{"sku": sku, "qty": 1}], "reason": "破损"},
    )
    assert asked.status_code == 201, asked.text
    decided = api.post(
        f"/admin/orders/{order['order_id']}/refunds/{asked.json()['refund_id']}/decision",
        token=admin,
        json={"approve": True},
    )
    assert decided.status_code == 200, decided.text
    # Then half of the guide's earning is clawed back, carried into the next statement
    eventually(lambda: ledger(api, guide)["summary"]["settleable_fen"] == -120)
    next_rows = statement_rows(api, finance, settle_period_now(api, finance))
    assert next_rows[("guide", guide_id)][3:8] == ["0", "120", "-120", "-1.20", "1"]
    assert ledger(api, guide)["summary"]["settled_fen"] == 120

    # And the books close: the reconciliation shows S001 and D001 with no difference, and the
    # order in them to the fen: 9,000 paid, 4,000 refunded, 1,280 - 640 kept by the payees
    def closed() -> tuple[dict, dict] | None:
        now, then = (
            reconciliation(api, finance, iso(int(time.time() * 1000))),
            reconciliation(api, finance, before_paid),
        )
        rows = {(kind, r[f"{kind}_id"]): r for kind in ("store", "dealer") for r in now[f"{kind}s"]}
        if any(rows[key]["difference_orders"] for key in (("store", "S001"), ("dealer", "D001"))):
            return None
        return rows[("store", "S001")], {r["store_id"]: r for r in then["stores"]}.get("S001", {})

    store, earlier = eventually(closed)
    grew = {k: store[k] - earlier.get(k, 0) for k in ("orders", "paid_fen", "refunded_fen", "commissions_fen")}
    assert grew == {"orders": 1, "paid_fen": 9_000, "refunded_fen": 4_000, "commissions_fen": 640}
    assert store["paid_fen"] - store["refunded_fen"] == store["merchant_net_fen"] + store["commissions_fen"]
