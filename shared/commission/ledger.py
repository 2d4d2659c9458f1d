"""The commission ledger, written from the order events exactly once (docs/commission.md, "The ledger").

The consumer of OrderPaid, OrderCompleted and RefundIssued. Each event's effect is ONE ledger write
that also sets the consumer's mark DONE, conditional on the claim it holds (`ClaimingConsumer`):
a redelivered event finds the mark DONE and does nothing; a worker whose lease ran out cannot
write (ClaimLost); and should a mark ever be gone, the entries' own keys refuse a second write
(AlreadyRecorded, taken as done).

- OrderPaid: the order's book and one PENDING entry per payee per line, on the line's paid amount
  (after every discount; freight is never on a line), split by the rules in force at payment.
- OrderCompleted: the after-sale window starts; every PENDING entry is FROZEN until it closes.
- RefundIssued: a negative entry per payee per refunded line, pro rata (see ledger_model).
  A refund request that is rejected issues nothing, so it changes nothing here.
- OrderPaid and RefundIssued also announce CommissionRecorded in the same write: what the ledger
  booked, the ledger side of the reconciliation report (docs/commission.md, "Reports").

An event that arrives before the OrderPaid it follows (queues do not keep order) is retried later.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from shared.commission.ledger_model import Book, Entry, EntryStatus, PaidLine, book_paid_order, claw_back, complete_book
from shared.commission.ports import AlreadyRecorded, Catalogue, Ledger, LedgerChange, RulesStore
from shared.kernel.credited import Credited
from shared.kernel.events import DomainEvent, EventType
from shared.messaging.ports import HeldClaim
from shared.platform.observability import count, logger

CONSUMER_NAME = "commission"


class BookNotYetWritten(Exception):
    """The order's OrderPaid has not been consumed yet: retry this event later."""


def epoch_ms(when: str) -> int:
    return int(datetime.fromisoformat(when).timestamp() * 1000)


class CommissionLedger:
    name = CONSUMER_NAME

    def __init__(
        self,
        ledger: Ledger,
        rules: RulesStore,
        catalogue: Catalogue,
        credit_for: Callable[[str], Credited],
        after_sale_window_ms: int,
    ) -> None:
        self._ledger = ledger
        self._rules = rules
        self._catalogue = catalogue
        self._credit_for = credit_for
        self._window_ms = after_sale_window_ms

    def handle_claimed(self, event: DomainEvent, claim: HeldClaim) -> None:
        handlers = {
            EventType.ORDER_PAID: self._paid,
            EventType.ORDER_COMPLETED: self._completed,
            EventType.REFUND_ISSUED: self._refunded,
        }
        handler = handlers.get(event.type)
        if handler is None:
            return  # not ours: the runtime marks it DONE
        try:
            handler(event, claim)
        except AlreadyRecorded:
            count("CommissionDuplicatesRefused")  # written before, past its mark: nothing to do

    def gave_up(self, event: DomainEvent, reason: str) -> None:
        logger.error("commission gave up on an event", extra={"event_id": event.event_id, "reason": reason})

    def _paid(self, event: DomainEvent, claim: HeldClaim) -> None:
        payload = event.payload
        order_id = str(payload["order_id"])
        if self._ledger.book(order_id) is not None:
            return
        paid_at = epoch_ms(event.occurred_at)
        credited = (
            Credited.from_dict(payload["credited"])
            if "credited" in payload
            else self._credit_for(str(payload["customer_id"]))  # orders placed before orders carried it
        )
        lines = _paid_lines(payload["lines"], self._catalogue)
        book, entries = book_paid_order(order_id, lines, credited, self._rules.in_force_at(paid_at), paid_at)
        paid_fen = int(payload.get("total_fen", sum(line.payable_fen for line in lines)))
        booked = recorded(event, paid_fen=paid_fen, refunded_fen=0, entries=entries)
        self._ledger.write(LedgerChange(book_after=book, new_entries=entries, announce=booked), claim)
        count("CommissionEntriesWritten", len(entries))

    def _completed(self, event: DomainEvent, claim: HeldClaim) -> None:
        order_id = str(event.payload["order_id"])
        book = self._book(order_id)
        if book.completed_at_ms is not None:
            return
        entries = self._ledger.entries(order_id)
        pending = [e for e in entries if e.status is EntryStatus.PENDING]
        after, frozen = complete_book(book, pending, epoch_ms(event.occurred_at), self._window_ms)
        by_id = {e.entry_id: e for e in pending}
        moved = [(by_id[f.entry_id], f) for f in frozen]
        self._ledger.write(LedgerChange(book_before=book, book_after=after, moved=moved), claim)

    def _refunded(self, event: DomainEvent, claim: HeldClaim) -> None:
        payload = event.payload
        order_id, refund_id = str(payload["order_id"]), str(payload["refund_id"])
        book = self._book(order_id)
        if refund_id in book.refunds:
            return
        refunded = [(str(line["sku"]), int(line["amount_fen"])) for line in payload.get("refund_lines") or []]
        current = {e.entry_id: e for e in self._ledger.entries(order_id)}
        after, clawbacks = claw_back(book, refund_id, refunded, current, epoch_ms(event.occurred_at))
        known = {line.sku for line in book.lines}
        clawed_on = sum(amount for sku, amount in refunded if sku in known and amount > 0)
        booked = recorded(event, paid_fen=0, refunded_fen=clawed_on, entries=clawbacks)
        change = LedgerChange(book_before=book, book_after=after, new_entries=clawbacks, announce=booked)
        self._ledger.write(change, claim)
        count("CommissionClawbacksWritten", len(clawbacks))

    def _book(self, order_id: str) -> Book:
        book = self._ledger.book(order_id)
        if book is None:
            raise BookNotYetWritten(f"order {order_id}: its OrderPaid is not in the ledger yet")
        return book


def recorded(cause: DomainEvent, paid_fen: int, refunded_fen: int, entries: Sequence[Entry]) -> DomainEvent:
    """CommissionRecorded: what one ledger write booked for an order (the paid amount it split, the
    refunded line amounts it clawed back on, the sum of its entries), for the reconciliation report.
    Its id comes from the cause, so even a write replayed past its mark announces once."""
    payload = {
        "order_id": str(cause.payload["order_id"]),
        "cause_event_id": cause.event_id,
        "cause": str(cause.type),
        "paid_fen": paid_fen,
        "refunded_fen": refunded_fen,
        "commissions_fen": sum(e.amount_fen for e in entries),
        "entries": len(entries),
    }
    return DomainEvent(
        EventType.COMMISSION_RECORDED,
        str(cause.payload["order_id"]),
        payload,
        event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"commission-recorded:{cause.event_id}")),
        occurred_at=cause.occurred_at,
    )


def _paid_lines(lines: Sequence[dict[str, Any]], catalogue: Catalogue) -> list[PaidLine]:
    categories = catalogue.categories([str(line["sku"]) for line in lines])
    return [
        PaidLine(
            sku=str(line["sku"]),
            qty=int(line["qty"]),
            payable_fen=int(line["payable_fen"]),
            category=line.get("category") or categories.get(str(line["sku"])),
            rebate_fen=int(line["rebate_fen"]) if line.get("rebate_fen") is not None else None,
        )
        for line in lines
    ]
