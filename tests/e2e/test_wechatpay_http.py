"""Issue 13 end to end: a stack with `--payment-provider wechatpay` (the local WeChat Pay beside `make dev`,
fresh keys), over HTTP. Place an order, get the prepay parameters (paySign verifies with the merchant
public key), let the local WeChat Pay pay it: paid once although the callback comes five times and once
six minutes old (refused, then accepted on WeChat Pay's retry); a callback signed with another key, with
its ciphertext altered or for 1 fen less changes nothing and is answered 4xx."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from infra.local.stack import free_port
from infra.local.wechatpay_server import WeChatPayKeys
from shared.payments import wechatpay_crypto as crypto
from tests.conftest import role_tokens
from tests.e2e.conftest import RunningStack, local_stack
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

    def pay(self, order_id: str, **options: object) -> list[int]:
        """Ask the local WeChat Pay to pay the order and call back, hostile as `options` say."""
        answer = requests.post(f"{self.url}/local/pay/{order_id}", json=options, timeout=120)
        answer.raise_for_status()
        return answer.json()["deliveries"]


@pytest.fixture(scope="module")
def wechatpay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeChatPayStack]:
    where = tmp_path_factory.mktemp("e2e-wechatpay")
    port = free_port()
    options = (
        "--payment-provider",
        "wechatpay",
        "--wechatpay-port",
        str(port),
        "--wechatpay-keys",
        str(where / "keys"),
    )
    with local_stack(where / "stack.log", *options) as running:
        yield WeChatPayStack(running, port, where / "keys")


@pytest.fixture(scope="module")
def api(wechatpay: WeChatPayStack) -> Iterator[HttpApi]:
    client = HttpApi(wechatpay.running.api_url)
    yield client
    client.session.close()


@pytest.fixture(scope="module")
def tokens(wechatpay: WeChatPayStack) -> dict[str, str]:
    return role_tokens(wechatpay.running.environment["JWT_SECRET"])


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


def test_the_hmac_webhook_stays_live_on_a_wechat_pay_stage(api, tokens):
    order = place_order(api, tokens)
    assert api.post(f"/dev/pay/{order['order_id']}").json()["outcome"] == "paid"
