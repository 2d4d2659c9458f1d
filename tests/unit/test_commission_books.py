"""The books close through the ledger itself (hypothesis): random orders, rules and partial-refund
sequences, each event consumed (some twice) by the commission consumer on in-memory ports. For every
order and line: what the payees keep is within the cap of what stays paid, no clawback exceeds
what was earned on the line, a line refunded in full keeps nothing, and paid - refunded = merchant
net + commissions to the fen (the merchant's net being what no payee holds)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.commission.ledger import CommissionLedger
from shared.commission.rules import CommissionRulesAdmin
from shared.kernel.clock import FakeClock, iso
from shared.kernel.credited import Credited
from shared.kernel.errors import ValidationFailed
from shared.kernel.events import DomainEvent, EventType
from shared.kernel.money import unit_share
from shared.messaging.consumers import RetryPolicy, Runtime, consume
from tests.events import load
from tests.fakes.commission import MemoryCatalogue, MemoryLedger, MemoryRules
from tests.fakes.messaging import MemoryMarks, MemoryQueue

ROLES = ["dealer", "store", "guide", "distributor_1", "distributor_2"]
CREDITED = Credited(dealer_id="D1", store_id="S1", guide_id="G1", distributor_1_id="M1", distributor_2_id="M2")

shares = st.dictionaries(st.sampled_from(ROLES), st.integers(0, 600), max_size=5)  # 5 x 600 = the cap
fixed = st.dictionaries(st.sampled_from(ROLES), st.integers(0, 3_000), max_size=2)
lines = st.lists(
    st.tuples(st.integers(1, 6), st.integers(0, 2_000_000)), min_size=1, max_size=4
)  # (qty, payable_fen) per line
refunds = st.lists(st.tuples(st.integers(0, 3), st.integers(1, 3)), max_size=6)  # (line index, units)


def deliver(consumer: CommissionLedger, runtime: Runtime, event: DomainEvent, times: int) -> None:
    record = json.loads(json.dumps(load("sqs_batch")["Records"][0]))
    record.update(messageId="m", receiptHandle="r", body=json.dumps(event.to_message()))
    for _ in range(times):
        assert consume({"Records": [record]}, consumer, runtime) == {"batchItemFailures": []}


@settings(max_examples=150, deadline=None)
@given(shares, fixed, lines, refunds, st.integers(1, 2))
def test_the_books_close_for_every_order_after_any_partial_refunds(rates, per_unit, order, asked, times):
    clock = FakeClock()
    marks = MemoryMarks()
    ledger = MemoryLedger(marks)
    rules = MemoryRules()
    fixed_only = {r: f for r, f in per_unit.items() if r not in rates}
    try:
        CommissionRulesAdmin(rules, 3_000, clock).put({"rates_bp": rates, "fixed_fen": fixed_only})
    except ValidationFailed:
        return  # rules past the cap are refused when saved: nothing to split
    clock.advance(1)
    consumer = CommissionLedger(ledger, rules, MemoryCatalogue(), lambda _: CREDITED, 0)
    runtime = Runtime(marks, MemoryQueue(), RetryPolicy(base_s=0), clock.now_ms)
    skus = [f"SKU-{n}" for n in range(len(order))]
    payload_lines = [{"sku": s, "qty": q, "payable_fen": p} for s, (q, p) in zip(skus, order, strict=True)]
    paid = {"order_id": "o-1", "customer_id": "c-1", "lines": payload_lines, "credited": CREDITED.to_dict()}
    deliver(consumer, runtime, DomainEvent(EventType.ORDER_PAID, "o-1", paid, occurred_at=iso(clock.now_ms())), times)

    refunded_units = [0] * len(order)
    for n, (index, units) in enumerate(asked):
        index %= len(order)
        qty, payable = order[index]
        units = min(units, qty - refunded_units[index])
        if units == 0:
            continue
        amount = unit_share(payable, qty, refunded_units[index] + units) - unit_share(
            payable, qty, refunded_units[index]
        )
        refunded_units[index] += units
        body = {
            "order_id": "o-1",
            "refund_id": f"r-{n}",
            "refund_lines": [{"sku": skus[index], "qty": units, "amount_fen": amount}],
        }
        clock.advance(1)
        deliver(
            consumer, runtime, DomainEvent(EventType.REFUND_ISSUED, "o-1", body, occurred_at=iso(clock.now_ms())), times
        )

    entries = ledger.entries("o-1")
    for sku, (qty, payable), units in zip(skus, order, refunded_units, strict=True):
        on_line = [e for e in entries if e.sku == sku]
        earned = sum(e.amount_fen for e in on_line if not e.is_clawback)
        clawed = -sum(e.amount_fen for e in on_line if e.is_clawback)
        refunded = unit_share(payable, qty, units)
        kept_paid = payable - refunded
        kept = earned - clawed
        # no payee's entries on a line pass the cap; no clawback exceeds what was earned
        assert 0 <= earned <= payable * 3_000 // 10_000
        for role in {e.role for e in on_line}:
            role_earned = sum(e.amount_fen for e in on_line if e.role is role and not e.is_clawback)
            role_clawed = -sum(e.amount_fen for e in on_line if e.role is role and e.is_clawback)
            assert 0 <= role_clawed <= role_earned
        assert 0 <= kept <= kept_paid
        if units == qty:
            assert kept == 0  # a line refunded in full keeps nothing
        # the books close: what stays paid = the merchant's net + every commission kept
        merchant_net = kept_paid - kept
        assert kept_paid == merchant_net + kept and merchant_net >= 0
    # and the payees' running totals equal their entries, to the fen
    for payee in {e.payee for e in entries}:
        assert sum(ledger.totals(payee).values()) == sum(e.amount_fen for e in entries if e.payee == payee)
