"""Twenty concurrent refund requests, each with its own Idempotency-Key, for the only unit of a
paid order, against the serialised local server (issue 10, finding 6): exactly one is accepted and
the rest are refused as they are when sent one after another, with and without injected faults."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from infra.local.faults import FaultInjector
from shared.data.items import RefundItem
from shared.kernel.errors import RuleViolation, TemporarilyUnavailable
from shared.kernel.idempotency import IdempotentRequest
from shared.kernel.identity import Principal, Role
from shared.payments.hmac_webhook import PaymentNotice
from shared.platform import bootstrap
from tests.functional.orders_support import given_catalogue, placement, request

pytestmark = pytest.mark.load

ALICE = Principal("alice", Role.CUSTOMER)
CLIENTS = 20


def paid_order_of_one_cup() -> str:
    given_catalogue({("CUP-1", "WH"): 5})
    stored = bootstrap.ordering().place(placement({"CUP-1": 1}), "alice", request("alice", None, {"CUP-1": 1}))
    order_id = stored.body["order_id"]
    total = stored.body["total_fen"]
    paid = bootstrap.order_lifecycle().apply_payment(
        PaymentNotice(order_id, f"t-{order_id}", total, "2026-11-23T00:00:00Z")
    )
    assert paid.outcome == "paid"
    return order_id


def race_for_the_unit(order_id: str, attempts: int = 10) -> list[str]:
    """Each client sends its request once and, on a retryable 503, again with the same key, as a
    storefront does, until it has a definite answer."""
    refunds = bootstrap.order_refunds()
    lines = {"CUP-1": 1}

    def ask(i: int) -> str:
        key = IdempotentRequest.of(f"refunds:alice:{order_id}", f"k-{i}", {"lines": lines, "reason": "x"})
        for _ in range(attempts):
            try:
                return str(refunds.request_refund(order_id, lines, "x", ALICE, key).status)
            except RuleViolation:
                return "422"
            except TemporarilyUnavailable:
                continue
        return "no answer"

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        return sorted(pool.map(ask, range(CLIENTS)))


def requested(order_id: str) -> list[RefundItem]:
    return [r for r in RefundItem.query(f"ORDER#{order_id}", RefundItem.sk.startswith("REFUND#"), consistent_read=True)]


def test_twenty_concurrent_requests_for_the_only_unit_accept_exactly_one(table):
    # Given a paid order of one cup
    order_id = paid_order_of_one_cup()
    # When 20 clients ask for it back at the same moment, each with its own key
    answers = race_for_the_unit(order_id)
    # Then one request is accepted, 19 are 422, and one refund of the full line exists
    assert answers == ["201"] + ["422"] * (CLIENTS - 1)
    found = requested(order_id)
    assert [(r.status, int(r.amount_fen)) for r in found] == [("REQUESTED", 3333)]
    assert bootstrap.orders().get(order_id).refund_requested_qty == {"CUP-1": 1}


def test_with_ten_percent_faults_exactly_one_is_accepted(table):
    # Given the same order, and throttling, conflicts and timeouts (sent or applied) on 10% of calls
    order_id = paid_order_of_one_cup()
    faults = FaultInjector(rate=0.1, seed=23)
    # When 20 clients race, retrying 503s with their key
    with faults.attached():
        answers = race_for_the_unit(order_id)
    # Then every client has a definite answer and still exactly one refund was requested
    assert faults.total > 0, faults.report()
    assert answers == ["201"] + ["422"] * (CLIENTS - 1)
    assert len(requested(order_id)) == 1
