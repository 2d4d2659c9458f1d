"""Profit sharing on moto against the local WeChat Pay on HTTP (docs/payments.md, "Profit sharing"): a
bound member's order paid through WeChat Pay with profit sharing on waits for its after-sale window,
is shared once (the ledger's amounts, under the ratio, the rest unfrozen), confirmed by the job's query,
shown to finance; a full refund of it has the merchant receivers give their shares back first."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chalice.test import Client

from functions.payments.profit_sharing_routes import share_profits
from infra.local.runner import EventRunner, FakeContext, _scheduled_event
from infra.local.wechatpay_server import LocalWeChatPay
from shared.data.items.profit_sharing import ProfitShareItem
from shared.kernel.clock import FakeClock, now_ms
from shared.kernel.identity import Principal, Role
from shared.payments import profit_sharing_model as ps
from shared.platform import bootstrap
from tests.conftest import bearer
from tests.functional.commission_support import DELIVERY, call, drain, given_shop
from tests.functional.test_wechatpay_refunds import refund_approved
from tests.functional.test_wechatpay_routes import OPENID, local_wechatpay, order_of

ADMIN = Principal("admin", Role.MERCHANT_ADMIN)
ACCOUNTS = {
    "/admin/dealers/D001": {"name": "华东经销商", "payout_account": "wechatpay:merchant:1900000201"},
    "/admin/stores/S001": {
        "name": "上海静安店",
        "dealer_id": "D001",
        "payout_account": "wechatpay:merchant:1900000301",
    },
    "/admin/guides/G001": {"name": "王芳", "store_id": "S001", "payout_account": "wechatpay:openid:oGUIDE001"},
}


@pytest.fixture
def wechatpay(client: Client, tokens: dict, table, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalWeChatPay]:
    monkeypatch.setenv("COMMISSION_AFTER_SALE_WINDOW_S", "0")  # settleable as soon as completed
    monkeypatch.setenv("WECHATPAY_PROFIT_SHARING", "1")
    monkeypatch.setenv("WECHATPAY_TIMEOUT_S", "2")
    monkeypatch.setenv("WECHATPAY_REFUND_QUERY_AFTER_S", "1")  # the first check of a share too
    for local in local_wechatpay(client, monkeypatch, "public_key"):
        local.faults.refund_settle_s = None
        local.profit_sharing.faults.share_finish_s = None  # PROCESSING until the test finishes it
        given_shop(client, tokens)
        for path, body in ACCOUNTS.items():
            assert call(client, "put", path, tokens["merchant_admin"], body).status_code == 200
        yield local


def later(seconds: float) -> FakeClock:
    return FakeClock(now_ms() + int(seconds * 1000))


def share_item(order_id: str) -> ProfitShareItem:
    return ProfitShareItem.get(*ProfitShareItem.key(order_id, ps.out_order_no_of(order_id)), consistent_read=True)


def next_check_s(order_id: str, at_least_s: float) -> float:
    """Seconds from now to a pass that finds the share due: its next check backs off by as long as it
    has been open, which grows with how slowly the machine ran the test so far."""
    share = bootstrap.profit_sharing().share_of(order_id)
    assert share is not None and share.next_check_at_ms is not None
    return max(at_least_s, (share.next_check_at_ms - now_ms()) / 1000 + 1)


def paid_and_completed(client: Client, tokens: dict, wechatpay: LocalWeChatPay) -> dict:
    customer = tokens["customer"]
    client.http.post("/guides/G001/bind", headers=bearer(customer))
    placed = call(client, "post", "/orders", customer, {"lines": [{"sku": "TEA-1", "qty": 2}], "fulfilment": DELIVERY})
    assert placed.status_code == 201, placed.json_body
    order = placed.json_body
    prepay = call(client, "post", f"/orders/{order['order_id']}/payments", customer, {"openid": OPENID})
    assert prepay.status_code == 200, prepay.json_body
    assert wechatpay.transactions[order["order_id"][1:]].params["settle_info"] == {"profit_sharing": True}
    assert wechatpay.pay(order["order_id"][1:]) == [204]
    drain()
    assert share_item(order["order_id"]).status == ps.WAITING  # the callback started it
    shipped = call(
        client, "post", f"/orders/{order['order_id']}/ship", tokens["merchant_admin"], {"tracking_number": "SF1"}
    )
    assert shipped.status_code == 200
    bootstrap.order_lifecycle(FakeClock(now_ms() - 20_000)).complete(order["order_id"], ADMIN)
    drain()
    assert bootstrap.commission_release().release_due() == 3
    return order


def test_a_settled_order_is_shared_once_under_the_ratio_and_confirmed(client, tokens, wechatpay):
    order = paid_and_completed(client, tokens, wechatpay)
    oid = order["order_id"]
    # The scheduled job in its own clock (WeChat Pay takes requests up to 5 minutes off)
    first = bootstrap.profit_sharing(later(3)).settle_due()
    assert first == {"checked": 1, "finished": 0, "still_open": 1, "unavailable": 0}
    (kept,) = wechatpay.profit_sharing.shares.values()
    amounts = {r["account"]: r["amount"] for r in kept.params["receivers"]}
    assert amounts == {"1900000201": 400, "1900000301": 640, "oGUIDE001": 240}  # 5%, 8%, 3% of 80 yuan
    assert sum(amounts.values()) <= order["total_fen"] * 3000 // 10_000 and kept.params["unfreeze_unsplit"] is True
    assert {(r["type"], r["account"]) for r in wechatpay.profit_sharing.receivers.values()} == {
        ("MERCHANT_ID", "1900000201"),
        ("MERCHANT_ID", "1900000301"),
        ("PERSONAL_OPENID", "oGUIDE001"),
    }
    # Still PROCESSING at WeChat Pay: the next pass asks again (a query, no second share)
    assert bootstrap.profit_sharing(later(next_check_s(oid, 15))).settle_due()["still_open"] == 1
    wechatpay.profit_sharing.finish_shares()
    assert bootstrap.profit_sharing(later(next_check_s(oid, 60))).settle_due()["finished"] == 1
    assert share_profits(_scheduled_event("share_profits"), FakeContext())["checked"] == 0  # left the index
    assert bootstrap.profit_sharing(later(250)).settle_due()["checked"] == 0
    assert kept.requests == 1 and kept.unfrozen
    # Finance sees it; a customer does not
    seen = client.http.get(f"/finance/orders/{oid}/profit-sharing", headers=bearer(tokens["finance"]))
    assert seen.status_code == 200, seen.json_body
    assert seen.json_body["status"] == "FINISHED" and seen.json_body["shared_fen"] == 1280
    assert {r["result"] for r in seen.json_body["receivers"]} == {"SUCCESS"}
    assert (
        client.http.get(f"/finance/orders/{oid}/profit-sharing", headers=bearer(tokens["customer"])).status_code == 403
    )
    assert client.http.get("/finance/profit-sharing", headers=bearer(tokens["finance"])).status_code == 400
    listed = client.http.get("/finance/profit-sharing?status=needs_attention", headers=bearer(tokens["finance"]))
    assert listed.status_code == 200 and listed.json_body["items"] == []

    # A full refund: WeChat Pay refuses it until the merchant receivers' shares are back
    refunded = refund_approved(client, tokens, oid, 2)
    EventRunner(quiet=True).drain(timeout_s=90, quiet_s=3)
    returns = {r.params["return_mchid"]: r.params["amount"] for r in wechatpay.profit_sharing.returns.values()}
    assert returns == {"1900000201": 400, "1900000301": 640}  # a guide's share cannot be returned
    (refund,) = wechatpay.refunds.values()
    assert refund.out_refund_no == refunded["refund_id"] and refund.refund_fen == refunded["amount_fen"]
    wechatpay.settle_refunds()
    after = order_of(client, tokens, oid)
    assert after["refunded_fen"] == refunded["amount_fen"]
    # The books: what was paid = refunded + what the guide still holds + what the merchant keeps
    held = sum(amounts.values()) - sum(returns.values())
    assert held == 240
    trade = wechatpay.transactions[oid[1:]]
    assert wechatpay.profit_sharing.held_fen(trade) == held
    assert wechatpay.unshared_fen(trade) == order["total_fen"] - after["refunded_fen"] - held  # the merchant's
    shown = client.http.get(f"/finance/orders/{oid}/profit-sharing", headers=bearer(tokens["finance"])).json_body
    assert shown["returned_fen"] == 1040 and shown["shared_fen"] - shown["returned_fen"] == held


def test_an_order_that_credits_nobody_is_not_flagged_for_profit_sharing_nor_watched(client, tokens, wechatpay):
    # Given a customer bound to no guide: the order placed credits nobody (credited {})
    customer = tokens["customer2"]
    placed = call(client, "post", "/orders", customer, {"lines": [{"sku": "TEA-1", "qty": 1}], "fulfilment": DELIVERY})
    assert placed.status_code == 201, placed.json_body
    order_id = placed.json_body["order_id"]
    # When it is prepaid and paid through WeChat Pay with profit sharing on
    prepay = call(client, "post", f"/orders/{order_id}/payments", customer, {"openid": OPENID})
    assert prepay.status_code == 200, prepay.json_body
    # Then its transaction is not flagged (WeChat Pay does not freeze its money) and no share waits for it
    assert "settle_info" not in wechatpay.transactions[order_id[1:]].params
    assert wechatpay.pay(order_id[1:]) == [204]
    drain()
    assert client.http.get(f"/orders/{order_id}", headers=bearer(customer)).json_body["status"] == "PAID"
    assert bootstrap.profit_sharing().share_of(order_id) is None
