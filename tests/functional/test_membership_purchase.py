"""Buying a paid membership on moto, over the routes (docs/membership.md, "Buying a plan"):
`POST /memberships` places an ordinary order for the plan, paid through the normal notify; its
OrderPaid carries the plan's terms and the line's rebate, so the bound guide's ledger books the
rebate; the membership consumer activates it (the term, the paid member, checkout's MEMBER item,
the welcome pack) once; a refund is priced by the plan's policy and undoes it."""

from __future__ import annotations

import json

import pytest
from chalice.test import Client

from shared.data.items import PaidTermItem
from shared.data.stores import checkout_reads
from shared.data.stores.paid_membership import DynamoPaidTerms
from shared.kernel.clock import FakeClock, iso, now_ms
from shared.kernel.events import DomainEvent
from shared.membership import paid_activation
from shared.membership.paid_activation import PaidMembershipEvents
from shared.platform import bootstrap
from tests.conftest import bearer
from tests.functional.commission_support import (
    DELIVERY,
    call,
    drain,
    given_shop,
    my_ledger,
    ordered_and_paid,
    pay,
    refund_approved,
)
from tests.functional.coupons_support import coupons_of, create_template, get, post
from tests.functional.events_support import Queue, announced
from tests.functional.stock_support import given_product, given_stock

GOLD = {
    "tier": "金卡",
    "rank": 2,
    "price_fen": 19_900,
    "days": 365,
    "discount_bp": 500,
    "referral_rebate_fen": 2_000,
    "refund_full_within_days": 7,
    "version": 0,
}
LINE = {"sku": "MEMBERSHIP-gold", "qty": 1}


@pytest.fixture
def shop(client: Client, tokens: dict) -> Client:
    return given_shop(client, tokens)


def given_plan(shop: Client, tokens: dict, plan_id: str = "gold", **changes) -> None:
    answer = call(shop, "put", f"/admin/membership-plans/{plan_id}", tokens["merchant_admin"], {**GOLD, **changes})
    assert answer.status_code in (200, 201), answer.json_body


def buy(shop: Client, token: str, body: dict, key: str = "buy-1"):
    return post(shop, "/memberships", token, body, **{"Idempotency-Key": key})


def test_a_plan_is_bought_as_an_ordinary_order_and_refused_when_not_for_sale(shop: Client, tokens: dict):
    given_plan(shop, tokens)
    customer = tokens["customer"]
    answer = buy(shop, customer, {"plan_id": "gold", "store_id": "S001"})
    assert answer.status_code == 201, answer.json_body
    order = answer.json_body
    assert order["status"] == "PENDING_PAYMENT" and order["total_fen"] == 19_900 and order["shipping_fen"] == 0
    assert [(x["sku"], x["qty"], x["payable_fen"]) for x in order["lines"]] == [("MEMBERSHIP-gold", 1, 19_900)]
    again = buy(shop, customer, {"plan_id": "gold", "store_id": "S001"})
    assert again.status_code == 201 and again.json_body == order  # the key's first answer
    assert buy(shop, customer, {"plan_id": "gold"}).status_code == 422  # the key with another body
    assert shop.http.get(f"/orders/{order['order_id']}", headers=bearer(customer)).json_body["total_fen"] == 19_900
    assert buy(shop, customer, {"plan_id": "nope"}, key="k2").status_code == 404
    given_plan(shop, tokens, "old", active=False)
    assert buy(shop, customer, {"plan_id": "old"}, key="k3").status_code == 404
    assert buy(shop, customer, {"plan_id": "gold", "x": 1}, key="k4").status_code == 422
    assert buy(shop, customer, {"plan_id": 5}, key="k5").status_code == 422
    assert buy(shop, tokens["guide"], {"plan_id": "gold"}, key="k6").status_code == 403


def test_paid_it_credits_the_bound_guide_its_rebate(shop: Client, tokens: dict):
    given_plan(shop, tokens)
    customer = tokens["customer"]
    assert shop.http.post("/guides/G001/bind", headers=bearer(customer)).status_code == 200
    order = buy(shop, customer, {"plan_id": "gold", "store_id": "S001"}).json_body
    pay(shop, order)
    drain()
    ledger = my_ledger(shop, tokens["guide"])
    assert [(i["sku"], i["role"], i["amount_fen"]) for i in ledger["items"]] == [("MEMBERSHIP-gold", "guide", 2_000)]
    # the order completed when the membership began to run: after the after-sale window the rebate
    # is settleable like any commission
    assert ledger["summary"]["frozen_fen"] == 2_000
    assert bootstrap.commission_release(FakeClock(now_ms() + 7 * 86_400_000 + 1_000)).release_due() == 1
    assert my_ledger(shop, tokens["guide"])["summary"]["settleable_fen"] == 2_000


def quote_total(shop: Client, token: str) -> int:
    body = {"lines": [{"sku": "TEA-1", "qty": 1}], "fulfilment": DELIVERY}
    answer = call(shop, "post", "/checkout/quote", token, body)
    assert answer.status_code == 200, answer.json_body
    return answer.json_body["subtotal_fen"] - answer.json_body["discount_fen"]


def paid_event(order_id: str) -> dict:
    return next(e for e in announced() if e["aggregate_id"] == order_id and e["type"] == "OrderPaid")


def test_paid_it_activates_once_the_member_discount_and_the_welcome_pack(shop: Client, tokens: dict, table: dict):
    welcome = [create_template(shop, tokens, total=10, per_user_limit=1) for _ in range(2)]
    given_plan(shop, tokens, welcome_coupon_template_ids=welcome)
    customer = tokens["customer"]
    assert quote_total(shop, customer) == 4_000  # before: no member discount
    order = buy(shop, customer, {"plan_id": "gold", "store_id": "S001"}).json_body
    pay(shop, order)
    drain()
    # the next quote takes the plan's 5% off
    assert quote_total(shop, customer) == 3_800
    state = DynamoPaidTerms().read("c-1")
    (term,) = state.terms
    assert term.order_id == order["order_id"] and term.term.kind.value == "new" and term.paid_fen == 19_900
    assert term.term.store_id == "S001" and term.term.end_ms - term.term.start_ms == 365 * 86_400_000
    assert state.member is not None and state.member.tier == "金卡" and state.member.until_ms == term.term.end_ms
    wallet = get(shop, "/me/coupons", customer).json_body["items"]
    assert sorted(c["template_id"] for c in wallet) == sorted(welcome)
    me = get(shop, "/me/member", customer).json_body
    assert me["paid_membership"] == {"tier": "金卡", "rank": 2, "member_price": True, "discount_bp": 500}
    assert me["paid_membership_ends_at"] == iso(term.term.end_ms)
    # OrderPaid delivered again: nothing more (no second term, no more coupons)
    Queue.of(table, "MembershipQueue").send(json.dumps(paid_event(order["order_id"])))
    drain()
    again = DynamoPaidTerms().read("c-1")
    assert again.terms == state.terms and again.member == state.member
    assert len(get(shop, "/me/coupons", customer).json_body["items"]) == 2
    assert all(len(coupons_of(t)) == 1 for t in welcome)
    # and past the consumer's mark (a crash between this write and the points' one): nothing more
    PaidMembershipEvents(DynamoPaidTerms(), bootstrap.coupons).on_paid(
        DomainEvent.from_message(paid_event(order["order_id"]))
    )
    assert DynamoPaidTerms().read("c-1") == again
    assert all(len(coupons_of(t)) == 1 for t in welcome)


def test_an_ordinary_order_activates_nothing(shop: Client, tokens: dict):
    ordered_and_paid(shop, tokens["customer"])
    state = DynamoPaidTerms().read("c-1")
    assert state.terms == () and state.member is None


def bought_and_paid(shop: Client, tokens: dict, welcome: list[str]) -> dict:
    given_plan(shop, tokens, welcome_coupon_template_ids=welcome)
    customer = tokens["customer"]
    assert shop.http.post("/guides/G001/bind", headers=bearer(customer)).status_code == 200
    order = buy(shop, customer, {"plan_id": "gold", "store_id": "S001"}).json_body
    pay(shop, order)
    drain()
    return order


def test_a_refund_in_the_window_gives_all_back_ends_the_membership_revokes_the_pack_claws_the_rebate(
    shop: Client, tokens: dict
):
    welcome = [create_template(shop, tokens, total=10, per_user_limit=1) for _ in range(2)]
    order = bought_and_paid(shop, tokens, welcome)
    customer = tokens["customer"]
    # the membership runs, so its order is complete and the rebate frozen for the after-sale window
    assert shop.http.get(f"/orders/{order['order_id']}", headers=bearer(customer)).json_body["status"] == "COMPLETED"
    assert my_ledger(shop, tokens["guide"])["summary"]["frozen_fen"] == 2_000
    asked = refund_approved(shop, customer, tokens["merchant_admin"], order["order_id"], [LINE])
    assert asked["amount_fen"] == 19_900  # in the window, no benefit used: all of it
    assert shop.http.get(f"/orders/{order['order_id']}", headers=bearer(customer)).json_body["status"] == "REFUNDED"
    state = DynamoPaidTerms().read("c-1")
    assert state.terms[0].status.value == "REFUNDED" and state.member.status.value == "EXPIRED"
    assert quote_total(shop, customer) == 4_000  # no member discount any more
    assert get(shop, "/me/member", customer).json_body["paid_membership"] is None
    assert {c["status"] for c in get(shop, "/me/coupons", customer).json_body["items"]} <= {"EXPIRED"}
    assert all(c.status == "EXPIRED" for t in welcome for c in coupons_of(t))
    summary = my_ledger(shop, tokens["guide"])["summary"]
    assert summary["pending_fen"] == summary["frozen_fen"] == 0  # the rebate clawed back
    # RefundIssued handled again past the consumer's mark: nothing changes
    issued = next(e for e in announced() if e["aggregate_id"] == order["order_id"] and e["type"] == "RefundIssued")
    PaidMembershipEvents(DynamoPaidTerms(), bootstrap.coupons).on_refund(DomainEvent.from_message(issued))
    assert DynamoPaidTerms().read("c-1") == state


def test_a_refund_after_a_benefit_was_used_is_pro_rata_of_the_unused_days(shop: Client, tokens: dict):
    order = bought_and_paid(shop, tokens, [])
    customer = tokens["customer"]
    ordered_and_paid(shop, customer, qty=1)  # an order at the member's discount: a benefit used
    asked = refund_approved(shop, customer, tokens["merchant_admin"], order["order_id"], [LINE])
    assert asked["amount_fen"] == 19_900 * 364 // 365  # one day begun of 365
    refunded = shop.http.get(f"/orders/{order['order_id']}", headers=bearer(customer)).json_body
    assert refunded["refunded_fen"] == 19_900 * 364 // 365 and refunded["status"] == "REFUNDED"
    # the rebate back pro rata: 2,000 x 19,845 // 19,900 = 1,994 clawed back, 6 kept
    ledger = my_ledger(shop, tokens["guide"])
    rebate = 2_000 - 2_000 * (19_900 * 364 // 365) // 19_900
    membership = [i for i in ledger["items"] if i["sku"] == "MEMBERSHIP-gold"]
    assert sum(i["amount_fen"] for i in membership) == rebate, membership
    assert DynamoPaidTerms().read("c-1").member.status.value == "EXPIRED"


def test_a_discount_only_plan_gives_its_discount_and_not_the_member_prices(shop: Client, tokens: dict):
    admin, customer = tokens["merchant_admin"], tokens["customer"]
    given_product(shop, admin, "MP-1", 4_000, member_price_fen=3_000)
    given_stock(shop, admin, "MP-1", WH=5)
    given_plan(shop, tokens, member_price=False)
    order = buy(shop, customer, {"plan_id": "gold"}).json_body
    pay(shop, order)
    drain()
    body = {"lines": [{"sku": "MP-1", "qty": 1}], "fulfilment": DELIVERY}
    quote = call(shop, "post", "/checkout/quote", customer, body).json_body
    assert quote["total_fen"] - quote["shipping_fen"] == 3_800  # 5% off 4,000; with member prices 2,850


def test_an_upgrade_moves_the_lower_term_after_it_and_refunding_it_brings_the_lower_back(shop: Client, tokens: dict):
    customer, admin = tokens["customer"], tokens["merchant_admin"]
    given_plan(shop, tokens, "silver", tier="银卡", rank=1, price_fen=9_900, days=30, discount_bp=200)
    given_plan(shop, tokens, "gold", days=60)
    silver = buy(shop, customer, {"plan_id": "silver"}, key="s1").json_body
    pay(shop, silver)
    drain()
    gold = buy(shop, customer, {"plan_id": "gold"}, key="g1").json_body
    pay(shop, gold)
    drain()
    state = DynamoPaidTerms().read("c-1")
    low, high = state.term(silver["order_id"]), state.term(gold["order_id"])
    assert high.term.kind.value == "upgrade" and len(low.term.segments) == 2 and low.version == 2
    assert low.term.segments[1][0] == high.term.end_ms  # the silver days left follow the gold term
    assert state.member.tier == "金卡" and state.member.until_ms == low.term.end_ms
    item = PaidTermItem.get(*PaidTermItem.key("c-1", silver["order_id"]))
    assert item.gsi1sk == f"{iso(low.term.end_ms)}#{silver['order_id']}"  # its end moved in the index
    assert quote_total(shop, customer) == 3_800  # gold's 5%, not silver's 2%

    refund_approved(shop, customer, admin, gold["order_id"], [LINE])
    after = DynamoPaidTerms().read("c-1")
    assert after.term(gold["order_id"]).status.value == "REFUNDED"
    back = after.term(silver["order_id"])
    assert back.term.length_ms == 30 * 86_400_000 and after.member.tier == "银卡"
    assert after.member.until_ms == back.term.end_ms < low.term.end_ms
    assert quote_total(shop, customer) == 3_920  # silver's 2% again


def test_a_lower_plan_queued_after_a_higher_one_gives_its_own_benefits_when_its_term_runs(
    shop: Client, tokens: dict, monkeypatch: pytest.MonkeyPatch
):
    # gold (30 days, 5%) running, silver (30 days, 2%) bought as a renewal: days 30..60 are silver's
    customer = tokens["customer"]
    given_plan(shop, tokens, "silver", tier="银卡", rank=1, price_fen=9_900, days=30, discount_bp=200)
    given_plan(shop, tokens, "gold", days=30)
    for plan, key in (("gold", "g1"), ("silver", "s1")):
        order = buy(shop, customer, {"plan_id": plan}, key=key).json_body
        pay(shop, order)
        drain()
    state = DynamoPaidTerms().read("c-1")
    start = min(t.term.start_ms for t in state.terms)
    assert state.member.until_ms == start + 60 * 86_400_000
    assert quote_total(shop, customer) == 3_800  # gold's 5% now
    accounts = bootstrap.member_accounts  # GET /me/member's service, at the same moments
    for day, total, tier in ((10, 3_800, "金卡"), (45, 3_920, "银卡"), (61, 4_000, None)):
        clock = FakeClock(start + day * 86_400_000)
        monkeypatch.setattr(checkout_reads, "SYSTEM", clock)
        assert quote_total(shop, customer) == total, day
        paid = accounts(clock).me("c-1")["paid_membership"]
        assert (paid and paid["tier"]) == tier, (day, paid)


def refunded_for_another(
    shop: Client, tokens: dict, order_id: str, customer_id: str
) -> tuple[list, DomainEvent, DomainEvent]:
    """A membership bought, paid and refunded over the routes; its OrderPaid and RefundIssued given
    again as if for another order and customer they never reached, to hand to the consumer in any order."""
    welcome = [create_template(shop, tokens, total=10, per_user_limit=1)]
    order = bought_and_paid(shop, tokens, welcome)
    refund_approved(shop, tokens["customer"], tokens["merchant_admin"], order["order_id"], [LINE])
    issued = next(e for e in announced() if e["aggregate_id"] == order["order_id"] and e["type"] == "RefundIssued")

    def as_another(message: dict) -> DomainEvent:
        body = {**message["payload"], "order_id": order_id, "customer_id": customer_id}
        return DomainEvent.from_message({**message, "aggregate_id": order_id, "payload": body})

    return welcome, as_another(paid_event(order["order_id"])), as_another(issued)


def test_a_refund_heard_before_its_order_paid_leaves_nothing_for_the_late_order_paid(shop: Client, tokens: dict):
    # The MembershipQueue is a standard queue and a failed OrderPaid is retried (or redriven from
    # the DLQ) later: its RefundIssued can be handled first. The late OrderPaid must not activate
    # a membership (nor issue its welcome pack) the customer was refunded for.
    welcome, paid, issued = refunded_for_another(shop, tokens, "o-late", "c-late")
    events = PaidMembershipEvents(DynamoPaidTerms(), bootstrap.coupons)
    events.on_refund(issued)
    events.on_paid(paid)
    state = DynamoPaidTerms().read("c-late")
    assert state.member is None or state.member.status.value == "EXPIRED", state.member
    assert [t.status.value for t in state.terms] in ([], ["REFUNDED"])
    assert all(c.customer_id != "c-late" or c.status == "EXPIRED" for t in welcome for c in coupons_of(t))
    events.on_paid(paid)  # and again: still nothing
    assert DynamoPaidTerms().read("c-late") == state


def test_a_refund_heard_while_the_pack_is_issued_leaves_no_usable_welcome_coupon(
    shop: Client, tokens: dict, monkeypatch
):
    # The refund consumer runs between the activation's term write and its welcome-pack claims: it
    # revokes the coupons that exist then (none); the activation must revoke what it issues after.
    welcome, paid, issued = refunded_for_another(shop, tokens, "o-mid", "c-mid")
    events = PaidMembershipEvents(DynamoPaidTerms(), bootstrap.coupons)
    issuing = paid_activation.welcome_on_paid

    def refunded_meanwhile(payload, ports):
        events.on_refund(issued)
        return issuing(payload, ports)

    monkeypatch.setattr(paid_activation, "welcome_on_paid", refunded_meanwhile)
    events.on_paid(paid)
    state = DynamoPaidTerms().read("c-mid")
    assert [t.status.value for t in state.terms] == ["REFUNDED"]
    mine = [c for t in welcome for c in coupons_of(t) if c.customer_id == "c-mid"]
    assert mine and all(c.status == "EXPIRED" for c in mine), [c.status for c in mine]


def test_a_membership_line_refunded_for_0_fen_ends_the_term(shop: Client, tokens: dict):
    # a pro-rata refund of the last day rounds to 0 fen: the order is REFUNDED, so the term ends too
    welcome = [create_template(shop, tokens, total=10, per_user_limit=1)]
    order = bought_and_paid(shop, tokens, welcome)
    paid = paid_event(order["order_id"])
    lines = [{"sku": "MEMBERSHIP-gold", "qty": 1, "amount_fen": 0}]
    issued = {
        **paid,
        "type": "RefundIssued",
        "event_id": "refund-0-fen",
        "payload": {**paid["payload"], "refund_lines": lines},
    }
    PaidMembershipEvents(DynamoPaidTerms(), bootstrap.coupons).on_refund(DomainEvent.from_message(issued))
    state = DynamoPaidTerms().read("c-1")
    assert state.term(order["order_id"]).status.value == "REFUNDED"
    assert state.member.status.value == "EXPIRED"
    assert quote_total(shop, tokens["customer"]) == 4_000  # no member discount left
    assert all(c.status != "AVAILABLE" for t in welcome for c in coupons_of(t))  # the unused pack revoked
