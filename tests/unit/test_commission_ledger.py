"""The commission ledger from order events (shared/commission/ledger.py, release.py), through the
consumer runtime on in-memory ports: exactly once, exact rates of the paid amount without freight,
frozen through the after-sale window, clawed back pro rata before and after settlement."""

from __future__ import annotations

import json

import pytest

from shared.commission.ledger import CommissionLedger
from shared.commission.ledger_model import EntryStatus
from shared.commission.release import CommissionRelease
from shared.commission.rules import CommissionRulesAdmin
from shared.commission.statements import my_commissions
from shared.kernel.clock import FakeClock, iso
from shared.kernel.credited import Credited
from shared.kernel.events import DomainEvent, EventType
from shared.messaging.consumers import RetryPolicy, Runtime, consume
from tests.events import load
from tests.fakes.commission import MemoryCatalogue, MemoryLedger, MemoryRules
from tests.fakes.messaging import MemoryMarks, MemoryQueue

WINDOW_MS = 7 * 86_400_000
CREDITED = Credited(dealer_id="D001", store_id="S001", guide_id="G001")
RATES = {"rates_bp": {"dealer": 500, "store": 800, "guide": 300}}


class Kit:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.marks = MemoryMarks()
        self.ledger = MemoryLedger(self.marks)
        self.rules = MemoryRules()
        self.credit_asked: list[str] = []
        self.consumer = CommissionLedger(
            self.ledger,
            self.rules,
            MemoryCatalogue({"TEA-001": "tea", "CUP-001": "cups"}),
            self._credit_for,
            WINDOW_MS,
        )
        self.runtime = Runtime(self.marks, MemoryQueue(), RetryPolicy(base_s=0, lease_s=60), self.clock.now_ms)

    def _credit_for(self, customer_id: str) -> Credited:
        self.credit_asked.append(customer_id)
        return CREDITED

    def set_rules(self, body: dict) -> dict:
        return CommissionRulesAdmin(self.rules, 3_000, self.clock).put(body)

    def deliver(self, *events: DomainEvent) -> dict:
        template = load("sqs_batch")["Records"][0]
        records = []
        for n, event in enumerate(events):
            record = json.loads(json.dumps(template))
            record.update(messageId=f"m-{n}", receiptHandle=f"r-{n}", body=json.dumps(event.to_message()))
            records.append(record)
        return consume({"Records": records}, self.consumer, self.runtime)

    def event(self, kind: EventType, order_id: str = "o-1", **payload: object) -> DomainEvent:
        body = {"order_id": order_id, "customer_id": "c-1", **payload}
        return DomainEvent(kind, order_id, body, occurred_at=iso(self.clock.now_ms()))

    def paid(
        self, order_id: str = "o-1", lines: list | None = None, credited: Credited | None = CREDITED
    ) -> DomainEvent:
        lines = lines or [
            {"sku": "TEA-001", "qty": 2, "payable_fen": 30_000},
            {"sku": "CUP-001", "qty": 1, "payable_fen": 9_999},
        ]
        extra = {"credited": credited.to_dict()} if credited is not None else {}
        # total_fen includes 1,000 fen of shipping: never on a line, never in the base
        return self.event(EventType.ORDER_PAID, order_id, lines=lines, total_fen=40_999, shipping_fen=1_000, **extra)

    def amounts(self, order_id: str = "o-1") -> dict[tuple[str, str], tuple[int, EntryStatus]]:
        return {(e.entry_id, e.payee_id): (e.amount_fen, e.status) for e in self.ledger.entries(order_id)}

    def totals(self, payee: str) -> dict:
        return my_commissions(self.ledger, payee, 50, None)[0]["summary"]


@pytest.fixture
def kit() -> Kit:
    k = Kit()
    k.set_rules(RATES)
    k.clock.advance(60)
    return k


def test_order_paid_delivered_three_times_writes_one_entry_per_payee_per_line_once(kit: Kit):
    paid = kit.paid()
    responses = [kit.deliver(paid) for _ in range(3)]
    assert responses == [{"batchItemFailures": []}] * 3
    # exact rates of each line's paid amount, rounded down, freight excluded
    assert kit.amounts() == {
        ("P#TEA-001#dealer", "D001"): (1_500, EntryStatus.PENDING),
        ("P#TEA-001#store", "S001"): (2_400, EntryStatus.PENDING),
        ("P#TEA-001#guide", "G001"): (900, EntryStatus.PENDING),
        ("P#CUP-001#dealer", "D001"): (499, EntryStatus.PENDING),
        ("P#CUP-001#store", "S001"): (799, EntryStatus.PENDING),
        ("P#CUP-001#guide", "G001"): (299, EntryStatus.PENDING),
    }
    assert kit.ledger.writes == 1
    assert kit.totals("dealer:D001")["pending_fen"] == 1_999


def test_the_same_event_in_one_batch_twice_is_written_once(kit: Kit):
    paid = kit.paid()
    assert kit.deliver(paid, paid)["batchItemFailures"] in ([], [{"itemIdentifier": "m-1"}])
    kit.deliver(paid)
    assert kit.ledger.writes == 1


def test_the_rules_in_force_when_the_order_was_paid_split_it(kit: Kit):
    paid = kit.paid()
    kit.clock.advance(5)
    kit.set_rules({"rates_bp": {"guide": 2_000}})  # saved after the payment, before the event is consumed
    kit.deliver(paid)
    assert {e.rules_version for e in kit.ledger.entries("o-1")} == {1}
    later = kit.paid("o-2")
    kit.deliver(later)
    assert {(e.entry_id, e.amount_fen) for e in kit.ledger.entries("o-2")} == {
        ("P#TEA-001#guide", 6_000),
        ("P#CUP-001#guide", 1_999),
    }


def test_an_override_for_a_category_applies_to_the_lines_of_that_category(kit: Kit):
    kit.set_rules({**RATES, "overrides": [{"category": "cups", "fixed_fen": {"guide": 50}}]})
    kit.deliver(kit.paid())
    assert kit.amounts()[("P#CUP-001#guide", "G001")] == (50, EntryStatus.PENDING)


def test_an_order_paid_without_credited_parties_is_credited_by_the_binding_at_payment(kit: Kit):
    kit.deliver(kit.paid(credited=None))
    assert kit.credit_asked == ["c-1"]
    assert len(kit.ledger.entries("o-1")) == 6


def test_completion_freezes_until_the_window_closes_then_the_entries_are_settleable(kit: Kit):
    kit.deliver(kit.paid())
    kit.clock.advance(3600)
    kit.deliver(kit.event(EventType.ORDER_COMPLETED))
    assert {s for _, s in kit.amounts().values()} == {EntryStatus.FROZEN}
    release = CommissionRelease(kit.ledger, kit.clock)
    kit.clock.advance(7 * 86400 - 1)
    assert release.release_due() == 0
    kit.clock.advance(1)
    assert release.release_due() == 6
    assert release.release_due() == 0  # moved once
    assert kit.totals("guide:G001") == {"pending_fen": 0, "frozen_fen": 0, "settleable_fen": 1_199, "settled_fen": 0}


def test_a_refund_before_completion_claws_back_pro_rata_and_freezes_with_the_earning(kit: Kit):
    kit.deliver(kit.paid())
    refund = kit.event(
        EventType.REFUND_ISSUED, refund_id="r-1", refund_lines=[{"sku": "TEA-001", "qty": 1, "amount_fen": 15_000}]
    )
    kit.deliver(refund)
    kit.deliver(refund)  # redelivered
    amounts = kit.amounts()
    assert amounts[("R#r-1#TEA-001#guide", "G001")] == (-450, EntryStatus.PENDING)
    assert amounts[("R#r-1#TEA-001#dealer", "D001")] == (-750, EntryStatus.PENDING)
    kit.deliver(kit.event(EventType.ORDER_COMPLETED))
    assert amounts.keys() == kit.amounts().keys()
    assert {s for _, s in kit.amounts().values()} == {EntryStatus.FROZEN}
    assert kit.totals("guide:G001")["frozen_fen"] == 900 + 299 - 450


def test_a_refund_after_settlement_is_a_negative_settleable_entry_and_the_balance_may_go_negative(kit: Kit):
    kit.deliver(kit.paid(lines=[{"sku": "TEA-001", "qty": 2, "payable_fen": 30_000}]))
    kit.deliver(kit.event(EventType.ORDER_COMPLETED))
    kit.clock.advance(7 * 86400)
    CommissionRelease(kit.ledger, kit.clock).release_due()
    for entry in kit.ledger.entries("o-1"):
        kit.ledger.settle(entry, "run-1")
    kit.clock.advance(60)
    kit.deliver(
        kit.event(
            EventType.REFUND_ISSUED, refund_id="r-9", refund_lines=[{"sku": "TEA-001", "qty": 1, "amount_fen": 15_000}]
        )
    )
    clawback = next(e for e in kit.ledger.entries("o-1") if e.entry_id == "R#r-9#TEA-001#guide")
    assert (clawback.amount_fen, clawback.status, clawback.due_at_ms) == (
        -450,
        EntryStatus.SETTLEABLE,
        kit.clock.now_ms(),
    )
    assert kit.totals("guide:G001") == {"pending_fen": 0, "frozen_fen": 0, "settleable_fen": -450, "settled_fen": 900}


def test_refunding_a_line_in_parts_takes_back_exactly_what_it_earned(kit: Kit):
    kit.deliver(kit.paid(lines=[{"sku": "TEA-001", "qty": 3, "payable_fen": 10_001}]))
    for n, amount in enumerate([3_333, 3_334, 3_334]):
        kit.deliver(
            kit.event(
                EventType.REFUND_ISSUED,
                refund_id=f"r-{n}",
                refund_lines=[{"sku": "TEA-001", "qty": 1, "amount_fen": amount}],
            )
        )
    for payee in ("dealer:D001", "store:S001", "guide:G001"):
        assert kit.totals(payee)["pending_fen"] == 0


def test_an_event_before_its_order_paid_is_retried_and_applied_once_it_arrives(kit: Kit):
    completed = kit.event(EventType.ORDER_COMPLETED)
    assert kit.deliver(completed)["batchItemFailures"] == [{"itemIdentifier": "m-0"}]
    kit.deliver(kit.paid())
    kit.deliver(completed)
    assert {s for _, s in kit.amounts().values()} == {EntryStatus.FROZEN}


def test_a_worker_whose_claim_was_taken_over_writes_nothing(kit: Kit):
    paid = kit.paid()
    # Given a worker that claimed the event and stalled past its lease, and another that took it
    kit.marks.claim("commission", paid.event_id, "stalled", kit.clock.now_ms() - 120_000, 60_000)
    kit.marks.claim("commission", paid.event_id, "live", kit.clock.now_ms(), 60_000)
    # When the stalled worker writes with its old claim
    from shared.commission.ports import ClaimLost
    from shared.messaging.ports import HeldClaim

    with pytest.raises(ClaimLost):
        kit.consumer.handle_claimed(paid, HeldClaim("commission", paid.event_id, "stalled", kit.clock.now_ms()))
    # Then nothing was written
    assert kit.ledger.entries("o-1") == [] and kit.ledger.book("o-1") is None


def test_rules_that_could_pass_the_cap_are_refused_and_versions_count_up(kit: Kit):
    from shared.kernel.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        kit.set_rules(
            {"rates_bp": {"dealer": 1_000, "store": 1_000}, "overrides": [{"sku": "X", "rates_bp": {"guide": 1_001}}]}
        )
    assert kit.set_rules({"rates_bp": {"guide": 100}})["version"] == 2
