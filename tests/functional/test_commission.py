"""The commission ledger on moto, end to end inside the process: a member bound to a guide orders
through the routes, pays, the order completes; the real stream, relay, queue and consumer write the
ledger; the release schedule and `GET /me/commissions` show it (chalice.test.Client, EventRunner)."""

from __future__ import annotations

import json

import pytest
from chalice.test import Client

from shared.commission.ledger_model import EntryStatus
from shared.kernel.clock import FakeClock, now_ms
from shared.platform import bootstrap
from shared.web.auth import Role, issue_token
from tests.conftest import TEST_ENV, bearer
from tests.functional.commission_support import (
    DAY_S,
    DELIVERY,
    RULES,
    call,
    drain,
    given_shop,
    my_ledger,
    ordered_and_paid,
    pay,
)
from tests.functional.events_support import Queue, announced


@pytest.fixture
def shop(client: Client, tokens: dict) -> Client:
    return given_shop(client, tokens)


def test_a_bound_members_paid_order_credits_exact_rates_of_the_paid_amount_without_freight_once(
    shop: Client, tokens: dict, table: dict
):
    # Given a member bound to G001 of S001 (dealer D001)
    customer = tokens["customer"]
    assert shop.http.post("/guides/G001/bind", headers=bearer(customer)).status_code == 200
    # When the member orders 2 x 40 yuan with delivery (10 yuan freight: under the free threshold) and pays
    order = ordered_and_paid(shop, customer)
    assert order["shipping_fen"] == 1_000 and order["total_fen"] == 9_000
    # Then the guide's ledger shows 3% of 80 yuan, pending; freight earns nothing
    ledger = my_ledger(shop, tokens["guide"])
    assert ledger["summary"] == {"pending_fen": 240, "frozen_fen": 0, "settleable_fen": 0, "settled_fen": 0}
    assert [(i["sku"], i["role"], i["amount_fen"], i["status"]) for i in ledger["items"]] == [
        ("TEA-1", "guide", 240, "PENDING")
    ]
    store = my_ledger(shop, issue_token(TEST_ENV["JWT_SECRET"], "staff-1", Role.STORE_STAFF, "S001"))
    assert store["summary"]["pending_fen"] == 640
    assert bootstrap.commission_ledger_store().totals("dealer:D001")[EntryStatus.PENDING] == 400
    # The dealer's own people read the dealer's ledger with a dealer token; another dealer's reads nothing
    dealer = my_ledger(shop, issue_token(TEST_ENV["JWT_SECRET"], "d-1", Role.DEALER, dealer_id="D001"))
    assert dealer["summary"]["pending_fen"] == 400
    assert {(i["role"], i["amount_fen"]) for i in dealer["items"]} == {("dealer", 400)}
    other = my_ledger(shop, issue_token(TEST_ENV["JWT_SECRET"], "d-2", Role.DEALER, dealer_id="D002"))
    assert other["summary"]["pending_fen"] == 0 and other["items"] == []
    # And the OrderPaid delivered twice more writes nothing more
    paid = next(e for e in announced() if e["aggregate_id"] == order["order_id"] and e["type"] == "OrderPaid")
    queue = Queue.of(table, "CommissionQueue")
    queue.send(json.dumps(paid))
    queue.send(json.dumps(paid))
    drain()
    assert my_ledger(shop, tokens["guide"])["summary"]["pending_fen"] == 240
    assert len(bootstrap.commission_ledger_store().entries(order["order_id"])) == 3


def test_completion_freezes_the_entries_for_the_window_then_they_are_settleable_and_a_refund_claws_back(
    shop: Client, tokens: dict
):
    customer, admin = tokens["customer"], tokens["merchant_admin"]
    shop.http.post("/guides/G001/bind", headers=bearer(customer))
    order = ordered_and_paid(shop, customer)
    order_id = order["order_id"]
    assert call(shop, "post", f"/orders/{order_id}/ship", admin, {"tracking_number": "SF123"}).status_code == 200
    assert call(shop, "post", f"/orders/{order_id}/complete", customer).status_code == 200
    drain()
    assert my_ledger(shop, tokens["guide"])["summary"]["frozen_fen"] == 240
    # The after-sale window (7 days by default) has not closed a day later; it has after 7
    release = bootstrap.commission_release(FakeClock(now_ms() + 1 * DAY_S * 1000))
    assert release.release_due() == 0
    assert bootstrap.commission_release(FakeClock(now_ms() + 7 * DAY_S * 1000 + 1000)).release_due() == 3
    assert my_ledger(shop, tokens["guide"])["summary"] == {
        "pending_fen": 0,
        "frozen_fen": 0,
        "settleable_fen": 240,
        "settled_fen": 0,
    }
    # When one of the two units is refunded after the window
    asked = call(
        shop, "post", f"/orders/{order_id}/refunds", customer, {"lines": [{"sku": "TEA-1", "qty": 1}], "reason": "破损"}
    )
    assert asked.status_code == 201, asked.json_body
    refund_id = asked.json_body["refund_id"]
    decided = call(shop, "post", f"/admin/orders/{order_id}/refunds/{refund_id}/decision", admin, {"approve": True})
    assert decided.status_code == 200, decided.json_body
    drain()
    # Then half the guide's earning is clawed back, settleable at once (the next statement)
    ledger = my_ledger(shop, tokens["guide"])
    assert ledger["summary"]["settleable_fen"] == 120
    assert {(i["kind"], i["amount_fen"], i["status"]) for i in ledger["items"]} == {
        ("earning", 240, "SETTLEABLE"),
        ("clawback", -120, "SETTLEABLE"),
    }


def test_a_rejected_refund_request_changes_nothing(shop: Client, tokens: dict):
    customer, admin = tokens["customer"], tokens["merchant_admin"]
    shop.http.post("/guides/G001/bind", headers=bearer(customer))
    order_id = ordered_and_paid(shop, customer)["order_id"]
    asked = call(
        shop,
        "post",
        f"/orders/{order_id}/refunds",
        customer,
        {"lines": [{"sku": "TEA-1", "qty": 2}], "reason": "不想要"},
    )
    refund_id = asked.json_body["refund_id"]
    drain()
    assert my_ledger(shop, tokens["guide"])["summary"]["pending_fen"] == 240  # a request alone takes nothing
    call(shop, "post", f"/admin/orders/{order_id}/refunds/{refund_id}/decision", admin, {"approve": False})
    drain()
    assert my_ledger(shop, tokens["guide"])["summary"]["pending_fen"] == 240


def test_rules_are_versioned_and_refused_past_the_cap(shop: Client, tokens: dict):
    admin = tokens["merchant_admin"]
    current = call(shop, "get", "/admin/commission-rules", admin).json_body
    assert (current["version"], current["rates_bp"], current["cap_bp"]) == (1, RULES["rates_bp"], 3_000)
    refused = call(shop, "put", "/admin/commission-rules", admin, {"rates_bp": {"dealer": 2_000, "store": 1_001}})
    assert (refused.status_code, refused.json_body["code"]) == (422, "VALIDATION_FAILED")
    saved = call(
        shop,
        "put",
        "/admin/commission-rules",
        admin,
        {"rates_bp": {"guide": 500}, "overrides": [{"guide_id": "G001", "fixed_fen": {"guide": 100}}]},
    )
    assert saved.status_code == 200 and saved.json_body["version"] == 2
    assert call(shop, "get", "/admin/commission-rules", tokens["finance"]).json_body["overrides"] == [
        {"guide_id": "G001", "fixed_fen": {"guide": 100}}
    ]
    assert call(shop, "put", "/admin/commission-rules", tokens["guide"], RULES).status_code == 403


def test_the_parties_credited_are_frozen_onto_the_order_when_it_is_placed(shop: Client, tokens: dict):
    # Given a member bound to G001 who places an order
    customer, admin = tokens["customer"], tokens["merchant_admin"]
    assert call(shop, "put", "/admin/guides/G002", admin, {"name": "李明", "store_id": "S001"}).status_code == 200
    shop.http.post("/guides/G001/bind", headers=bearer(customer))
    placed = call(shop, "post", "/orders", customer, {"lines": [{"sku": "TEA-1", "qty": 2}], "fulfilment": DELIVERY})
    assert placed.status_code == 201
    # When an admin moves the member to G002 before the order is paid
    assert call(shop, "put", "/admin/bindings/c-1", admin, {"guide_id": "G002", "reason": "调店"}).status_code == 200
    pay(shop, placed.json_body)
    drain()
    # Then the order still credits G001, who brought it
    entries = bootstrap.commission_ledger_store().entries(placed.json_body["order_id"])
    assert {e.payee_id for e in entries if e.role.value == "guide"} == {"G001"}
    body = next(
        e for e in announced() if e["aggregate_id"] == placed.json_body["order_id"] and e["type"] == "OrderPaid"
    )
    assert body["payload"]["credited"] == {"dealer_id": "D001", "store_id": "S001", "guide_id": "G001"}
