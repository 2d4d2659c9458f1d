"""Events derived from an order's own change in the stream (issue 15): the order is the outbox.
Each transition announces its event once per (order, version), under an id a redelivered record
repeats; a change that is no transition announces nothing. Lambda-shaped records, fake queues."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

from shared.catalog.model import Product
from shared.data.stores.orders import image_of
from shared.data.stream import decode
from shared.kernel.clock import iso
from shared.kernel.events import EventType
from shared.messaging.relay import Relay
from shared.ordering import announcements
from shared.ordering.model import Action, Order
from shared.ordering.pricing import CartLine, PricingRules, price_cart
from tests.unit.test_relay import FakeOutbox, FakeQueues

NOW = 1_764_000_000_000
PRODUCTS = {"TEA-1": Product(sku="TEA-1", name="龙井", price_fen=10000)}
NOTIFY = {"NotificationsQueue": "https://sqs/notifications"}
ONLY_NOTIFY = {"NotificationsQueue": frozenset({EventType.ORDER_PLACED})}


def new_order(order_id: str = "o-1", flash_sale_id: str | None = None) -> Order:
    quote = price_cart(
        [CartLine("TEA-1", 2)], PRODUCTS, is_member=False, fulfilment_type="delivery", rules=PricingRules()
    )
    return Order.place(order_id, "c-1", quote, {"type": "delivery"}, "WH", NOW, 900, flash_sale_id=flash_sale_id)


def lambda_image(order: Order) -> dict[str, Any]:
    image = image_of(order)
    for value in image.values():  # Lambda's JSON gives binary values base64-encoded
        if "B" in value:
            value["B"] = base64.b64encode(value["B"]).decode()
    return image


def record(name: str, after: Order, before: Order | None = None, sequence: str = "100") -> dict[str, Any]:
    data: dict[str, Any] = {
        "Keys": {"pk": {"S": f"ORDER#{after.order_id}"}, "sk": {"S": "ORDER"}},
        "NewImage": lambda_image(after),
        "SequenceNumber": sequence,
        "ApproximateCreationDateTime": NOW / 1000,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if before is not None:
        data["OldImage"] = lambda_image(before)
    return {"eventID": f"e-{sequence}", "eventName": name, "eventSource": "aws:dynamodb", "dynamodb": data}


def test_a_new_order_announces_order_placed_with_the_outbox_payload():
    # Given a new order's INSERT (a flash order: its sale id is in the payload)
    order = new_order(flash_sale_id="fs-1")
    # When decoded
    [event] = decode(record("INSERT", order)).derived
    # Then it is OrderPlaced, id fixed by the order's key and version, with the placement's payload
    message = json.loads(event.body)
    assert event.event_type == "OrderPlaced"
    assert event.event_id == message["event_id"] == announcements.event_id("o-1", 1, EventType.ORDER_PLACED)
    assert message["aggregate_id"] == "o-1" and message["occurred_at"] == iso(NOW)
    assert message["payload"] == order.event_payload(expires_at=iso(order.expires_at_ms))
    assert message["payload"]["flash_sale_id"] == "fs-1" and message["payload"]["status"] == "PENDING_PAYMENT"


def test_payment_announces_order_paid_from_the_order_change():
    # Given the order's PENDING_PAYMENT -> PAID MODIFY
    order = new_order()
    paid = order.transition(
        Action.PAY,
        "payment",
        NOW + 5,
        transaction_id="t-1",
        paid_at_ms=NOW + 5,
        provider_paid_at="2026-11-23T00:00:00Z",
    )
    [event] = decode(record("MODIFY", paid, before=order)).derived
    # Then it is OrderPaid under the paid version's id, with the payload the payment announced
    message = json.loads(event.body)
    assert event.event_type == "OrderPaid" and event.event_id == announcements.event_id("o-1", 2, EventType.ORDER_PAID)
    assert message["occurred_at"] == iso(NOW + 5)
    assert message["payload"] == paid.event_payload(transaction_id="t-1", paid_at="2026-11-23T00:00:00Z")
    # And a later change of the paid order (a note) announces nothing
    noted = paid.note("admin", NOW + 9, "called the buyer")
    assert decode(record("MODIFY", noted, before=paid)).derived == ()
    # And the redelivered MODIFY the same event
    assert decode(record("MODIFY", paid, before=order)).derived == (event,)


def test_a_redelivered_record_announces_the_same_event():
    # Given the same INSERT delivered twice (Lambda retries a batch), and another order's
    first, again = decode(record("INSERT", new_order())), decode(record("INSERT", new_order(), sequence="100"))
    other = decode(record("INSERT", new_order("o-2")))
    # Then the copies are one event, byte for byte; the other order's is another
    assert first.derived == again.derived
    assert other.derived[0].event_id != first.derived[0].event_id


def test_a_change_that_is_not_a_transition_announces_nothing():
    order = new_order()
    # An attribute set without a status change (same version) and a note (version moves, status stays)
    untouched = replace(order, tracking_number="SF123")
    noted = order.note("c-1", NOW + 1, "address corrected")
    assert decode(record("MODIFY", untouched, before=order)).derived == ()
    assert decode(record("MODIFY", noted, before=order)).derived == ()
    # And an order's REMOVE neither
    removed = record("MODIFY", order, before=order)
    removed["eventName"], removed["dynamodb"]["OldImage"] = "REMOVE", removed["dynamodb"].pop("NewImage")
    assert decode(removed).derived == ()


def test_the_relay_forwards_a_derived_event_and_retries_from_its_record_when_refused():
    queues = FakeQueues()
    relay = Relay(NOTIFY, decode, queues.send, FakeOutbox().emit_once, ONLY_NOTIFY)
    placed = record("INSERT", new_order(), sequence="7")
    # When relayed: the notifications queue gets the OrderPlaced, labelled with its type and id
    assert relay.relay([placed]) == {"batchItemFailures": []}
    [message] = queues.sent[NOTIFY["NotificationsQueue"]]
    event_id = announcements.event_id("o-1", 1, EventType.ORDER_PLACED)
    assert message.attributes == {"event_type": "OrderPlaced", "event_id": event_id}
    # When SQS refuses it, the batch reports that record, so Lambda retries from it
    refusing = Relay(NOTIFY, decode, FakeQueues(refuse={event_id}).send, FakeOutbox().emit_once, ONLY_NOTIFY)
    assert refusing.relay([placed]) == {"batchItemFailures": [{"itemIdentifier": "7"}]}


def paid_order(fulfilment: str = "delivery") -> Order:
    order = replace(
        new_order(), fulfilment={"type": fulfilment, **({"store_id": "S001"} if fulfilment == "pickup" else {})}
    )
    return order.transition(Action.PAY, "payment", NOW + 5, transaction_id="t-1", paid_at_ms=NOW + 5)


def test_each_later_transition_announces_the_event_the_lifecycle_wrote_to_the_outbox():
    # Given each transition of the lifecycle, as it changes the order (issue 15: no outbox item)
    order, paid = new_order(), paid_order()
    cancelled = order.transition(Action.CANCEL, "c-1", NOW + 7, cancel_reason="customer")
    expired = order.transition(Action.EXPIRE, "expiry", NOW + 8, note="late", cancel_reason="expired")
    shipped = paid.transition(Action.SHIP, "staff", NOW + 9, tracking_number="SF123")
    delivered = shipped.transition(Action.COMPLETE, "c-1", NOW + 10)
    ready = paid_order("pickup").transition(Action.READY_FOR_PICKUP, "staff", NOW + 11, pickup_code="123456")
    picked_up = ready.transition(Action.HAND_OVER, "staff", NOW + 12)
    cases = [
        (order, cancelled, EventType.ORDER_CANCELLED, {}),
        (order, expired, EventType.ORDER_EXPIRED, {}),
        (paid, shipped, EventType.ORDER_FULFILLED, {"how": "shipped", "tracking_number": "SF123"}),
        (shipped, delivered, EventType.ORDER_COMPLETED, {"how": "delivered"}),
        (paid, ready, EventType.ORDER_FULFILLED, {"how": "ready_for_pickup", "pickup_code": "123456"}),
        (ready, picked_up, EventType.ORDER_COMPLETED, {"how": "picked_up"}),
    ]
    for before, after, event_type, extra in cases:
        # When its MODIFY is decoded
        [event] = decode(record("MODIFY", after, before=before)).derived
        # Then it is the transition's event, under the id of the order's key and new version, with the
        # payload and time the outbox item had; a redelivered record derives it byte for byte again
        message = json.loads(event.body)
        assert event.event_type == str(event_type)
        assert event.event_id == announcements.event_id("o-1", after.version, event_type)
        assert message["payload"] == after.event_payload(**extra)
        assert message["occurred_at"] == iso(after.history[-1].at_ms)
        assert decode(record("MODIFY", after, before=before, sequence="200")).derived == (event,)


def test_a_wrong_pickup_code_and_a_refund_announce_nothing_from_the_order():
    ready = paid_order("pickup").transition(Action.READY_FOR_PICKUP, "staff", NOW + 11, pickup_code="123456")
    counted = replace(ready, version=ready.version + 1, pickup_attempts=1)  # same status: no transition
    assert decode(record("MODIFY", counted, before=ready)).derived == ()
    paid = paid_order()
    refunded, _ = paid.refund({"TEA-1": 2}, "admin", NOW + 20, "r-1")  # REFUNDED: RefundIssued is the refund's
    assert decode(record("MODIFY", refunded, before=paid)).derived == ()


def test_a_paid_membership_order_activated_announces_order_completed_with_its_terms():
    # Given a membership order (its plan's terms on it), paid, then activated by the membership consumer
    paid = replace(new_order(), membership={"plan_id": "gold", "referral_rebate_fen": 100}).transition(
        Action.PAY, "payment", NOW + 5, paid_at_ms=NOW + 5
    )
    done = paid.transition(Action.ACTIVATE, "membership", NOW + 9)
    [event] = decode(record("MODIFY", done, before=paid)).derived
    # Then the PAID -> COMPLETED change is OrderCompleted, how=activated, with the terms in its payload
    message = json.loads(event.body)
    assert event.event_type == "OrderCompleted" and message["payload"]["how"] == "activated"
    assert message["payload"]["membership"]["plan_id"] == "gold" and message["occurred_at"] == iso(NOW + 9)
