"""Growth and points, written from the order events exactly once (docs/membership.md, "Points").

The consumer of OrderPaid, OrderCompleted and RefundIssued (`MembershipQueue`). Each event's effect
is ONE write (the member, the balance, the order's lot, the ledger entries, a MemberLevelChanged
if the level moved) that also sets the consumer's mark DONE, conditional on the claim it holds
(`ClaimingConsumer`); the lot records the completion and the refunds applied, so an event heard
again past its mark changes nothing. Events of an order may come in any order: a refund heard
before the completion is counted, and the completion earns net of it.

- OrderPaid: the customer's first order enrols it (as the first `GET /me/member` does).
- OrderCompleted: growth += paid - refunded; the points it earns are FROZEN until the after-sale
  window closes (the commission ledger's window, `COMMISSION_AFTER_SALE_WINDOW_S`).
- RefundIssued: growth -= amount; the refund's pro-rata share of the points comes back (model.refund),
  and of an order that spent points at checkout, the refund's pro-rata share of those too
  (model.spend_refunded), in the same write.
- OrderCancelled / OrderExpired: the points the unpaid order spent at checkout come back, once
  (model.spend_ended: the spend item's status is the guard, past the mark).

With each OrderPaid and RefundIssued the member's activity (tags.py: orders, paid amount, first
and last order) moves in the same write.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from shared.kernel.events import DomainEvent, EventType
from shared.membership import model
from shared.membership.model import Member, OrderPoints, PointsBalance, Step
from shared.membership.ports import MemberChange, MemberState, MemberStore, PointsAlreadyRecorded, RulesStore
from shared.membership.tags import Activity
from shared.messaging.ports import HeldClaim
from shared.platform.observability import count, logger

CONSUMER_NAME = "membership"
HEARD = frozenset(
    {
        EventType.ORDER_PAID,
        EventType.ORDER_COMPLETED,
        EventType.REFUND_ISSUED,
        EventType.ORDER_CANCELLED,
        EventType.ORDER_EXPIRED,
    }
)


def epoch_ms(when: str) -> int:
    return int(datetime.fromisoformat(when).timestamp() * 1000)


class PointsEarning:
    name = CONSUMER_NAME

    def __init__(self, store: MemberStore, rules: RulesStore, after_sale_window_ms: int) -> None:
        self._store = store
        self._rules = rules
        self._window_ms = after_sale_window_ms

    def handle_claimed(self, event: DomainEvent, claim: HeldClaim) -> None:
        if event.type not in HEARD:
            return  # not ours: the runtime marks it DONE
        payload = event.payload
        customer, at = str(payload["customer_id"]), epoch_ms(event.occurred_at)
        if event.type in (EventType.ORDER_CANCELLED, EventType.ORDER_EXPIRED):
            self._give_back(customer, str(payload["order_id"]), at, claim)
            return
        if event.type is EventType.ORDER_PAID:
            self._store.enrol(Member(customer, at))
        order_id = str(payload["order_id"])
        state = self._store.state(customer, order_id)
        activity = _activity_after(state.activity or Activity.none_yet(customer, at), event, at)
        tagged = MemberChange(activity_before=state.activity or activity, activity_after=activity)
        if event.type is EventType.ORDER_PAID:
            self._store.write(tagged, claim)
            return
        member = state.member or Member(customer, at)
        balance = state.balance or PointsBalance(customer)
        book = state.book or OrderPoints(customer, order_id, paid_fen=_paid_fen(payload))
        rules = self._rules.current()
        if event.type is EventType.ORDER_COMPLETED:
            step = model.complete(book, member, balance, rules, at, self._window_ms)
        else:
            step = model.refund(book, member, balance, rules, str(payload["refund_id"]), int(payload["amount_fen"]), at)
            step = _with_spend_refunded(step, state, book, balance, payload, at)
        if step is None:
            if activity is not None:
                self._store.write(tagged, claim)
            return
        change = change_of(state, step, balance, book, member, event)
        if step.spend is not None:
            change = replace(change, spend_before=state.spend, spend_after=step.spend)
        try:
            self._store.write(replace(change, activity_before=tagged.activity_before, activity_after=activity), claim)
        except PointsAlreadyRecorded:
            count("PointsDuplicatesRefused")  # written before, past its mark: nothing to do
            return
        count("PointsEntriesWritten", len(step.entries))

    def _give_back(self, customer: str, order_id: str, at: int, claim: HeldClaim) -> None:
        """The unpaid order ended: what it spent at checkout comes back (none: nothing to write)."""
        state = self._store.state(customer, order_id)
        balance = state.balance or PointsBalance(customer)
        ended = model.spend_ended(state.spend, balance, at) if state.spend is not None else None
        if ended is None:
            return
        spend, after, entry = ended
        change = MemberChange(
            balance_before=balance,
            balance_after=after,
            spend_before=state.spend,
            spend_after=spend,
            entries=(entry,),
        )
        try:
            self._store.write(change, claim)
        except PointsAlreadyRecorded:
            count("PointsDuplicatesRefused")
            return
        count("PointsSpendsReturned")

    def gave_up(self, event: DomainEvent, reason: str) -> None:
        logger.error("membership gave up on an event", extra={"event_id": event.event_id, "reason": reason})


def change_of(
    state: MemberState,
    step: Step,
    balance: PointsBalance,
    book: OrderPoints,
    member: Member | None = None,
    cause: DomainEvent | None = None,
) -> MemberChange:
    """The write of `step`, against the items as read (`balance`, `book` and `member` stand for
    those not stored yet, version 0). A step that moves the level announces it (`cause`)."""
    moved = bool(step.entries) or step.balance != balance
    return MemberChange(
        balance_before=(state.balance or balance) if moved else None,
        balance_after=step.balance if moved else None,
        book_before=state.book or book,
        book_after=step.book,
        member_before=member if step.member is not None else None,
        member_after=step.member,
        entries=step.entries,
        announce=model.level_changed(member, step.member, cause) if member and step.member and cause else None,
    )


def _with_spend_refunded(
    step: Step | None, state: MemberState, book: OrderPoints, balance: PointsBalance, payload: dict, at: int
) -> Step | None:
    """The refund's step with its share of what the order spent at checkout given back too."""
    if state.spend is None:
        return step
    base = step or Step(replace(book, refunds=book.refunds), balance)
    back = model.spend_refunded(state.spend, base.balance, str(payload["refund_id"]), int(payload["amount_fen"]), at)
    if back is None:
        return step
    spend, after, entry = back
    entries = (*base.entries, entry) if entry is not None else base.entries
    return replace(base, balance=after, entries=entries, spend=spend)


def _activity_after(before: Activity, event: DomainEvent, at_ms: int) -> Activity | None:
    """The member's activity after an order event (tags.py); None when the event does not move it
    (a completion, or a refund of a customer whose paid order was never heard)."""
    payload = event.payload
    if event.type is EventType.ORDER_PAID:
        return before.paid(at_ms, _paid_fen(payload), payload.get("store_id"))
    if event.type is EventType.REFUND_ISSUED and before.version:
        return before.refunded(int(payload["amount_fen"]))
    return None


def _paid_fen(payload: dict) -> int:
    """The lines' paid amounts: what growth and points are on (freight is on no line)."""
    return sum(int(line["payable_fen"]) for line in payload.get("lines") or [])
