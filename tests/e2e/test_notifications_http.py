"""Issue 5 end to end, over HTTP against the `make dev` stack: placing and paying an order produces
exactly one paid message per channel for the buyer, even when the payment notification and the
event are each delivered three times; people read only their own messages; the sink prints them.

The event's redelivery is simulated the way SQS would do it: the same message body sent twice
more to the notifications queue, beside the one the relay put there."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from shared.payments.hmac_webhook import sign
from shared.web.auth import Role, issue_token
from tests.e2e.http_api import eventually
from tests.e2e.test_commission_http import aws, event_body

pytestmark = pytest.mark.e2e

DELIVERY = {
    "type": "delivery",
    "address": {"recipient": "韩梅梅", "phone": "13900139001", "city": "上海", "detail": "徐汇区3号"},
}


@pytest.fixture
def buyer(stack) -> tuple[str, str]:
    """A customer of this test alone: (sub, token)."""
    sub = f"c-n-{uuid.uuid4().hex[:8]}"
    return sub, issue_token(stack.environment["JWT_SECRET"], sub, Role.CUSTOMER)


@pytest.fixture
def sku(api, tokens) -> str:
    name = f"NTF-{uuid.uuid4().hex[:8].upper()}"
    admin = tokens["merchant_admin"]
    assert api.put(f"/admin/products/{name}", token=admin, json={"name": "通知测试茶", "price_fen": 16800}).ok
    assert api.put(f"/admin/stock/{name}", token=admin, json={"location": "WH", "on_hand": 5}).ok
    return name


def paid_event_body(stack, order_id: str) -> str:
    """The OrderPaid message the relay forwarded for the order, exactly as it forwarded it."""
    return event_body(stack, order_id, "OrderPaid")


def paid_messages(api, token: str) -> list[dict]:
    return [m for m in api.pages("/me/notifications", token=token) if m["event"] == "OrderPaid"]


def test_paying_produces_one_paid_message_per_channel_despite_triple_delivery(api, stack, tokens, buyer, sku):
    sub, token = buyer
    # Given a buyer reachable on every channel who accepted the paid-message template
    contact = {"phone": "13800138000", "email": "buyer@example.com", "wechat_openid": f"o-{sub}", "locale": "zh"}
    assert api.put("/me/contact", token=token, json=contact).status_code == 200
    templates = {t["kind"]: t["wechat_template_id"] for t in api.get("/notification-templates").json()["templates"]}
    granted = api.post("/me/wechat-consents", token=token, json={"template_ids": [templates["OrderPaid"]]})
    assert granted.json() == {"granted": [templates["OrderPaid"]]}
    # When they order and the provider notifies the payment three times
    cart = {"lines": [{"sku": sku, "qty": 1}], "fulfilment": DELIVERY}
    order = api.post("/orders", token=token, json=cart).json()
    notice = {
        "order_id": order["order_id"],
        "transaction_id": f"wx-{sku}",
        "amount_fen": order["total_fen"],
        "paid_at": "2026-11-23T02:00:00Z",
    }
    raw = json.dumps(notice).encode()
    secret = stack.environment["PAYMENT_WEBHOOK_SECRET"]
    outcomes = [
        api.post("/payments/notify", data=raw, headers={"X-Pay-Signature": sign(secret, raw, int(time.time()))}).json()[
            "outcome"
        ]
        for _ in range(3)
    ]
    assert outcomes == ["paid", "duplicate", "duplicate"]
    # Then the event runner relays and consumes: one paid message per channel
    # (each message is written `pending` before its provider call, so wait until all three are past it)
    first = eventually(
        lambda: (m := paid_messages(api, token)) and len(m) == 3 and all(x["status"] != "pending" for x in m) and m
    )
    assert sorted((m["channel"], m["status"]) for m in first) == [
        ("email", "sent"),
        ("sms", "sent"),
        ("wechat", "sent"),
    ]
    # When SQS delivers the event twice more
    sqs = aws(stack, "sqs")
    queue_url = sqs.get_queue_url(QueueName="retail-local-NotificationsQueue")["QueueUrl"]
    body = paid_event_body(stack, order["order_id"])
    for _ in range(2):
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    # Then, once the queue is empty again, the buyer still has exactly one paid message per channel
    eventually(lambda: _queue_empty(sqs, queue_url))
    assert sorted((m["channel"], m["status"]) for m in paid_messages(api, token)) == [
        ("email", "sent"),
        ("sms", "sent"),
        ("wechat", "sent"),
    ]
    # And the consent grant was used once
    remaining = api.get("/me/wechat-consents", token=token).json()["remaining"]
    assert remaining == {templates["OrderPaid"]: 0}
    # And the admin sees the three for that event; make dev printed them from the sink
    event_id = json.loads(body)["event_id"]
    feed = api.get("/admin/notifications", token=tokens["merchant_admin"], params={"event": event_id}).json()
    assert {(m["recipient"], m["channel"]) for m in feed["items"]} == {(sub, "email"), (sub, "sms"), (sub, "wechat")}
    printed = stack.log.read_text(errors="replace")
    assert printed.count(f"-> {sub} (OrderPaid)") == 3


def test_a_customer_reads_only_their_own_messages_and_never_the_admin_feed(api, stack, tokens, buyer):
    sub, token = buyer
    assert api.get("/me/notifications", token=token).json() == {"items": [], "next_cursor": None}
    assert api.get("/admin/notifications", token=token).status_code == 403
    assert api.get("/admin/notifications", token=tokens["store_staff"]).status_code == 403
    assert api.get("/me/notifications").status_code == 401
    # An admin may look at anyone's; a customer passing ?recipient= on their own feed gets their own
    assert api.get("/admin/notifications", token=tokens["merchant_admin"], params={"recipient": sub}).ok
    own = api.get("/me/notifications", token=token, params={"recipient": "c-1"}).json()
    assert all(m["recipient"] == sub for m in own["items"])


def test_an_opted_out_channel_is_recorded_as_skipped(api, stack, buyer, sku):
    _, token = buyer
    api.put("/me/contact", token=token, json={"phone": "13800138001", "email": "b@example.com"})
    assert api.put("/me/notification-preferences", token=token, json={"channels": {"sms": False}}).json() == {
        "channels": {"wechat": True, "sms": False, "email": True}
    }
    cart = {"lines": [{"sku": sku, "qty": 1}], "fulfilment": DELIVERY}
    order = api.post("/orders", token=token, json=cart).json()
    assert api.post(f"/orders/{order['order_id']}/cancel", token=token).status_code == 200
    cancelled = eventually(
        lambda: (
            (m := [x for x in api.pages("/me/notifications", token=token) if x["event"] == "OrderCancelled"])
            and len(m) == 3
            and all(x["status"] != "pending" for x in m)  # written pending before the provider call
            and m
        )
    )
    by_channel = {m["channel"]: (m["status"], m["reason"]) for m in cancelled}
    assert by_channel == {
        "sms": ("skipped", "opted_out"),
        "wechat": ("skipped", "no_address"),  # no openid given
        "email": ("sent", None),
    }


def _queue_empty(sqs, url: str) -> bool:  # type: ignore[no-untyped-def]
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[n]) for n in names) == 0
