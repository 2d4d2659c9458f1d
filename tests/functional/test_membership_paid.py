"""A paid membership's welcome pack, rebate and refund undo on moto (shared/membership/welcome.py,
paid_refunds.py, the commission ledger's rebate line): the welcome coupons are claimed through the
coupons' DynamoDB claim path once under redelivery and shown in `GET /me/coupons`; the bound guide's
rebate is one ledger entry written by the real queue and consumer; a refund revokes the unused coupons
(the template's tally counts them expired) and claws the rebate back."""

from __future__ import annotations

import json

import pytest
from chalice.test import Client

from shared.commission.ledger_model import EntryStatus
from shared.coupons.model import Action, Status
from shared.kernel.clock import iso, now_ms
from shared.kernel.events import DomainEvent, EventType
from shared.membership.paid_refunds import DAY_MS, refund_due, revoke_unused
from shared.membership.welcome import issue_welcome_pack, welcome_coupon_ids
from shared.platform import bootstrap
from tests.functional.commission_support import drain, given_shop, my_ledger
from tests.functional.coupons_support import coupons_of, create_template, customer_token, get
from tests.functional.events_support import Queue

PLAN_SKU = "MEMBERSHIP-gold"


@pytest.fixture
def shop(client: Client, tokens: dict) -> Client:
    return given_shop(client, tokens)


def membership_paid(order_id: str, customer: str, price_fen: int, rebate_fen: int) -> DomainEvent:
    line = {"sku": PLAN_SKU, "qty": 1, "payable_fen": price_fen, "rebate_fen": rebate_fen}
    body = {
        "order_id": order_id,
        "customer_id": customer,
        "lines": [line],
        "total_fen": price_fen,
        "credited": {"dealer_id": "D001", "store_id": "S001", "guide_id": "G001"},
    }
    return DomainEvent(EventType.ORDER_PAID, order_id, body, occurred_at=iso(now_ms()))


def membership_refunded(paid: DomainEvent, refund_id: str, amount_fen: int) -> DomainEvent:
    body = {
        **paid.payload,
        "refund_id": refund_id,
        "amount_fen": amount_fen,
        "refund_lines": [{"sku": PLAN_SKU, "amount_fen": amount_fen}],
    }
    return DomainEvent(EventType.REFUND_ISSUED, paid.aggregate_id, body, occurred_at=iso(now_ms()))


def test_welcome_pack_once_shown_in_the_wallet_and_a_refund_revokes_only_the_unused(shop: Client, tokens: dict):
    first = create_template(shop, tokens, total=5, per_user_limit=2)
    second = create_template(shop, tokens, total=5, per_user_limit=2)
    ports = bootstrap.coupons()
    pack = issue_welcome_pack("mo-1", "c-77", [first, second], ports)
    assert issue_welcome_pack("mo-1", "c-77", [first, second], ports) == pack  # activation redelivered
    assert len(pack.coupon_ids) == 2 and len(coupons_of(first)) == 1 and len(coupons_of(second)) == 1
    assert welcome_coupon_ids("mo-1", [first, second], ports) == list(pack.coupon_ids)
    wallet = get(shop, "/me/coupons", customer_token("c-77"))
    assert wallet.status_code == 200
    assert {c["coupon_id"] for c in wallet.json_body["items"]} == set(pack.coupon_ids)
    # The member uses the first one on an order
    used = ports.coupons.get(pack.coupon_ids[0])
    assert used is not None
    locked = used.moved(Action.LOCK, now_ms(), order_id="o-9")
    for before, after in ((used, locked), (locked, locked.moved(Action.USE, now_ms()))):
        uow = ports.unit_of_work()
        uow.move(before, after)
        uow.commit()
    # Then a refund revokes the second only, and the second template's tally counts it expired
    revoked = revoke_unused(pack.coupon_ids, ports)
    assert revoked.revoked == (pack.coupon_ids[1],) and revoked.kept == ((pack.coupon_ids[0], "USED"),)
    assert [c.status for c in coupons_of(second)] == [str(Status.EXPIRED)]
    template = ports.templates.get(second)
    assert template is not None
    tally = ports.templates.tally(template)
    assert tally.by_status.get(Status.EXPIRED) == 1 and tally.available == 0 and tally.reconciles
    assert revoke_unused(pack.coupon_ids, ports).revoked == ()


def test_the_bound_guide_earns_the_rebate_once_and_a_refund_in_the_window_claws_it_back(
    shop: Client, tokens: dict, table: dict
):
    queue = Queue.of(table, "CommissionQueue")
    paid = membership_paid("mo-2", "c-78", 9_900, 1_500)
    queue.send(json.dumps(paid.to_message()))
    queue.send(json.dumps(paid.to_message()))  # redelivered
    drain()
    ledger = bootstrap.commission_ledger_store()
    entries = ledger.entries("mo-2")
    assert [(e.role.value, e.payee_id, e.amount_fen, e.status) for e in entries] == [
        ("guide", "G001", 1_500, EntryStatus.PENDING)
    ]
    assert my_ledger(shop, tokens["guide"])["summary"]["pending_fen"] == 1_500
    # A refund within the window, nothing used: the whole price back, the whole rebate clawed back
    quote = refund_due(9_900, now_ms(), now_ms() + 30 * DAY_MS, now_ms() + DAY_MS, 7, False)
    assert quote.amount_fen == 9_900
    queue.send(json.dumps(membership_refunded(paid, "mr-1", quote.amount_fen).to_message()))
    drain()
    after = ledger.entries("mo-2")
    assert sorted(e.amount_fen for e in after) == [-1_500, 1_500]
    assert my_ledger(shop, tokens["guide"])["summary"]["pending_fen"] == 0
    # The books: paid - refunded = merchant net + commissions (net 0, commissions 0)
    assert 9_900 - quote.amount_fen == (9_900 - quote.amount_fen - sum(e.amount_fen for e in after)) + sum(
        e.amount_fen for e in after
    )
