"""A line refunded by a policy's amount (a paid membership's, docs/membership.md "Refunds"):
`Order.refund_lines` / `Order.refund` take the amount the policy gives, capped by what the line
has left and never below 0, and the order is REFUNDED once its unit is refunded."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from shared.ordering.model import Order, PricedLine, Quote, Status

LINE = PricedLine("MEMBERSHIP-gold", 1, 19_900, 0, 19_900)
TERMS = {"plan_id": "gold", "days": 365, "referral_rebate_fen": 2_000}


def membership_order() -> Order:
    quote = Quote((LINE,), 19_900, 0, 0, 19_900, ())
    placed = Order.place("o1", "c1", quote, {"type": "delivery"}, "WH", 0, 900, membership=TERMS)
    return replace(placed, status=Status.PAID)


@given(st.integers(min_value=-50_000, max_value=50_000))
def test_the_policy_amount_is_capped_by_the_line_and_never_negative(fen):
    order = membership_order()
    after, lines = order.refund({LINE.sku: 1}, "admin", 1, "r1", {LINE.sku: fen})
    assert lines == [{"sku": LINE.sku, "qty": 1, "amount_fen": max(0, min(fen, 19_900))}]
    assert after.refunded_fen == max(0, min(fen, 19_900)) and after.status is Status.REFUNDED


def test_without_a_policy_the_line_is_refunded_by_its_unit_and_the_rebate_rides_on_the_line():
    order = membership_order()
    assert order.refund_lines({LINE.sku: 1})[1] == [{"sku": LINE.sku, "qty": 1, "amount_fen": 19_900}]
    assert order.event_payload()["lines"] == [{"sku": LINE.sku, "qty": 1, "payable_fen": 19_900, "rebate_fen": 2_000}]
    assert order.event_payload()["membership"] == TERMS and order.stocked_lines == ()
