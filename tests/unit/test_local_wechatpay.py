"""The local WeChat Pay (infra/local/wechatpay_server.py) holds our requests to WeChat Pay's rules and
retries a callback that was not answered 2xx, so the end-to-end tier can trust what it shows."""

from __future__ import annotations

import json
import threading

from infra.local.wechatpay_server import JSAPI, LocalWeChatPay
from shared.payments import wechatpay_crypto as crypto
from tests.fakes.payments import NOTIFY_URL, keys

BODY = {
    "appid": keys().appid,
    "mchid": keys().mchid,
    "description": "Order o1",
    "out_trade_no": "0123456789abcdef0123456789abcdef",
    "time_expire": "2026-11-23T16:15:00+08:00",
    "notify_url": NOTIFY_URL,
    "amount": {"total": 100, "currency": "CNY"},
    "payer": {"openid": "o1"},
}


def jsapi(wechatpay: LocalWeChatPay, body: dict, *, key=None, mchid=None, at=None):
    raw = json.dumps(body).encode()
    k = keys()
    stamp = int(at if at is not None else wechatpay.clock())
    auth = crypto.authorization(
        mchid or k.mchid, k.merchant_serial, key or k.merchant_key, "POST", JSAPI, raw, stamp, crypto.nonce_str()
    )
    return wechatpay.handle("POST", JSAPI, {"Authorization": auth}, raw)


def test_our_signature_is_checked_as_wechat_pay_checks_it():
    wechatpay = LocalWeChatPay(keys())
    assert jsapi(wechatpay, BODY).status == 200
    assert jsapi(wechatpay, BODY, key=keys().platform_key).json()["code"] == "SIGN_ERROR"
    assert jsapi(wechatpay, BODY, mchid="1900000000").status == 401
    assert jsapi(wechatpay, BODY, at=wechatpay.clock() - 301).status == 401
    assert wechatpay.handle("POST", JSAPI, {}, b"{}").status == 401


def test_the_same_parameters_get_the_same_prepay_and_others_are_refused():
    wechatpay = LocalWeChatPay(keys())
    first, again = jsapi(wechatpay, BODY), jsapi(wechatpay, BODY)
    assert first.json() == again.json()
    changed = jsapi(wechatpay, {**BODY, "amount": {"total": 99, "currency": "CNY"}})
    assert changed.status == 400 and changed.json()["code"] == "INVALID_REQUEST"
    assert jsapi(wechatpay, {**BODY, "out_trade_no": "x1"}).json()["code"] == "PARAM_ERROR"
    wechatpay.transactions[BODY["out_trade_no"]].trade_state = "SUCCESS"
    assert jsapi(wechatpay, BODY).json()["code"] == "ORDERPAID"


def test_a_refused_callback_is_retried_until_it_is_accepted():
    answers = iter([401, 500, 204])
    delivered = threading.Event()
    statuses: list[int] = []

    def post(url, headers, body):
        status = next(answers)
        statuses.append(status)
        if status == 204:
            delivered.set()
        return status

    wechatpay = LocalWeChatPay(keys(), post=post, retry_scale=0.001)
    jsapi(wechatpay, BODY)
    assert wechatpay.pay(BODY["out_trade_no"]) == [401]
    assert delivered.wait(10) and statuses == [401, 500, 204]
    wechatpay.stop()
