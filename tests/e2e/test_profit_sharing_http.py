"""Issue 13, "Done means" (with commission built), over HTTP against the `make dev` stack, whose payment
provider is the local WeChat Pay with profit sharing on: a member bound to a guide of S001 orders, pays
through WeChat Pay (the prepay flagged for profit sharing), the order completes and its after-sale window
(5 s under the local stage) passes; the share job shares the order's commissions once (one profit-sharing
order at WeChat Pay, asked once, its receivers the ledger's amounts, within the 30% ratio, the merchant
receivers named as WeChat Pay requires, the rest unfrozen to the merchant), and a settlement run then pays
none of those entries again (its statement counts them apart, paid by profit sharing)."""

from __future__ import annotations

import uuid

import pytest
import requests

from shared.web.auth import Role, issue_token
from tests.e2e.http_api import HttpApi, eventually
from tests.e2e.test_commission_http import ledger, settle_period_now, statement_rows

pytestmark = pytest.mark.e2e

DELIVERY = {
    "type": "delivery",
    "address": {"recipient": "李雷", "phone": "13900139003", "city": "上海", "detail": "静安区6号"},
}
RULES = {"rates_bp": {"dealer": 500, "store": 800, "guide": 300}}
MAX_RATIO_BP = 3000  # WeChat Pay's default maximum, COMMISSION_CAP_BP of the local stage


def local_shares(stack, out_trade_no: str) -> list[dict]:
    """The local WeChat Pay's profit-sharing orders of one transaction."""
    answer = requests.get(f"{stack.wechatpay_url}/local/profit-sharing", timeout=10)
    answer.raise_for_status()
    return [s for s in answer.json()["shares"] if s["out_trade_no"] == out_trade_no]


def local_receivers(stack) -> dict[tuple[str, str], dict]:
    answer = requests.get(f"{stack.wechatpay_url}/local/profit-sharing", timeout=10)
    answer.raise_for_status()
    return {(r["type"], r["account"]): r for r in answer.json()["receivers"]}


def party(api: HttpApi, admin: str, kind: str, party_id: str) -> dict:
    """A dealer or a store as the admin lists it (the seed's, with its payout account)."""
    listed = api.get(f"/admin/{kind}s?limit=100", token=admin)
    assert listed.status_code == 200, listed.text
    (found,) = [p for p in listed.json()["items"] if p[f"{kind}_id"] == party_id]
    return found


def test_a_settled_order_is_shared_once_within_the_ratio_the_rest_unfrozen_and_not_paid_again(api, stack, tokens):
    secret = stack.environment["JWT_SECRET"]
    admin, finance = tokens["merchant_admin"], tokens["finance"]
    tag = uuid.uuid4().hex[:8].upper()
    guide_id, sku, sub, openid = f"G-{tag}", f"PS-{tag}", f"c-ps-{tag.lower()}", f"oGUIDE_{tag}"
    guide = issue_token(secret, guide_id, Role.GUIDE, "S001")
    customer = issue_token(secret, sub, Role.CUSTOMER)
    # Given a guide of S001 paid at its openid, the seeded dealer D001 and store S001 at their merchant ids
    body = {"name": "导购 李娜", "store_id": "S001", "payout_account": f"wechatpay:openid:{openid}"}
    assert api.put(f"/admin/guides/{guide_id}", token=admin, json=body).ok
    dealer, store = party(api, admin, "dealer", "D001"), party(api, admin, "store", "S001")
    dealer_mchid = dealer["payout_account"].removeprefix("wechatpay:merchant:")
    store_mchid = store["payout_account"].removeprefix("wechatpay:merchant:")
    assert dealer_mchid.isdigit() and store_mchid.isdigit()
    # And the rules, a product of 40 yuan, and a member bound to the guide
    assert api.put("/admin/commission-rules", token=admin, json=RULES).ok
    assert api.put(f"/admin/products/{sku}", token=admin, json={"name": "分账测试茶", "price_fen": 4000}).ok
    assert api.put(f"/admin/stock/{sku}", token=admin, json={"location": "WH", "on_hand": 5}).ok
    assert api.post(f"/guides/{guide_id}/bind", token=customer).status_code == 200

    # When the member orders two units for delivery (10 yuan freight) and pays through WeChat Pay
    placed = api.post("/orders", token=customer, json={"lines": [{"sku": sku, "qty": 2}], "fulfilment": DELIVERY})
    assert placed.status_code == 201, placed.text
    order = placed.json()
    order_id, total = order["order_id"], order["total_fen"]
    assert total == 9_000
    prepay = api.post(f"/orders/{order_id}/payments", token=customer, json={"openid": f"oBUYER_{tag}"})
    assert prepay.status_code == 200, prepay.text
    paid = requests.post(f"{stack.wechatpay_url}/local/pay/{order_id}", json={}, timeout=120)
    assert paid.status_code == 200 and paid.json()["deliveries"] == [204], paid.text
    eventually(lambda: api.get(f"/orders/{order_id}", token=customer).json()["status"] == "PAID")
    # And it is shipped and received; its after-sale window passes
    eventually(lambda: ledger(api, guide)["summary"]["pending_fen"] == 240)
    assert api.post(f"/orders/{order_id}/ship", token=admin, json={"tracking_number": f"SF{tag}"}).ok
    assert api.post(f"/orders/{order_id}/complete", token=customer).ok
    eventually(lambda: ledger(api, guide)["summary"]["settleable_fen"] == 240)

    # Then the share job shares it once at WeChat Pay, and confirms it FINISHED with the rest unfrozen
    def finished() -> dict | None:
        shown = api.get(f"/finance/orders/{order_id}/profit-sharing", token=finance)
        return shown.json() if shown.status_code == 200 and shown.json()["status"] == "FINISHED" else None

    share = eventually(finished)
    (made,) = local_shares(stack, order_id[1:])
    assert made["state"] == "FINISHED" and made["unfrozen"] and made["requests"] == 1
    amounts = {r["account"]: r["amount"] for r in made["receivers"]}
    # the ledger's amounts: 5%, 8% and 3% of the 80 yuan of goods (freight excluded)
    assert amounts == {dealer_mchid: 400, store_mchid: 640, openid: 240}
    assert sum(amounts.values()) <= total * MAX_RATIO_BP // 10_000
    assert {r["result"] for r in made["receivers"]} == {"SUCCESS"}
    assert share["shared_fen"] == 1_280 and share["unfrozen"] and not share["needs_attention"]
    # And the merchant receivers were added with their names, which WeChat Pay opened with its key
    receivers = local_receivers(stack)
    assert receivers[("MERCHANT_ID", dealer_mchid)]["decrypted_name"] == dealer["name"]
    assert receivers[("MERCHANT_ID", store_mchid)]["decrypted_name"] == store["name"]
    assert receivers[("MERCHANT_ID", dealer_mchid)]["name"] != dealer["name"]  # never in clear

    # When finance settles the period
    run_id = settle_period_now(api, finance)
    # Then the run pays none of those entries again: the guide's row has them apart, paid by profit sharing
    rows = statement_rows(api, finance, run_id)
    assert rows[("guide", guide_id)][3:8] == ["0", "0", "0", "0.00", "0"]
    assert rows[("guide", guide_id)][9:11] == ["1", "240"]
    entries = api.get(f"/finance/settlements/{run_id}/payees/dealer:D001.csv", token=finance).content.decode()
    mine = [line.split(",") for line in entries.splitlines() if line.startswith(order_id)]
    assert [(e[3], e[5], e[8]) for e in mine] == [("dealer", "400", "profit_sharing")]
    assert ledger(api, guide)["summary"] == {"pending_fen": 0, "frozen_fen": 0, "settleable_fen": 0, "settled_fen": 240}
    # And WeChat Pay still holds one share of the transaction, asked for once
    (again,) = local_shares(stack, order_id[1:])
    assert again["requests"] == 1
