"""What a refund writes (issue 15): the refund item is the outbox and the idempotency record. The
relay derives RefundIssued from the refund's decision (REQUESTED -> ISSUED: the item keeps the order
part of the payload) and PaymentNeedsRefund from a flagged payment's INSERT, with the payload, key
for key and byte for byte, that the outbox item carried; a refund request's id is derived from its
Idempotency-Key and the refund carries the request's fingerprint, so a replay is answered the first
answer and another body is IDEMPOTENCY_KEY_REUSED. Items counted at the SDK (test_order_writes)."""

from __future__ import annotations

import json

import pytest

from bench._write_units import KB, item_size
from shared.data.stores.ordering_uow import unit_of_work
from shared.data.stream import decode
from shared.kernel.clock import iso
from shared.kernel.errors import IdempotencyKeyReused, RuleViolation
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.kernel.identity import Principal, Role
from shared.ordering import announcements
from shared.ordering.model import Order, refund_id_for
from shared.payments.hmac_webhook import PaymentNotice
from shared.platform import bootstrap
from tests.functional.events_support import announced, stream_records
from tests.functional.orders_support import given_catalogue, placement, stock_of
from tests.functional.orders_support import request as order_request
from tests.functional.test_order_writes import counting

CUSTOMER = Principal("c-1", Role.CUSTOMER)
ADMIN = Principal("admin-1", Role.MERCHANT_ADMIN)


@pytest.fixture
def paid_order(table):
    given_catalogue({("TEA-1", "WH"): 100, ("CUP-1", "WH"): 100})
    placed = bootstrap.ordering().place(placement({"TEA-1": 2, "CUP-1": 1}), "c-1", order_request("c-1", "k-o", {}))
    order_id = placed.body["order_id"]
    notice = PaymentNotice(order_id, "t-1", placed.body["total_fen"], "2026-11-23T00:00:00Z")
    assert bootstrap.order_lifecycle().apply_payment(notice).outcome == "paid"
    return order_id


def refund_request(order_id: str, key: str | None, lines: dict[str, int], reason: str = "broken") -> IdempotentRequest:
    body = {"lines": [{"sku": sku, "qty": qty} for sku, qty in lines.items()], "reason": reason}
    return IdempotentRequest.of(f"refunds:c-1:{order_id}", key, body)


def ask(order_id: str, key: str | None, lines: dict[str, int], reason: str = "broken"):
    request = refund_request(order_id, key, lines, reason)
    return bootstrap.order_refunds().request_refund(order_id, lines, reason, CUSTOMER, request)


def order_of(order_id: str) -> Order:
    found = bootstrap.orders().get(order_id)
    assert found is not None
    return found


def kinds(writes) -> list[str]:
    return sorted(pk.split("#")[0] for _, pk in writes.items)


def test_a_refund_request_writes_the_order_and_the_refund_and_its_approval_derives_refund_issued(paid_order):
    # When the customer asks for one tea back, with a key
    with counting() as asked_writes:
        asked = ask(paid_order, "k-r", {"TEA-1": 1})
    # Then the order (holding the unit) and the refund are written: no idempotency record
    assert asked.status == 201
    assert kinds(asked_writes) == ["ORDER", "ORDER"]  # the order item and the refund item beside it
    refund_id = asked.body["refund_id"]
    # When a merchant admin issues it with a restock
    with counting() as issued_writes:
        issued = bootstrap.order_refunds().decide_refund(paid_order, refund_id, True, True, ADMIN)
    # Then the order, the refund and the restocked line are written: no outbox Event item
    assert issued["status"] == "ISSUED" and issued["restock"] == "yes"
    assert kinds(issued_writes) == ["ORDER", "ORDER", "PRODUCT"]
    assert not any(pk.startswith("EVENT#") for _, pk in asked_writes.items + issued_writes.items)
    # And the stream announces RefundIssued once, the payload the outbox item carried byte for byte
    order = order_of(paid_order)
    [event] = [e for e in announced() if e["type"] == "RefundIssued"]
    expected = order.event_payload(
        refund_id=refund_id, amount_fen=issued["amount_fen"], refund_lines=issued["lines"], restocked=True
    )
    assert json.dumps(event["payload"], ensure_ascii=False) == json.dumps(expected, ensure_ascii=False)
    assert event["aggregate_id"] == paid_order and event["occurred_at"] == iso(order.history[-1].at_ms)
    assert event["event_id"] == announcements.refund_event_id(paid_order, refund_id)
    assert stock_of("TEA-1") == (99, 0, 99)  # 100 - 2 sold + 1 back on the shelf
    # And the refund item stays under 1 KB with the order part it carries (2 write units)
    [refund_item] = [
        record["dynamodb"]["NewImage"]
        for record in stream_records()
        if record["dynamodb"]["Keys"]["sk"]["S"] == f"REFUND#{refund_id}" and record["eventName"] == "MODIFY"
    ]
    assert item_size(refund_item) < KB


def test_a_redelivered_refund_record_derives_the_same_event_and_other_changes_none(paid_order):
    # Given one refund issued and one rejected
    first = ask(paid_order, "k-1", {"TEA-1": 1}).body["refund_id"]
    second = ask(paid_order, "k-2", {"CUP-1": 1}).body["refund_id"]
    bootstrap.order_refunds().decide_refund(paid_order, first, True, False, ADMIN)
    bootstrap.order_refunds().decide_refund(paid_order, second, False, False, ADMIN)
    # When the refunds' records are decoded twice (a redelivered batch)
    refunds = [r for r in stream_records() if r["dynamodb"]["Keys"]["sk"]["S"].startswith("REFUND#")]
    once = [e for r in refunds for e in decode(r).forwarded]
    again = [e for r in refunds for e in decode(r).forwarded]
    # Then only the issue announces, the same event both times (one id)
    assert once == again
    assert [(e.event_type, json.loads(e.body)["payload"]["refund_id"]) for e in once] == [("RefundIssued", first)]
    assert json.loads(once[0].body)["payload"]["restocked"] is False


def test_a_refund_replay_answers_the_first_answer_and_a_reused_key_is_refused(paid_order):
    # Given a refund asked for with a key, then issued
    asked = ask(paid_order, "k-r", {"TEA-1": 1})
    bootstrap.order_refunds().decide_refund(paid_order, asked.body["refund_id"], True, False, ADMIN)
    # When the same request comes again, it writes nothing and is answered the first answer
    with counting() as writes:
        again = ask(paid_order, "k-r", {"TEA-1": 1})
    assert again.replayed and (again.status, again.body) == (asked.status, asked.body)
    assert writes.items == []
    assert json.dumps(again.body) == json.dumps(asked.body)
    # And the key with another body is refused, nothing held
    with pytest.raises(IdempotencyKeyReused):
        ask(paid_order, "k-r", {"TEA-1": 1}, reason="changed my mind")
    assert order_of(paid_order).refund_requested_qty == {}
    # And a request without a key is a new refund each time, as before: the second asks for a cup
    # the first holds
    with counting() as unkeyed:
        one = ask(paid_order, None, {"CUP-1": 1})
    assert one.status == 201 and not one.replayed
    assert kinds(unkeyed) == ["ORDER", "ORDER"]  # it carries its server-made key: no record either
    with pytest.raises(RuleViolation):
        ask(paid_order, None, {"CUP-1": 1})


def test_a_payment_for_a_cancelled_order_derives_payment_needs_refund_from_its_record(paid_order, table):
    # Given an unpaid order, cancelled by its customer
    placed = bootstrap.ordering().place(placement({"TEA-1": 1}), "c-1", order_request("c-1", "k-x", {}))
    order_id = placed.body["order_id"]
    bootstrap.order_lifecycle().cancel(order_id, CUSTOMER)
    # When its payment arrives
    notice = PaymentNotice(order_id, "t-late", placed.body["total_fen"], "2026-11-23T00:00:00Z")
    with counting() as writes:
        assert bootstrap.order_lifecycle().apply_payment(notice).outcome == "needs_refund"
    # Then the order (noted) and the payment record are written: no outbox Event item
    assert kinds(writes) == ["ORDER", "PAYMENT"]
    # And the stream announces PaymentNeedsRefund with the payload the outbox item carried
    order = order_of(order_id)
    [event] = [e for e in announced() if e["type"] == "PaymentNeedsRefund"]
    expected = order.event_payload(transaction_id="t-late", amount_fen=notice.amount_fen, reason="order is CANCELLED")
    assert json.dumps(event["payload"], ensure_ascii=False) == json.dumps(expected, ensure_ascii=False)
    assert event["event_id"] == announcements.payment_event_id("t-late", order_id)
    assert event["occurred_at"] == iso(order.history[-1].at_ms)
    # When a payment names no order of ours, its event names only the id it gave
    stray = PaymentNotice("o-nowhere", "t-stray", 500, "2026-11-23T00:00:00Z")
    assert bootstrap.order_lifecycle().apply_payment(stray).outcome == "needs_refund"
    [lost] = [e for e in announced() if e["type"] == "PaymentNeedsRefund" and e["aggregate_id"] == "o-nowhere"]
    assert lost["payload"] == {
        "order_id": "o-nowhere",
        "transaction_id": "t-stray",
        "amount_fen": 500,
        "reason": "no such order",
    }
    # And a redelivered payment record derives the same event
    payments = [r for r in stream_records() if r["dynamodb"]["Keys"]["pk"]["S"].startswith("PAYMENT#")]
    assert [e for r in payments for e in decode(r).forwarded] == [e for r in payments for e in decode(r).forwarded]
    assert sum(1 for r in payments for _ in decode(r).forwarded) == 2  # the applied payment announces nothing


def test_a_replay_after_the_issue_changed_the_lines_and_a_concurrent_twin_get_the_first_answer(table):
    # Given a refund asked for under a key, issued with other amounts than asked (a gift's deduction)
    request = refund_request("o-1", "k-g", {"TEA-1": 1})
    refund_id = refund_id_for(request, None)
    asked = {
        "refund_id": refund_id,
        "order_id": "o-1",
        "customer_id": "c-1",
        "status": "REQUESTED",
        "lines": [{"sku": "TEA-1", "qty": 1, "amount_fen": 9000}],
        "amount_fen": 9000,
        "reason": "broken",
    }
    first = unit_of_work()
    first.add_refund(asked, 1_764_000_000_000, carrying=request)
    assert first.commit_once(request, StoredResponse(201, asked)).body == asked
    issued = {**asked, "lines": [{"sku": "TEA-1", "qty": 1, "amount_fen": 5667}], "amount_fen": 5667, "restock": "no"}
    decision = unit_of_work()
    announced = {"order_part": {"order_id": "o-1"}, "decided_at_ms": 1_764_000_000_001}
    decision.decide_refund({**issued, **announced, "asked_lines": asked["lines"]}, "ISSUED", False)
    decision.commit()
    # When the request is replayed, it is answered what it was answered first
    replayed = bootstrap.orders().replay_refund("o-1", refund_id, request)
    assert replayed is not None and replayed.replayed
    assert json.dumps(replayed.body) == json.dumps(asked)
    # And a twin whose look-up missed it (sent at the same time) is answered from the refused put
    twin = unit_of_work()
    twin.add_refund(asked, 1_764_000_000_002, carrying=request)
    answered = twin.commit_once(request, StoredResponse(201, asked))
    assert answered.replayed and json.dumps(answered.body) == json.dumps(asked)
    # And the refund listed keeps what was issued
    assert [r["amount_fen"] for r in bootstrap.orders().refunds_of("o-1")] == [5667]
