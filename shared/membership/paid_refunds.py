"""The refund policy of a paid membership and what a refund undoes (issue 14, item 3;
docs/membership.md, "Paid membership: welcome pack, rebate, refunds").

- `refund_due`: pure arithmetic on integer fen. A full refund while the membership is at most
  `full_refund_days` old and no member benefit was used; otherwise pro rata of the unused whole
  days: `paid_fen x unused_days // term_days`, rounded down (the member loses a fraction of a fen at
  most). A day begun counts as used. Never more than was paid, never negative, and never more for a
  membership used longer.
- `benefit_used`: a welcome coupon of this membership used (or held by an order, or redeemed in a
  store), or an order priced at the member price during the term.
- `revoke_unused`: the welcome coupons still AVAILABLE are revoked (moved to EXPIRED, conditional on
  the coupon read); used ones stay used, and one held by an unpaid order is left to that order.
- The rebate is clawed back by the commission ledger itself: the membership order's line carries
  the plan's `rebate_fen` for the bound guide (`shared.commission.ledger_model.PaidLine`), and a
  RefundIssued of that line claws it back pro rata, like any commission (docs/commission.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shared.coupons.model import Action, Status
from shared.coupons.ports import CouponPorts
from shared.kernel.errors import ConcurrentUpdate, ValidationFailed
from shared.membership.welcome import templates_of, welcome_coupon_ids

DAY_MS = 86_400_000
# Statuses of a welcome coupon that mean its benefit was taken (or is being taken by an order).
BENEFIT_TAKEN = (Status.LOCKED, Status.USED, Status.REDEEMED_OFFLINE)


class RefundKind(StrEnum):
    FULL = "full"
    PRO_RATA = "pro_rata"


@dataclass(frozen=True)
class RefundQuote:
    amount_fen: int
    kind: RefundKind
    term_days: int
    used_days: int  # whole days begun since the term started (0 before it starts)

    @property
    def unused_days(self) -> int:
        return self.term_days - self.used_days


def refund_due(
    paid_fen: int,
    starts_ms: int,
    ends_ms: int,
    now_ms: int,
    full_refund_days: int,
    benefit_used: bool,
) -> RefundQuote:
    """What refunding the membership order [starts_ms, ends_ms) paid `paid_fen` gives back at `now_ms`.

    A term that starts later (a lower tier moved after a higher one, a renewal queued after the
    current end) has used no day yet."""
    return refund_for_segments(paid_fen, ((starts_ms, ends_ms),), now_ms, full_refund_days, benefit_used)


def refund_for_segments(
    paid_fen: int,
    segments: Sequence[tuple[int, int]],
    now_ms: int,
    full_refund_days: int,
    benefit_used: bool,
) -> RefundQuote:
    """The same for a term lying in segments [start, end) (an upgrade split the lower term and
    moved its rest after the higher one): the days used are those of its segments before now."""
    if paid_fen < 0 or full_refund_days < 0 or not segments or any(end <= start for start, end in segments):
        raise ValidationFailed("a membership term needs paid_fen >= 0 and segments that end after they start")
    term_ms = sum(end - start for start, end in segments)
    elapsed = sum(max(0, min(end, now_ms) - start) for start, end in segments)
    term_days = max(1, -(-term_ms // DAY_MS))
    used_days = min(term_days, -(-elapsed // DAY_MS))
    if not benefit_used and elapsed <= full_refund_days * DAY_MS:
        return RefundQuote(paid_fen, RefundKind.FULL, term_days, used_days)
    amount = paid_fen * (term_days - used_days) // term_days
    return RefundQuote(amount, RefundKind.PRO_RATA, term_days, used_days)


def benefit_used(welcome_statuses: Iterable[Status], member_priced_orders: int) -> bool:
    return member_priced_orders > 0 or any(status in BENEFIT_TAKEN for status in welcome_statuses)


def welcome_statuses(coupon_ids: Iterable[str], ports: CouponPorts) -> list[Status]:
    found = (ports.coupons.get(coupon_id) for coupon_id in coupon_ids)
    return [coupon.status for coupon in found if coupon is not None]


@dataclass(frozen=True)
class Revoked:
    revoked: tuple[str, ...]
    kept: tuple[tuple[str, str], ...]  # (coupon_id, status) of the coupons left as they are


def revoke_unused(coupon_ids: Iterable[str], ports: CouponPorts, attempts: int = 3) -> Revoked:
    """Revoke every coupon of `coupon_ids` still AVAILABLE, each by its own conditional move (a
    coupon an order locks meanwhile is not revoked: the move fails and the re-read finds it LOCKED).
    Idempotent: a revoked coupon is EXPIRED and is kept as it is the next time."""
    revoked: list[str] = []
    kept: list[tuple[str, str]] = []
    for coupon_id in coupon_ids:
        for _ in range(attempts):
            coupon = ports.coupons.get(coupon_id)
            if coupon is None:
                break
            if coupon.status is not Status.AVAILABLE:
                kept.append((coupon_id, str(coupon.status)))
                break
            uow = ports.unit_of_work(retry_conflicts=False)
            uow.move(coupon, coupon.moved(Action.REVOKE, ports.clock.now_ms()))
            try:
                uow.commit()
            except ConcurrentUpdate:
                continue
            revoked.append(coupon_id)
            break
        else:
            raise ConcurrentUpdate("a welcome coupon kept changing; retry the refund", coupon_id=coupon_id)
    return Revoked(tuple(revoked), tuple(kept))


MEMBERSHIP_SKU_PREFIX = "MEMBERSHIP-"  # the order line of a membership purchase (shared/membership/paid.py)


def refunded_membership_lines(payload: Mapping[str, Any]) -> list[str]:
    """The membership SKUs a RefundIssued payload refunds (an ordinary order's refund: none): a
    membership line whose unit is refunded, whatever the amount (a pro-rata refund that rounds to
    0 fen ends the term all the same), or refunded an amount."""
    lines = payload.get("refund_lines") or []
    return [
        str(line["sku"])
        for line in lines
        if str(line.get("sku", "")).startswith(MEMBERSHIP_SKU_PREFIX)
        and (int(line.get("qty", 0)) > 0 or int(line.get("amount_fen", 0)) > 0)
    ]


def undo_welcome_pack(payload: Mapping[str, Any], template_ids: Sequence[str] | None, ports: CouponPorts) -> Revoked:
    """What a RefundIssued of a membership order does to its welcome pack: the unused coupons
    (found by their derived ids, `welcome.welcome_coupon_ids`; the templates are the payload's
    `membership` terms when `template_ids` is None) are revoked. Nothing for a refund of
    an ordinary order. Idempotent, so the consumer calling it may be redelivered."""
    if not refunded_membership_lines(payload):
        return Revoked((), ())
    templates = templates_of(payload) if template_ids is None else tuple(template_ids)
    return revoke_unused(welcome_coupon_ids(str(payload["order_id"]), templates, ports), ports)
