"""The report books, written from the order events and the ledger's announcements exactly once
(docs/commission.md, "Reports").

The consumer of OrderPaid, RefundIssued and CommissionRecorded. Each event's effect is ONE write
of the order's book (conditional on its version) and of the cells it moves, with the consumer's
mark set DONE conditional on the claim it holds (`ClaimingConsumer`); the book also lists the
events in it, so a redelivery past its mark changes nothing. Events of one order may come in any
order: the cells are a function of the book (`cell_changes`), so a RefundIssued or a
CommissionRecorded heard before its OrderPaid is re-attributed when the OrderPaid comes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from shared.kernel.credited import Credited
from shared.kernel.events import DomainEvent, EventType
from shared.messaging.ports import HeldClaim
from shared.platform.observability import count, logger
from shared.reporting import model
from shared.reporting.model import OrderBook, cell_changes, day_of
from shared.reporting.ports import BookChange, ReportBooks

CONSUMER_NAME = "reporting"


def epoch_ms(when: str) -> int:
    return int(datetime.fromisoformat(when).timestamp() * 1000)


class ReportBookkeeping:
    name = CONSUMER_NAME

    def __init__(self, books: ReportBooks, credit_for: Callable[[str], Credited], utc_offset_min: int = 0) -> None:
        self._books = books
        self._credit_for = credit_for
        self._utc_offset_min = utc_offset_min  # the merchant's calendar (model.day_of)

    def handle_claimed(self, event: DomainEvent, claim: HeldClaim) -> None:
        if event.type not in (EventType.ORDER_PAID, EventType.REFUND_ISSUED, EventType.COMMISSION_RECORDED):
            return  # not ours: the runtime marks it DONE
        order_id = str(event.payload["order_id"])
        before = self._books.book(order_id) or OrderBook(order_id)
        if event.event_id in before.applied:
            return
        after = self._applied(before, event)
        offset = self._utc_offset_min
        change = BookChange(before, after, cell_changes(before, after, offset), day_of(after.booked_at_ms, offset))
        self._books.write(change, claim)
        count("ReportBooksWritten")

    def gave_up(self, event: DomainEvent, reason: str) -> None:
        logger.error("reporting gave up on an event", extra={"event_id": event.event_id, "reason": reason})

    def _applied(self, book: OrderBook, event: DomainEvent) -> OrderBook:
        at, payload = epoch_ms(event.occurred_at), event.payload
        if event.type is EventType.ORDER_PAID:
            credited = (
                Credited.from_dict(payload["credited"])
                if "credited" in payload
                else self._credit_for(str(payload["customer_id"]))  # as the ledger credits it
            )
            return model.paid(book, event.event_id, at, payload, credited)
        if event.type is EventType.REFUND_ISSUED:
            return model.refunded(book, event.event_id, at, str(payload["refund_id"]), int(payload["amount_fen"]))
        return model.recorded(book, event.event_id, at, payload)
