"""Refunds and closes through WeChat Pay on moto (docs/payments.md, "Refunds" and "Closing"): the app
through chalice's test client, the events through the local runner (stream, relay, PaymentsQueue,
payments_consumer), the local WeChat Pay on HTTP in this process, its REFUND.* callbacks delivered to
the app. Finance's routes: the refunds that need a human, and marking a payment refunded by hand."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from infra.local.runner import EventRunner, FakeContext, _scheduled_event
from infra.local.wechatpay_server import LocalWeChatPay
from shared.data.items import PaymentItem, ProviderRefundItem
from shared.payments import hmac_webhook
from shared.payments.model import out_refund_no_of_payment
from tests.conftest import bearer
from tests.functional.commission_support import drain
from tests.functional.orders_support import given_catalogue
from tests.functional.test_wechatpay_routes import OPENID, local_wechatpay, order_of, place, post

ATTENTION = "/finance/provider-refunds?status=needs_attention"


@pytest.fixture
def wechatpay(client, table, monkeypatch) -> Iterator[LocalWeChatPay]:
    given_catalogue({("TEA-1", "WH"): 10})
    monkeypatch.setenv("WECHATPAY_TIMEOUT_S", "1")
    monkeypatch.setenv("WECHATPAY_REFUND_QUERY_AFTER_S", "1")
    for local in local_wechatpay(client, monkeypatch, "public_key"):
        local.faults.refund_settle_s = None  # settled when the test says, so callbacks come from this thread
        yield local


def paid_order(client, tokens, wechatpay: LocalWeChatPay, qty: int = 2) -> dict:
    order = place(client, tokens["customer"], qty=qty)
    assert (
        post(client, f"/orders/{order['order_id']}/payments", tokens["customer"], {"openid": OPENID}).status_code == 200
    )
    assert wechatpay.pay(order["order_id"][1:]) == [204]
    drain()
    return order


def refund_approved(client, tokens, order_id: str, qty: int) -> dict:
    asked = post(
        client,
        f"/orders/{order_id}/refunds",
        tokens["customer"],
        {"lines": [{"sku": "TEA-1", "qty": qty}], "reason": "x"},
    )
    assert asked.status_code == 201, asked.json_body
    decided = post(
        client,
        f"/admin/orders/{order_id}/refunds/{asked.json_body['refund_id']}/decision",
        tokens["merchant_admin"],
        {"approve": True, "restock": False},
    )
    assert decided.status_code == 200, decided.json_body
    return decided.json_body


def payout(order_id: str, number: str) -> ProviderRefundItem:
    return ProviderRefundItem.get(*ProviderRefundItem.key(order_id, number), consistent_read=True)


def test_a_partial_then_a_full_refund_reach_wechat_pay_once_each_even_after_a_timeout(client, tokens, wechatpay):
    # Given an order of two units paid through WeChat Pay
    order = paid_order(client, tokens, wechatpay)
    oid = order["order_id"]
    # When one unit is refunded and the events are consumed
    first = refund_approved(client, tokens, oid, 1)
    drain()
    # Then WeChat Pay holds one refund for it: the allocated amount out of the order's total, PROCESSING
    (refund,) = wechatpay.refunds.values()
    assert refund.out_refund_no == first["refund_id"] and refund.refund_fen == first["amount_fen"]
    assert refund.params["amount"]["total"] == order["total_fen"]
    assert order_of(client, tokens, oid)["refunds"][0]["payout_status"] == "PROCESSING"
    # When the rest is refunded but WeChat Pay's answer comes after our 1 s timeout (the refund is made)
    wechatpay.faults.refund_answer_delay_s, wechatpay.faults.times = 1.5, 1
    second = refund_approved(client, tokens, oid, 1)
    EventRunner(quiet=True).drain(timeout_s=60, quiet_s=3)  # past the failed message's backoff (1-2 s)
    # Then the consumer's retry asked again with the same number: two requests, one refund
    assert wechatpay.refunds[second["refund_id"]].requests == 2
    assert len(wechatpay.refunds) == 2
    assert sum(r.refund_fen for r in wechatpay.refunds.values()) == order["total_fen"]
    # When WeChat Pay settles both and notifies (twice: a repeat changes nothing)
    statuses = wechatpay.settle_refunds()
    assert statuses == {first["refund_id"]: [204], second["refund_id"]: [204]}
    again = wechatpay.refund_callback(wechatpay.refunds[first["refund_id"]])
    assert client.http.post("/payments/wechatpay/notify", headers=again[0], body=again[1]).status_code == 204
    # Then the order shows both refunds settled and every fen refunded
    after = order_of(client, tokens, oid)
    assert after["status"] == "REFUNDED" and after["refunded_fen"] == order["total_fen"]
    assert sorted(r["payout_status"] for r in after["refunds"]) == ["SUCCESS", "SUCCESS"]
    assert payout(oid, first["refund_id"]).version == 3  # PENDING, PROCESSING, SUCCESS: once each


def test_the_query_job_settles_a_refund_whose_notification_never_came(client, tokens, wechatpay):
    from functions.payments.refund_routes import settle_wechatpay_refunds

    order = paid_order(client, tokens, wechatpay)
    wechatpay.faults.hold_refund_notifications = True
    refunded = refund_approved(client, tokens, order["order_id"], 2)
    drain()
    wechatpay.settle_refunds()  # settled at WeChat Pay; no notification
    assert payout(order["order_id"], refunded["refund_id"]).status == "PROCESSING"
    time.sleep(1.1)  # WECHATPAY_REFUND_QUERY_AFTER_S
    scheduled = settle_wechatpay_refunds(_scheduled_event("settle_wechatpay_refunds"), FakeContext())
    assert scheduled == {"checked": 1, "settled": 1, "still_open": 0, "unavailable": 0}
    item = payout(order["order_id"], refunded["refund_id"])
    assert item.status == "SUCCESS" and item.gsi2pk is None  # out of the job's index
    assert order_of(client, tokens, order["order_id"])["refunds"][0]["payout_status"] == "SUCCESS"


def test_an_abnormal_refund_is_listed_for_finance(client, tokens, wechatpay):
    order = paid_order(client, tokens, wechatpay)
    wechatpay.faults.refund_outcome = "ABNORMAL"
    refunded = refund_approved(client, tokens, order["order_id"], 1)
    drain()
    wechatpay.settle_refunds()
    listed = client.http.get(ATTENTION, headers=bearer(tokens["finance"]))
    assert listed.status_code == 200
    (item,) = listed.json_body["items"]
    assert (item["out_refund_no"], item["status"], item["refund_fen"]) == (
        refunded["refund_id"],
        "ABNORMAL",
        refunded["amount_fen"],
    )
    assert client.http.get(ATTENTION, headers=bearer(tokens["merchant_admin"])).status_code == 200
    assert client.http.get(ATTENTION, headers=bearer(tokens["customer"])).status_code == 403
    assert client.http.get("/finance/provider-refunds", headers=bearer(tokens["finance"])).status_code == 400


def abnormal_refund(client, tokens, wechatpay) -> tuple[str, dict, str]:
    """A paid order's one-unit refund that WeChat Pay ended ABNORMAL: the order id, the refund, and the
    path finance applies for it again at."""
    oid = paid_order(client, tokens, wechatpay)["order_id"]
    wechatpay.faults.refund_outcome = "ABNORMAL"
    refunded = refund_approved(client, tokens, oid, 1)
    drain()
    wechatpay.settle_refunds()
    return oid, refunded, f"/finance/provider-refunds/{refunded['refund_id']}/apply-abnormal-refund"


def test_finance_has_an_abnormal_refund_paid_to_the_merchants_bank_card_once(client, tokens, wechatpay):
    oid, refunded, path = abnormal_refund(client, tokens, wechatpay)
    body = json.dumps({"order_id": oid})
    assert client.http.post(path, headers=bearer(tokens["customer"]), body=body).status_code == 403
    applied = client.http.post(path, headers=bearer(tokens["finance"]), body=body)
    assert applied.status_code == 200, applied.json_body
    assert applied.json_body["status"] == "PROCESSING"
    again = client.http.post(path, headers=bearer(tokens["finance"]), body=body)
    assert again.status_code == 409 and again.json_body["code"] == "INVALID_TRANSITION"
    assert client.http.get(ATTENTION, headers=bearer(tokens["finance"])).json_body["items"] == []
    (asked,) = [b for m, p, b in wechatpay.requests if p.endswith("/apply-abnormal-refund")]
    assert asked == {"out_refund_no": refunded["refund_id"], "type": "MERCHANT_BANK_CARD"}
    wechatpay.settle_refunds()  # paid to the merchant's card: REFUND.SUCCESS
    assert payout(oid, refunded["refund_id"]).status == "SUCCESS"
    assert order_of(client, tokens, oid)["refunds"][0]["payout_status"] == "SUCCESS"
    wrong = client.http.post(path, headers=bearer(tokens["finance"]), body=json.dumps({"order_id": "o" + "0" * 32}))
    assert wrong.status_code == 404


def test_a_late_wechat_pay_payment_is_refunded_whole_and_leaves_finances_list(client, tokens, wechatpay):
    # Given an order whose payment started, then cancelled: its transaction is closed at WeChat Pay
    order = place(client, tokens["customer"])
    oid = order["order_id"]
    post(client, f"/orders/{oid}/payments", tokens["customer"], {"openid": OPENID})
    post(client, f"/orders/{oid}/cancel", tokens["customer"])
    drain()
    assert wechatpay.transactions[oid[1:]].trade_state == "CLOSED"
    closed = wechatpay.handle("POST", f"/local/pay/{oid}", {}, b"{}")
    assert closed.status == 409  # it cannot be paid any more
    # When a payment got in before the close all the same (its callback is recorded for refund)
    wechatpay.transactions[oid[1:]].trade_state = "NOTPAY"
    assert wechatpay.pay(oid[1:]) == [204]
    (payment,) = [p for p in PaymentItem.scan() if p.order_id == oid]
    assert payment.status == "NEEDS_REFUND" and payment.provider == "wechatpay"
    drain()
    # Then all of it goes back under the payment's number, and once settled the payment is REFUNDED
    number = out_refund_no_of_payment(payment.transaction_id, oid)
    assert wechatpay.refunds[number].refund_fen == order["total_fen"]
    wechatpay.settle_refunds()
    settled = PaymentItem.get(*PaymentItem.key(payment.transaction_id), consistent_read=True)
    assert settled.status == "REFUNDED" and settled.gsi1pk is None
    listed = client.http.get("/finance/payments?status=needs_refund", headers=bearer(tokens["finance"]))
    assert [p["transaction_id"] for p in listed.json_body["items"]] == []


def test_finance_marks_an_hmac_payment_refunded_once(client, tokens, table):
    # Given an HMAC payment for no order of ours, recorded NEEDS_REFUND
    raw = json.dumps(
        {"order_id": "o-none", "transaction_id": "hmac-77", "amount_fen": 990, "paid_at": "2026-11-23T00:00:00Z"}
    ).encode()
    signature = hmac_webhook.sign("test-webhook-secret", raw, int(time.time()))
    assert (
        client.http.post("/payments/notify", headers={"X-Pay-Signature": signature}, body=raw).json_body["outcome"]
        == "needs_refund"
    )
    path = "/finance/payments/hmac-77/refunded"
    body = json.dumps({"order_id": "o-none", "note": "bank transfer 42"})
    # When finance marks it refunded
    marked = client.http.post(path, headers=bearer(tokens["finance"]), body=body)
    # Then it is REFUNDED by them, and gone from the list of payments to refund
    assert marked.status_code == 200, marked.json_body
    assert (marked.json_body["status"], marked.json_body["refunded_by"], marked.json_body["note"]) == (
        "REFUNDED",
        "fin",
        "bank transfer 42",
    )
    listed = client.http.get("/finance/payments?status=needs_refund", headers=bearer(tokens["finance"]))
    assert listed.json_body["items"] == []
    # And a second mark, another order, a customer, a bad body are refused
    assert client.http.post(path, headers=bearer(tokens["finance"]), body=body).status_code == 409
    other = json.dumps({"order_id": "o-other"})
    assert client.http.post(path, headers=bearer(tokens["finance"]), body=other).status_code == 404
    assert client.http.post(path, headers=bearer(tokens["customer"]), body=body).status_code == 403
    assert client.http.post(path, headers=bearer(tokens["finance"]), body=b'{"note": 1}').status_code == 422


def test_finance_has_an_abnormal_refund_paid_to_the_buyers_bank_card_never_logging_it(
    client, tokens, wechatpay, caplog
):
    oid, refunded, path = abnormal_refund(client, tokens, wechatpay)
    card = {"bank_type": "ICBC_DEBIT", "bank_account": "6222020200112233445", "real_name": " 张三 "}
    # A card without USER_BANK_CARD, USER_BANK_CARD without a card, a number in full-width digits: 422
    hostile = [
        {"order_id": oid, **card},
        {"order_id": oid, "type": "USER_BANK_CARD", "bank_type": "ICBC_DEBIT"},
        {"order_id": oid, "type": "USER_BANK_CARD", **card, "bank_account": "６２２２０２０２００１１"},
        {"order_id": oid, "type": "USER_BANK_CARD", **card, "real_name": "   "},
    ]
    for body in hostile:
        refused = client.http.post(path, headers=bearer(tokens["finance"]), body=json.dumps(body))
        assert refused.status_code == 422, (body, refused.json_body)
        assert "6222020200112233445" not in json.dumps(refused.json_body)
    assert wechatpay.cards_paid == {}
    applied = client.http.post(
        path, headers=bearer(tokens["finance"]), body=json.dumps({"order_id": oid, "type": "USER_BANK_CARD", **card})
    )
    assert applied.status_code == 200, applied.json_body
    assert applied.json_body["status"] == "PROCESSING"
    assert "6222020200112233445" not in json.dumps(applied.json_body)
    assert wechatpay.cards_paid[refunded["refund_id"]] == ("ICBC_DEBIT", "6222020200112233445", "张三")
    wechatpay.settle_refunds()
    assert payout(oid, refunded["refund_id"]).status == "SUCCESS"
    assert "6222020200112233445" not in str(payout(oid, refunded["refund_id"]).attribute_values)
    assert "6222020200112233445" not in caplog.text and "张三" not in caplog.text
