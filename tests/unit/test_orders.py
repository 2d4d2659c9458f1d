"""The order state machine and refund arithmetic (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.kernel.errors import InvalidTransition, RuleViolation
from shared.ordering.model import TRANSITIONS, Action, Order, Status, next_status
from shared.ordering.pricing import Applied, PricedLine, Quote


def order_of(*lines: PricedLine) -> Order:
    total = sum(line.payable_fen for line in lines)
    quote = Quote(lines, total, 0, 0, total, (Applied("promotion", "p", 0),))
    return Order.place("o1", "alice", quote, {"type": "delivery"}, "WH", now=1_000, payment_window_s=60)


def test_every_status_pair_not_in_the_table_is_refused():
    for status in Status:
        for action in Action:
            if (status, action) in TRANSITIONS:
                assert next_status(status, action) is TRANSITIONS[(status, action)]
            else:
                with pytest.raises(InvalidTransition):
                    next_status(status, action)


def test_a_transition_bumps_the_version_and_records_history():
    order = order_of(PricedLine("A", 1, 100, 0, 100))
    paid = order.transition(Action.PAY, "payment", 2_000, transaction_id="t")
    assert (paid.status, paid.version, paid.transaction_id) == (Status.PAID, 2, "t")
    assert [h.action for h in paid.history] == ["place", "pay"]
    assert order.status is Status.PENDING_PAYMENT  # the original is unchanged


def test_due_only_while_pending_and_past_the_window():
    order = order_of(PricedLine("A", 1, 100, 0, 100))
    assert not order.is_due(60_999) and order.is_due(61_000)
    assert not order.transition(Action.CANCEL, "alice", 2_000).is_due(10**9)


@given(
    payable=st.integers(min_value=0, max_value=10**7),
    qty=st.integers(min_value=1, max_value=30),
    data=st.data(),
)
def test_refunding_a_line_in_any_parts_sums_to_what_it_paid(payable, qty, data):
    order = order_of(PricedLine("A", qty, 0, 0, payable)).transition(Action.PAY, "payment", 2_000)
    refunded = 0
    while order.refundable_qty("A"):
        part = data.draw(st.integers(min_value=1, max_value=order.refundable_qty("A")))
        after, lines = order.refund({"A": part}, "admin", 5_000, "r")
        refunded += lines[0]["amount_fen"]
        assert refunded <= payable
        order = after
    assert refunded == payable and order.refunded_fen == payable
    assert order.status is Status.REFUNDED


def test_refunding_more_than_is_left_is_refused():
    order = order_of(PricedLine("A", 2, 50, 0, 100)).transition(Action.PAY, "payment", 2_000)
    once, _ = order.refund({"A": 2}, "admin", 5_000, "r1")
    with pytest.raises(RuleViolation):
        once.refund({"A": 1}, "admin", 6_000, "r2")
    with pytest.raises(RuleViolation):
        order.refund({"B": 1}, "admin", 6_000, "r3")
