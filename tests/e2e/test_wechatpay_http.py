"""Issue 13 end to end: the `make dev` stack (the local WeChat Pay, fresh keys, is its payment provider),
over HTTP. Place an order, get the prepay parameters (paySign verifies with the merchant
public key), let the local WeChat Pay pay it: paid once although the callback comes five times and once
six minutes old (refused, then accepted on WeChat Pay's retry); a callback signed with another key, with
its ciphertext altered or for 1 fen less changes nothing and is answered 4xx. Refunds: a full and a
partial refund reach the local WeChat Pay once each although each refund call times out and is retried,
the REFUND.SUCCESS notification settles them and the order shows the refunded amounts; a refund whose
notification never comes is settled by the query job; a cancelled order's transaction is closed."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
import requests

from infra.local.wechatpay_server import WeChatPayKeys
from shared.payments import wechatpay_crypto as crypto
from shared.payments.hmac_webhook import sign
from tests.e2e.conftest import RunningStack
from tests.e2e.http_api import HttpApi, eventually

DELIVERY = {
    "type": "delivery",
    "address": {"recipient": "韩梅梅", "phone": "13700137000", "city": "上海", "detail": "长宁区3号"},
}
OPENID = "oE2E_" + uuid.uuid4().hex[:20]


class WeChatPayStack:
    def __init__(self, running: RunningStack, wechatpay_port: int, keys_dir: Path) -> None:
        self.running = running
        self.url = f"http://127.0.0.1:{wechatpay_port}"
        self.keys_dir = keys_dir

    def keys(self) -> WeChatPayKeys:
        return WeChatPayKeys.read(self.keys_dir)  # written by the stack at start: fresh each time

    def faults(self, **options: object) -> None:
        requests.post(f"{self.url}/local/faults", json=options, timeout=10).raise_for_status()

    def refunds(self) -> dict[str, dict]:
        """The local WeChat Pay's refunds by out_refund_no, with how many requests each got."""
        answer = requests.get(f"{self.url}/local/refunds", timeout=10)
        answer.raise_for_status()
        return {refund["out_refund_no"]: refund for refund in answer.json()}

    def pay(self, order_id: str, **options: object) -> list[int]:
        """Ask the local WeChat Pay to pay the order and call back, hostile as `options` say."""
        answer = requests.post(f"{self.url}/local/pay/{order_id}", json=options, timeout=120)
        answer.raise_for_status()
        return answer.json()["deliveries"]


@pytest.fixture(scope="module")
def wechatpay(stack: RunningStack) -> WeChatPayStack:
    # `make dev` runs the local WeChat Pay as the stage's provider: the tier's stack is one already.
    return WeChatPayStack(stack, stack.wechatpay_port, stack.wechatpay_keys)


def place_order(api: HttpApi, tokens: dict[str, str]) -> dict:
    sku = f"WX-{uuid.uuid4().hex[:8].upper()}"
    admin = tokens["merchant_admin"]
    assert api.put(f"/admin/products/{sku}", token=admin, json={"name": "碧螺春", "price_fen": 5800}).status_code == 201
    assert api.put(f"/admin/stock/{sku}", token=admin, json={"location": "WH", "on_hand": 5}).status_code in (200, 201)
    placed = api.post(
        "/orders", token=tokens["customer"], json={"lines": [{"sku": sku, "qty": 2}], "fulfilment": DELIVERY}
    )
    assert placed.status_code == 201, placed.text
    return placed.json()


def order_of(api: HttpApi, tokens: dict[str, str], order_id: str) -> dict:
    return api.get(f"/orders/{order_id}", token=tokens["customer"]).json()


def test_prepay_then_paid_once_through_the_local_wechat_pay(api, tokens, wechatpay):
    # Given an order, and the prepay parameters for it (twice: the same ones)
    order = place_order(api, tokens)
    path = f"/orders/{order['order_id']}/payments"
    first = api.post(path, token=tokens["customer"], json={"openid": OPENID})
    again = api.post(path, token=tokens["customer"], json={"openid": OPENID})
    assert first.status_code == 200, first.text
    assert again.json() == first.json()
    # Then paySign verifies with the merchant public key over appId, timeStamp, nonceStr and package
    params, keys = first.json(), wechatpay.keys()
    signed = crypto.lines(keys.appid, params["timeStamp"], params["nonceStr"], params["package"])
    assert params["signType"] == "RSA" and crypto.verify(keys.merchant_key.public_key(), signed, params["paySign"])

    # When WeChat Pay's callback comes signed with another key, with its ciphertext altered, for 1 fen less
    hostile = [({"sign_with_other_key": True}, 401), ({"tamper_ciphertext": True}, 401), ({"amount_delta": -1}, 422)]
    for options, status in hostile:
        assert wechatpay.pay(order["order_id"], retry=False, **options) == [status], options
    # Then nothing changed
    untouched = order_of(api, tokens, order["order_id"])
    assert untouched["status"] == "PENDING_PAYMENT" and untouched["version"] == 1

    # When it comes six minutes old: refused, then WeChat Pay's retry (a fresh callback) is accepted
    assert wechatpay.pay(order["order_id"], timestamp_offset_s=-360) == [401]
    paid = eventually(lambda: (o := order_of(api, tokens, order["order_id"]))["status"] == "PAID" and o)
    # And five more callbacks of the same payment are each 204 and change nothing
    assert wechatpay.pay(order["order_id"], times=5) == [204] * 5
    after = order_of(api, tokens, order["order_id"])
    assert after["status"] == "PAID" and after["version"] == paid["version"]
    assert [entry["status"] for entry in after["history"]].count("PAID") == 1
    assert after["total_fen"] == order["total_fen"]
    # And a prepay for the paid order is refused
    assert api.post(path, token=tokens["customer"], json={"openid": OPENID}).status_code == 409


def test_the_hmac_webhook_stays_live_on_a_wechat_pay_stage(api, tokens, wechatpay):
    order = place_order(api, tokens)
    raw = json.dumps(
        {
            "order_id": order["order_id"],
            "transaction_id": f"hmac-{order['order_id']}",
            "amount_fen": order["total_fen"],
            "paid_at": "2026-12-02T08:00:00Z",
        }
    ).encode()
    secret = wechatpay.running.environment["PAYMENT_WEBHOOK_SECRET"]
    paid = api.post("/payments/notify", data=raw, headers={"X-Pay-Signature": sign(secret, raw, int(time.time()))})
    assert paid.status_code == 200, paid.text
    assert paid.json()["outcome"] == "paid"


def test_dev_pay_on_a_wechat_pay_stage_pays_through_the_local_wechat_pay(api, tokens, wechatpay):
    # Given an order nobody started paying, and one whose customer asked for the prepay
    fresh, started = place_order(api, tokens), place_order(api, tokens)
    assert api.post(f"/orders/{started['order_id']}/payments", token=tokens["customer"], json={"openid": OPENID}).ok
    for order in (fresh, started):
        # When /dev/pay is asked
        paid = api.post(f"/dev/pay/{order['order_id']}")
        # Then the local WeChat Pay paid it and its signed callback applied the payment, once
        assert paid.status_code == 200, paid.text
        assert paid.json() == {"order_id": order["order_id"], "status": "PAID", "outcome": "paid"}
        assert api.post(f"/dev/pay/{order['order_id']}").json()["outcome"] == "duplicate"
        after = order_of(api, tokens, order["order_id"])
        assert [entry["status"] for entry in after["history"]].count("PAID") == 1
    # And a refund goes back through WeChat Pay (the payment is WeChat Pay's, not a dev HMAC one)
    refund = refund_issued(api, tokens, order_of(api, tokens, fresh["order_id"]), 1)
    eventually(lambda: refund["refund_id"] in wechatpay.refunds(), timeout_s=60)


def paid_through_wechat_pay(api: HttpApi, tokens: dict[str, str], wechatpay: WeChatPayStack) -> dict:
    order = place_order(api, tokens)
    assert api.post(f"/orders/{order['order_id']}/payments", token=tokens["customer"], json={"openid": OPENID}).ok
    assert wechatpay.pay(order["order_id"]) == [204]
    eventually(lambda: order_of(api, tokens, order["order_id"])["status"] == "PAID")
    return order


def refund_issued(api: HttpApi, tokens: dict[str, str], order: dict, qty: int) -> dict:
    sku = order["lines"][0]["sku"]
    asked = api.post(
        f"/orders/{order['order_id']}/refunds",
        token=tokens["customer"],
        json={"lines": [{"sku": sku, "qty": qty}], "reason": "不想要了"},
    )
    assert asked.status_code == 201, asked.text
    path = f"/admin/orders/{order['order_id']}/refunds/{asked.json()['refund_id']}/decision"
    decided = api.post(path, token=tokens["merchant_admin"], json={"approve": True, "restock": True})
    assert decided.status_code == 200, decided.text
    return decided.json()


def settled(api: HttpApi, tokens: dict[str, str], order_id: str, refund_id: str) -> dict | None:
    order = order_of(api, tokens, order_id)
    mine = [r for r in order["refunds"] if r["refund_id"] == refund_id]
    return order if mine and mine[0].get("payout_status") == "SUCCESS" else None


def test_a_full_and_a_partial_refund_reach_wechat_pay_once_each_though_the_call_times_out(api, tokens, wechatpay):
    # Given two orders of two units paid through the local WeChat Pay
    partial_order, full_order = (paid_through_wechat_pay(api, tokens, wechatpay) for _ in range(2))
    # And the local WeChat Pay answers the next two refund requests after our 4 s timeout (making the
    # refund all the same), and settles refunds 20 s after they are made (after our retries)
    wechatpay.faults(refund_answer_delay_s=5, times=2, refund_settle_s=20)
    # When one unit of the first and both of the second are refunded
    partial = refund_issued(api, tokens, partial_order, 1)
    full = refund_issued(api, tokens, full_order, 2)
    # Then the REFUND.SUCCESS notifications settle both, and the orders show the refunded amounts
    half = eventually(lambda: settled(api, tokens, partial_order["order_id"], partial["refund_id"]), timeout_s=90)
    whole = eventually(lambda: settled(api, tokens, full_order["order_id"], full["refund_id"]), timeout_s=90)
    assert half["status"] == "PAID" and half["refunded_fen"] == partial["amount_fen"] == partial_order["total_fen"] // 2
    assert whole["status"] == "REFUNDED" and whole["refunded_fen"] == full_order["total_fen"]
    # And WeChat Pay made each refund once, for its amount, although each was asked for again
    refunds = wechatpay.refunds()
    for refund, order in ((partial, partial_order), (full, full_order)):
        made = refunds[refund["refund_id"]]
        assert made["refund_fen"] == refund["amount_fen"] and made["status"] == "SUCCESS"
        assert made["requests"] >= 2, made  # the timed-out request, then the retry with the same number
        assert [r["out_trade_no"] for r in refunds.values()].count(order["order_id"][1:]) == 1
    wechatpay.faults()  # back to prompt answers and settlements


def test_a_refund_whose_notification_never_comes_is_settled_by_the_query_job(api, tokens, wechatpay):
    order = paid_through_wechat_pay(api, tokens, wechatpay)
    wechatpay.faults(hold_refund_notifications=True)
    refund = refund_issued(api, tokens, order, 2)
    # WECHATPAY_REFUND_QUERY_AFTER_S is 5 s under make dev: the job asks and settles it
    after = eventually(lambda: settled(api, tokens, order["order_id"], refund["refund_id"]), timeout_s=60)
    assert after["status"] == "REFUNDED"
    assert wechatpay.refunds()[refund["refund_id"]]["deliveries"] == []  # no notification ever came
    wechatpay.faults()


def test_a_cancelled_orders_transaction_is_closed_and_cannot_be_paid(api, tokens, wechatpay):
    # Given an order whose payment was started, then cancelled
    order = place_order(api, tokens)
    assert api.post(f"/orders/{order['order_id']}/payments", token=tokens["customer"], json={"openid": OPENID}).ok
    assert api.post(f"/orders/{order['order_id']}/cancel", token=tokens["customer"]).status_code == 200
    # Then the payments consumer closes its transaction at WeChat Pay (asked as a merchant would)
    keys, path = (
        wechatpay.keys(),
        f"/v3/pay/transactions/out-trade-no/{order['order_id'][1:]}?mchid={wechatpay.keys().mchid}",
    )

    def trade_state() -> str:
        signed = crypto.authorization(
            keys.mchid, keys.merchant_serial, keys.merchant_key, "GET", path, b"", int(time.time()), crypto.nonce_str()
        )
        answer = requests.get(wechatpay.url + path, headers={"Authorization": signed}, timeout=10)
        return str(answer.json()["trade_state"])

    assert eventually(lambda: trade_state() == "CLOSED", timeout_s=30)
    # And the local WeChat Pay refuses to take the customer's money for it
    refused = requests.post(f"{wechatpay.url}/local/pay/{order['order_id']}", json={}, timeout=30)
    assert refused.status_code == 409
    assert order_of(api, tokens, order["order_id"])["status"] == "CANCELLED"
