"""Orders: the state machine and the order as the API shows it. Pure domain code.

    PENDING_PAYMENT --pay--> PAID --ship / ready_for_pickup--> FULFILLING --complete / hand_over--> COMPLETED
    PENDING_PAYMENT --cancel / expire--> CANCELLED
    PAID, FULFILLING, COMPLETED --refund (every unit)--> REFUNDED   (a partial refund keeps the status)

Every transition is applied by the data layer as a conditional write on the current status and
version, so two writers can never both win; an illegal transition is `InvalidTransition` (409).

An order is made of priced lines (`PricedLine`, from a `Quote` that shared.ordering.pricing makes);
a refund of some of a line's units is `refund_amount` of its payable, so the parts of a line
always sum to what it paid. The units a refund request asks for are held on the order
(`refund_requested_qty`) until it is decided, so the order itself says what can still be asked for.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol

from shared.kernel.clock import iso
from shared.kernel.credited import CreditFacts
from shared.kernel.errors import InvalidTransition, RuleViolation
from shared.kernel.idempotency import IdempotentRequest, StoredResponse, derived_id
from shared.kernel.money import allocate, unit_share


# -- the priced lines an order is made of (shared.ordering.pricing prices them) ------------------
@dataclass(frozen=True)
class PricedLine:
    sku: str
    qty: int
    unit_price_fen: int
    discount_fen: int
    payable_fen: int  # unit_price_fen * qty - discount_fen

    @property
    def gross_fen(self) -> int:
        return self.unit_price_fen * self.qty

    def to_dict(self) -> dict:
        return {
            "sku": self.sku,
            "qty": self.qty,
            "unit_price_fen": self.unit_price_fen,
            "discount_fen": self.discount_fen,
            "payable_fen": self.payable_fen,
        }


@dataclass(frozen=True)
class Applied:
    """An order-level reduction and how much of `discount_fen` it accounts for."""

    kind: str  # "promotion", "coupon" (merchandise) or "shipping_coupon"
    id: str
    amount_fen: int

    def to_dict(self) -> dict:
        return {"kind": self.kind, "id": self.id, "amount_fen": self.amount_fen}


@dataclass(frozen=True)
class Quote:
    lines: tuple[PricedLine, ...]
    subtotal_fen: int  # sum of unit_price_fen * qty
    discount_fen: int  # sum of line discounts == sum of applied amounts
    shipping_fen: int
    total_fen: int  # subtotal - discount + shipping == sum of line payables + shipping
    applied: tuple[Applied, ...]
    promotions: tuple[PromotionApplied, ...] = ()  # every promotion that shaped the quote
    gifts: tuple[GiftTerms, ...] = ()  # the terms of each gift line given (kept on the order)

    def to_dict(self) -> dict:
        """The quote response of API.md."""
        return {
            "lines": [line.to_dict() for line in self.lines],
            "subtotal_fen": self.subtotal_fen,
            "discount_fen": self.discount_fen,
            "shipping_fen": self.shipping_fen,
            "total_fen": self.total_fen,
            "applied": [a.to_dict() for a in self.applied],
            "promotions": [p.to_dict() for p in self.promotions],
        }

    def line(self, sku: str) -> PricedLine:
        for line in self.lines:
            if line.sku == sku:
                return line
        raise KeyError(sku)


def refund_amount(line: PricedLine, qty: int, already_refunded_qty: int = 0) -> int:
    """What `qty` units of `line` paid, when `already_refunded_qty` units were refunded before.

    The line's payable is spread over its units by largest remainder (equal weights): every unit
    paid `payable // qty` and the `payable % qty` odd fen sit on the last units refunded. So
    refunding the whole line in any number of parts, each passing the units refunded before it,
    sums exactly to `payable_fen`; and a caller that forgets `already_refunded_qty` refunds too
    little, never too much.
    """
    if qty < 0 or already_refunded_qty < 0 or already_refunded_qty + qty > line.qty:
        raise RuleViolation(
            "cannot refund more units than the line has",
            sku=line.sku,
            qty=qty,
            already_refunded_qty=already_refunded_qty,
            line_qty=line.qty,
        )
    return unit_share(line.payable_fen, line.qty, already_refunded_qty + qty) - unit_share(
        line.payable_fen, line.qty, already_refunded_qty
    )


# -- coupons, as an order uses them (shared.coupons implements this; docs/coupons.md) -----------
class OrderCoupon(Protocol):
    """A coupon the customer named in a cart, read by checkout. Pricing asks it what it covers and
    takes off; the order's transaction locks it (shared.ordering.ports.CouponHolder)."""

    @property
    def coupon_id(self) -> str: ...

    @property
    def is_shipping(self) -> bool:
        """Takes off shipping (one per order, beside one merchandise coupon)."""
        ...

    def check_usable(self, now_ms: int) -> None:
        """Refuses a coupon that cannot be used online now: CouponInUse / CouponNotAvailable /
        CouponExpired / NotStarted (409), CouponNotUsable (422)."""
        ...

    def covers(self, sku: str, category: str | None) -> bool: ...

    def discount(self, eligible_fen: int, shipping_fen: int, *, promoted: bool) -> int:
        """What it takes off a cart whose covered merchandise is `eligible_fen` (after promotions;
        `promoted`: a promotion applied), or CouponNotUsable (422) with `details.reason`."""
        ...


COUPON_KINDS = ("coupon", "shipping_coupon")  # `Applied.kind` of the coupons a quote applied


# -- promotions, as pricing applies them (shared.promotions implements this; docs/pricing.md) ----
class OrderPromotion(Protocol):
    """A promotion running now, as the checkout read it. Pricing asks it for a limited price, a
    threshold saving or a gift; what it answers is capped by pricing at what it applies to."""

    @property
    def promotion_id(self) -> str: ...

    @property
    def is_threshold(self) -> bool:
        """满减 / 满折 by amount or by item count: a saving on the lines it covers."""
        ...

    @property
    def is_gift(self) -> bool: ...

    def is_running(self, now_ms: int) -> bool: ...

    def covers(self, sku: str, category: str | None) -> bool: ...

    def limited_price(self, sku: str, category: str | None) -> int | None:
        """The final unit price it gives `sku`, or None."""
        ...

    def saving(self, amount_fen: int, qty: int) -> int:
        """What it takes off covered merchandise of `amount_fen` in `qty` units (0: not reached)."""
        ...

    def gift(self, amount_fen: int, qty: int) -> tuple[str, int] | None:
        """The gift (SKU, units) that covered merchandise of `amount_fen` in `qty` units earns."""
        ...

    def gift_tiers(self, sku: str) -> tuple[tuple[int, int, int], ...]:
        """(threshold_fen, min_qty, units of `sku` it gives) of every tier, ascending: what an order
        keeps to tell, after a partial refund, how many of the gift its lines still earn."""
        ...


@dataclass(frozen=True)
class PromotionApplied:
    """A promotion the quote applied (`promotions` of the quote response, beside API.md's fields):
    a threshold saving (`amount_fen`, also in `applied`), a limited price (its saving on `skus`),
    or a gift line (`gift_sku`, `gift_qty`); or, with `skipped`, a gift earned but not given."""

    promotion_id: str
    kind: str  # "threshold" | "limited_price" | "gift"
    amount_fen: int
    skus: tuple[str, ...]
    gift_sku: str | None = None
    gift_qty: int = 0
    skipped: str | None = None  # a gift: "out_of_stock", "unknown_sku", "sku_in_cart"

    def to_dict(self) -> dict[str, Any]:
        view: dict[str, Any] = {
            "promotion_id": self.promotion_id,
            "kind": self.kind,
            "amount_fen": self.amount_fen,
            "skus": list(self.skus),
        }
        if self.gift_sku is not None:
            view.update(gift_sku=self.gift_sku, gift_qty=self.gift_qty, given=self.skipped is None)
            if self.skipped is not None:
                view["skipped"] = self.skipped
        return view


# -- gifts on refunds (docs/pricing.md, "Refunds below a threshold") --------------------------
# After every refund the gift units the customer keeps beyond what the lines not refunded still
# earn are returned with it (an unshipped order: back to stock) or paid for out of it, one unit's
# `value_fen` each; what was deducted is kept per line, so bringing the gift back later pays the
# same fen back to the same lines and a refund of every unit refunds exactly what was paid.
# gift SKU -> {order line SKU: fen deducted from that line's refunds and not yet paid back}
Charges = dict[str, dict[str, int]]


@dataclass(frozen=True)
class GiftTerms:
    """A gift line as its promotion gave it: the lines it measured and its tiers as they were then."""

    promotion_id: str
    sku: str  # the gift line's SKU
    value_fen: int  # one unit: the gift's own price for this customer when the order was placed
    skus: tuple[str, ...]  # the order lines the promotion measured
    tiers: tuple[tuple[int, int, int], ...]  # (threshold_fen, min_qty, units of this gift) per tier, ascending

    def earned(self, lines: Mapping[str, tuple[int, int]], refunded: Mapping[str, int]) -> int:
        """Units of the gift the measured lines still earn after `refunded` units ({sku: qty}) came
        back; `lines`: sku -> (qty, unit_price_fen). Measured as at placement: the lines' own unit
        prices and units, the highest tier reached (0 when none is, or it gives another gift)."""
        left = [(lines[s][0] - refunded.get(s, 0), lines[s][1]) for s in self.skus if s in lines]
        amount = sum(qty * unit for qty, unit in left)
        qty = sum(q for q, _ in left)
        if amount <= 0 and qty <= 0:
            return 0
        reached = [units for threshold, min_qty, units in self.tiers if amount >= threshold and qty >= min_qty]
        return reached[-1] if reached else 0

    def to_record(self) -> list[Any]:
        return [self.promotion_id, self.sku, self.value_fen, list(self.skus), [list(t) for t in self.tiers]]

    @classmethod
    def of_record(cls, raw: Sequence[Any]) -> GiftTerms:
        pid, sku, value, skus, tiers = raw
        return cls(str(pid), str(sku), int(value), tuple(skus), tuple((int(a), int(b), int(c)) for a, b, c in tiers))


def charged_units(terms: GiftTerms, charges: Charges) -> int:
    """Gift units currently paid for by deductions."""
    if terms.value_fen <= 0:
        return 0
    return sum(charges.get(terms.sku, {}).values()) // terms.value_fen


def gifts_to_return(
    gifts: Sequence[GiftTerms],
    lines: Mapping[str, tuple[int, int]],
    refunded_after: Mapping[str, int],
    returnable: Mapping[str, int],
) -> dict[str, int]:
    """The gift units an unshipped order gives back with a refund: those kept beyond what the lines
    still earn once `refunded_after` is refunded, at most the `returnable` ones (not refunded, not
    held by another request)."""
    back: dict[str, int] = {}
    for terms in gifts:
        kept = lines[terms.sku][0] - refunded_after.get(terms.sku, 0)
        extra = min(max(0, kept - terms.earned(lines, refunded_after)), returnable.get(terms.sku, 0))
        if extra > 0:
            back[terms.sku] = extra
    return back


def settle_gifts(
    gifts: Sequence[GiftTerms],
    charges: Charges,
    lines: Mapping[str, tuple[int, int]],
    refunded_after: Mapping[str, int],
    amounts: Mapping[str, int],
) -> tuple[dict[str, int], Charges]:
    """A refund's line amounts ({sku: fen}, what its units paid) after the gifts: for every gift,
    the units kept beyond what is earned once `refunded_after` is refunded are to be paid for
    (`value_fen` each). Units newly paid for are deducted from the refund's lines in proportion to
    their amounts (largest remainder); units no longer paid for (the gift came back) pay back what
    was deducted for them, to the lines it was deducted from. Returns the amounts (lines with only a
    payback appear with it) and the charges after. RuleViolation `gift_must_be_returned` (422) when
    the refund's amounts cannot pay for the gift units: the gift must come back with it."""
    after: dict[str, int] = dict(amounts)
    held: Charges = {sku: dict(per_line) for sku, per_line in charges.items()}
    owed: list[tuple[GiftTerms, int]] = []
    for terms in sorted(gifts, key=lambda g: g.sku):
        kept = lines[terms.sku][0] - refunded_after.get(terms.sku, 0)
        target = max(0, kept - terms.earned(lines, refunded_after)) if terms.value_fen > 0 else 0
        now = charged_units(terms, held)
        if target < now:
            per_line = held.get(terms.sku, {})
            skus = sorted(per_line)
            back = allocate((now - target) * terms.value_fen, [per_line[s] for s in skus])
            for sku, fen in zip(skus, back, strict=True):
                after[sku] = after.get(sku, 0) + fen
                per_line[sku] -= fen
            held[terms.sku] = {s: f for s, f in per_line.items() if f}
        elif target > now:
            owed.append((terms, target - now))
    for terms, units in owed:
        due = units * terms.value_fen
        skus = sorted(s for s, fen in after.items() if fen > 0)
        if due > sum(after[s] for s in skus):
            raise RuleViolation(
                "the gift must come back with this refund: the lines left no longer earn it, and the "
                "refund is less than the gift's value",
                reason="gift_must_be_returned",
                gift_sku=terms.sku,
                gift_qty=units,
                promotion_id=terms.promotion_id,
                deduction_fen=due,
            )
        per_line = held.setdefault(terms.sku, {})
        for sku, fen in zip(skus, allocate(due, [after[s] for s in skus]), strict=True):
            after[sku] -= fen
            if fen:
                per_line[sku] = per_line.get(sku, 0) + fen
    return after, {sku: per_line for sku, per_line in held.items() if per_line}


# -- the order ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Placement:
    """What the checkout decided before an order is written: the priced cart and where its units
    come from (shared.ordering.placement writes it), and the coupons it applied, which the order's
    transaction locks."""

    quote: Quote
    location: str
    fulfilment: dict[str, Any]
    payment_window_s: int
    flash_sale_id: str | None = None
    coupons: tuple[OrderCoupon, ...] = ()
    credit: CreditFacts | None = None  # who the order credits is decided from; None: the ledger, at payment
    membership: dict[str, Any] | None = None  # a paid-membership order's plan terms (shared.membership.purchase)


class Status(StrEnum):
    PENDING_PAYMENT = "PENDING_PAYMENT"
    PAID = "PAID"
    FULFILLING = "FULFILLING"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"


class Action(StrEnum):
    PAY = "pay"
    CANCEL = "cancel"
    EXPIRE = "expire"
    SHIP = "ship"
    READY_FOR_PICKUP = "ready_for_pickup"
    HAND_OVER = "hand_over"
    COMPLETE = "complete"
    ACTIVATE = "activate"  # a paid membership's order: its membership runs, nothing to deliver
    REFUND_ALL = "refund_all"


TRANSITIONS: dict[tuple[Status, Action], Status] = {
    (Status.PENDING_PAYMENT, Action.PAY): Status.PAID,
    (Status.PENDING_PAYMENT, Action.CANCEL): Status.CANCELLED,
    (Status.PENDING_PAYMENT, Action.EXPIRE): Status.CANCELLED,
    (Status.PAID, Action.SHIP): Status.FULFILLING,
    (Status.PAID, Action.READY_FOR_PICKUP): Status.FULFILLING,
    (Status.FULFILLING, Action.HAND_OVER): Status.COMPLETED,
    (Status.FULFILLING, Action.COMPLETE): Status.COMPLETED,
    (Status.PAID, Action.ACTIVATE): Status.COMPLETED,
    (Status.PAID, Action.REFUND_ALL): Status.REFUNDED,
    (Status.FULFILLING, Action.REFUND_ALL): Status.REFUNDED,
    (Status.COMPLETED, Action.REFUND_ALL): Status.REFUNDED,
}
REFUNDABLE = frozenset({Status.PAID, Status.FULFILLING, Status.COMPLETED})
PICKUP_TYPES = frozenset({"pickup"})
MEMBERSHIP_SKU_PREFIX = "MEMBERSHIP-"  # a paid-membership order's one line (shared.membership.paid.PLAN_SKU_PREFIX)
MAX_PICKUP_ATTEMPTS = 5


def next_status(current: Status, action: Action) -> Status:
    try:
        return TRANSITIONS[(current, action)]
    except KeyError:
        raise InvalidTransition(
            f"cannot {action.value} an order that is {current.value}", status=current.value, action=action.value
        ) from None


def new_order_id(now_ms: int) -> str:
    # Time first so ids sort by creation; 10 random bytes make a collision practically impossible.
    return f"o{now_ms:012x}{secrets.token_hex(10)}"


def order_id_for(request: IdempotentRequest, secret: bytes | None) -> str:
    """The id of the order a creating request places: the same for every replay of its
    Idempotency-Key, so the order's own conditional put is the idempotency check (docs/orders.md)."""
    return derived_id(request, secret, prefix="o")


def refund_id_for(request: IdempotentRequest, secret: bytes | None) -> str:
    """The id of the refund a request asks for under an Idempotency-Key (its scope names the caller
    and the order): the same for every replay, so the refund's own conditional put is the check."""
    return derived_id(request, secret, prefix="r")


def new_pickup_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


@dataclass(frozen=True)
class HistoryEntry:
    at_ms: int
    status: str
    action: str
    by: str
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        entry = {"at": iso(self.at_ms), "status": self.status, "action": self.action, "by": self.by}
        if self.note:
            entry["note"] = self.note
        return entry


@dataclass(frozen=True)
class Order:
    order_id: str
    customer_id: str
    status: Status
    version: int
    lines: tuple[PricedLine, ...]
    subtotal_fen: int
    discount_fen: int
    shipping_fen: int
    total_fen: int
    applied: tuple[dict[str, Any], ...]
    fulfilment: dict[str, Any]
    location: str
    created_at_ms: int
    expires_at_ms: int
    history: tuple[HistoryEntry, ...] = ()
    flash_sale_id: str | None = None
    cancel_reason: str | None = None
    transaction_id: str | None = None
    paid_at_ms: int | None = None
    tracking_number: str | None = None
    pickup_code: str | None = None
    pickup_attempts: int = 0
    refunded_qty: dict[str, int] = field(default_factory=dict)
    refunded_fen: int = 0
    # Who is credited for the order (shared.kernel.credited.Credited.to_dict), frozen when it is
    # placed; None: not resolved at placement (a flash purchase), the ledger credits at payment.
    credited: dict[str, str] | None = None
    refund_requested_qty: dict[str, int] = field(default_factory=dict)  # asked for, not yet decided
    # The gift lines' terms, and what was deducted from refunds for gifts kept below their threshold
    # (docs/pricing.md, "Refunds below a threshold").
    gifts: tuple[GiftTerms, ...] = ()
    gift_charges: Charges = field(default_factory=dict)
    provider_paid_at: str | None = None  # the payment's time as the provider reported it (OrderPaid's paid_at)
    # A paid-membership order (docs/membership.md, "Buying a plan"): the plan's terms as bought
    # (plan_id, tier, rank, price_fen, days, benefits, welcome templates, referral_rebate_fen,
    # refund_full_within_days, store_id), set at placement and never changed; its events carry them.
    membership: dict[str, Any] | None = None
    # The idempotency of the request that placed the order (docs/orders.md, "Idempotency"): its
    # fingerprint (as the store keeps it: shortened, `shared.data.stores.orders`). Kept through
    # every transition; not part of the order's value (an order reads back equal either way). The
    # response is not kept: `first_answer` rebuilds it from the order.
    request_hash: str | None = field(default=None, compare=False, repr=False)

    def carrying(self, request: IdempotentRequest) -> Order:
        """This new order, carrying the request that creates it."""
        return replace(self, request_hash=request.fingerprint)

    def as_placed(self) -> Order:
        """The order as it was when placed (version 1), from what it keeps now: every field a later
        change sets (status, version, history past its first entry, payment, fulfilment and refund
        progress) goes back to its value at placement. A field added to the order that changes after
        placement must be reset here too (tests/unit/test_order_first_answer.py checks every change)."""
        return replace(
            self,
            status=Status.PENDING_PAYMENT,
            version=1,
            history=self.history[:1],
            cancel_reason=None,
            transaction_id=None,
            paid_at_ms=None,
            tracking_number=None,
            pickup_code=None,
            pickup_attempts=0,
            refunded_qty={},
            refunded_fen=0,
            refund_requested_qty={},
            gift_charges={},
            provider_paid_at=None,
        )

    def first_answer(self) -> StoredResponse:
        """What the request that placed this order was answered: 201 and the order as placed. A
        replay of that request is answered this, equal to the first answer byte for byte, whatever
        happened to the order since, so the order need not keep a copy of it."""
        return StoredResponse(201, self.as_placed().view())

    @classmethod
    def place(
        cls,
        order_id: str,
        customer_id: str,
        quote: Quote,
        fulfilment: dict[str, Any],
        location: str,
        now: int,
        payment_window_s: int,
        flash_sale_id: str | None = None,
        credited: dict[str, str] | None = None,
        membership: dict[str, Any] | None = None,
    ) -> Order:
        return cls(
            order_id=order_id,
            customer_id=customer_id,
            status=Status.PENDING_PAYMENT,
            version=1,
            lines=quote.lines,
            subtotal_fen=quote.subtotal_fen,
            discount_fen=quote.discount_fen,
            shipping_fen=quote.shipping_fen,
            total_fen=quote.total_fen,
            applied=tuple({"kind": a.kind, "id": a.id, "amount_fen": a.amount_fen} for a in quote.applied),
            fulfilment=fulfilment,
            location=location,
            created_at_ms=now,
            expires_at_ms=now + payment_window_s * 1000,
            history=(HistoryEntry(now, Status.PENDING_PAYMENT, "place", customer_id),),
            flash_sale_id=flash_sale_id,
            credited=credited,
            gifts=quote.gifts,
            membership=membership,
        )

    # -- transitions: each returns the next version of the order ------------------------------
    def transition(self, action: Action, by: str, at: int, note: str | None = None, **changes: Any) -> Order:
        status = next_status(self.status, action)
        entry = HistoryEntry(at, status, action.value, by, note)
        return replace(self, status=status, version=self.version + 1, history=(*self.history, entry), **changes)

    def note(self, by: str, at: int, note: str) -> Order:
        """A history entry without a status change (a flagged payment, a partial refund)."""
        entry = HistoryEntry(at, self.status, "note", by, note)
        return replace(self, version=self.version + 1, history=(*self.history, entry))

    def reset_pickup_attempts(self, by: str, at: int) -> Order:
        """The pickup lock-out lifted by a merchant admin: the wrong codes are forgotten (the code
        stays the one the customer holds), and the history says who did it, when, after how many."""
        entry = HistoryEntry(at, self.status, "reset_pickup_attempts", by, f"after {self.pickup_attempts} wrong codes")
        return replace(self, version=self.version + 1, history=(*self.history, entry), pickup_attempts=0)

    def is_due(self, at: int) -> bool:
        return self.status is Status.PENDING_PAYMENT and at >= self.expires_at_ms

    def line(self, sku: str) -> PricedLine | None:
        return next((line for line in self.lines if line.sku == sku), None)

    def refundable_qty(self, sku: str) -> int:
        """Units of the line a new refund request may still ask for: neither refunded nor held by
        a request waiting for its decision."""
        line = self.line(sku)
        if line is None:
            return 0
        return line.qty - self.refunded_qty.get(sku, 0) - self.refund_requested_qty.get(sku, 0)

    def request_refund(self, units: dict[str, int], by: str, at: int, refund_id: str) -> Order:
        """The order holding `units` ({sku: qty}) for a refund request until it is decided:
        RuleViolation when a line has fewer units that can still be asked for. Written conditional
        on the version read, so two requests decided on the same read cannot both hold a unit."""
        for sku, qty in units.items():
            if self.line(sku) is None or qty > self.refundable_qty(sku):
                raise RuleViolation(
                    "more units than can still be refunded", sku=sku, refundable_qty=self.refundable_qty(sku)
                )
        held = {**self.refund_requested_qty}
        for sku, qty in units.items():
            held[sku] = held.get(sku, 0) + qty
        asked = ", ".join(f"{sku} x{qty}" for sku, qty in units.items())
        return replace(self.note(by, at, f"refund {refund_id} requested: {asked}"), refund_requested_qty=held)

    def reject_refund(self, units: dict[str, int], by: str, at: int, refund_id: str) -> Order:
        """The order after a rejected request gave its held units back to what can be refunded."""
        note = f"refund {refund_id} rejected"
        return replace(self.note(by, at, note), refund_requested_qty=self._released(units))

    def _released(self, units: dict[str, int]) -> dict[str, int]:
        # A request made before requests held their units holds none: never below zero.
        held = {**self.refund_requested_qty}
        for sku, qty in units.items():
            left = held.get(sku, 0) - min(qty, held.get(sku, 0))
            if left:
                held[sku] = left
            else:
                held.pop(sku, None)
        return held

    def refund_amount(self, sku: str, qty: int) -> int:
        """The allocated amount of the next `qty` units of a line: units are priced by largest
        remainder, so refunding a line in any number of parts sums exactly to its payable_fen."""
        line = self.line(sku)
        if line is None:
            raise ValueError(f"order {self.order_id} has no line {sku}")
        return refund_amount(line, qty, self.refunded_qty.get(sku, 0))

    def refund(
        self, units: dict[str, int], by: str, at: int, refund_id: str, priced: Mapping[str, int] | None = None
    ) -> tuple[Order, list[dict[str, Any]]]:
        """The order after refunding `units` ({sku: qty}), and the refunded lines with their exact
        amounts. REFUNDED once every unit is refunded; a partial refund keeps the status. The units
        come out of those a request held (`refund_requested_qty`) first. `priced`: see `refund_lines`."""
        released = self._released(units)
        for sku, qty in units.items():
            line = self.line(sku)
            open_qty = 0 if line is None else line.qty - self.refunded_qty.get(sku, 0) - released.get(sku, 0)
            if line is None or qty > open_qty:
                raise RuleViolation("more units than can still be refunded", sku=sku, refundable_qty=open_qty)
        units, lines, charges = self.refund_lines(units, released, priced)
        released = self._released(units)
        amount = sum(int(line["amount_fen"]) for line in lines)
        refunded_qty = {**self.refunded_qty}
        for sku, qty in units.items():
            refunded_qty[sku] = refunded_qty.get(sku, 0) + qty
        refunded_fen = self.refunded_fen + amount
        note = f"refund {refund_id}: {amount} fen"
        changes: dict[str, Any] = {
            "refunded_qty": refunded_qty,
            "refunded_fen": refunded_fen,
            "refund_requested_qty": released,
            "gift_charges": charges,
        }
        if self.fully_refunded_after(units):
            return self.transition(Action.REFUND_ALL, by, at, note=note, **changes), lines
        return replace(self.note(by, at, note), **changes), lines

    def refund_lines(
        self, units: dict[str, int], held: dict[str, int] | None = None, priced: Mapping[str, int] | None = None
    ) -> tuple[dict[str, int], list[dict[str, Any]], Charges]:
        """The units a refund of `units` refunds and its lines with their exact amounts, if it were
        issued now, and the gift charges after it (docs/pricing.md, "Refunds below a threshold"):
        in an unshipped order (PAID) the gift units the lines left no longer earn come back with
        it (at most those neither refunded nor `held`, default: held by requests); otherwise those
        the customer keeps are paid for out of the refund, and gift units coming back pay back what
        was deducted for them. RuleViolation `gift_must_be_returned` when the refund cannot pay.
        `priced` ({sku: fen}): lines refunded by an amount a policy decided instead of by their
        units (a paid membership's line: docs/membership.md, "Refunds"), never more than the line
        has left and never below 0."""
        held = self.refund_requested_qty if held is None else held
        units = {sku: qty for sku, qty in units.items() if qty}
        shape = {line.sku: (line.qty, line.unit_price_fen) for line in self.lines}
        after = {sku: self.refunded_qty.get(sku, 0) + units.get(sku, 0) for sku in shape}
        if self.gifts and self.status is Status.PAID:
            returnable = {g.sku: shape[g.sku][0] - after[g.sku] - held.get(g.sku, 0) for g in self.gifts}
            for sku, qty in gifts_to_return(self.gifts, shape, after, returnable).items():
                units[sku] = units.get(sku, 0) + qty
                after[sku] += qty
        amounts = {sku: self.refund_amount(sku, qty) for sku, qty in units.items()}
        for sku, fen in (priced or {}).items():
            if sku in amounts:
                amounts[sku] = max(0, min(fen, self.refund_amount(sku, units[sku])))
        if self.gifts:
            amounts, charges = settle_gifts(self.gifts, self.gift_charges, shape, after, amounts)
        else:
            charges = self.gift_charges
        lines = [{"sku": sku, "qty": units.get(sku, 0), "amount_fen": fen} for sku, fen in amounts.items()]
        return units, lines, charges

    def fully_refunded_after(self, refund: dict[str, int]) -> bool:
        return all(self.refunded_qty.get(line.sku, 0) + refund.get(line.sku, 0) >= line.qty for line in self.lines)

    @property
    def stocked_lines(self) -> tuple[PricedLine, ...]:
        """The lines whose units are stock: all but a paid-membership order's plan line."""
        if self.membership is None:
            return self.lines
        return tuple(line for line in self.lines if not line.sku.startswith(MEMBERSHIP_SKU_PREFIX))

    @property
    def coupon_ids(self) -> tuple[str, ...]:
        """The coupons this order holds (LOCKED while unpaid, USED once paid)."""
        return tuple(a["id"] for a in self.applied if a["kind"] in COUPON_KINDS)

    @property
    def is_pickup(self) -> bool:
        return self.fulfilment.get("type") in PICKUP_TYPES

    def event_payload(self, **extra: Any) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "customer_id": self.customer_id,
            "status": self.status.value,
            "total_fen": self.total_fen,
            # The sales reports' gross, discounts and freight (docs/commission.md, "Reports").
            "subtotal_fen": self.subtotal_fen,
            "discount_fen": self.discount_fen,
            "shipping_fen": self.shipping_fen,
            "fulfilment": {k: v for k, v in self.fulfilment.items() if k in ("type", "store_id")},
            "store_id": self.location,
            "lines": [self._line_payload(line) for line in self.lines],
            "flash_sale_id": self.flash_sale_id,
            **({"credited": self.credited} if self.credited is not None else {}),
            **({"membership": self.membership} if self.membership is not None else {}),
            **extra,
        }

    def _line_payload(self, line: PricedLine) -> dict[str, Any]:
        body: dict[str, Any] = {"sku": line.sku, "qty": line.qty, "payable_fen": line.payable_fen}
        if self.membership is not None and line.sku == f"{MEMBERSHIP_SKU_PREFIX}{self.membership.get('plan_id')}":
            # The guide's referral rebate: the commission ledger books it instead of the rules' split.
            body["rebate_fen"] = int(self.membership.get("referral_rebate_fen") or 0)
        return body

    def view(self, *, include_history: bool = True) -> dict[str, Any]:
        """The order as API.md shows it (no personal data beyond the customer's own address)."""
        body: dict[str, Any] = {
            "order_id": self.order_id,
            "status": self.status.value,
            "customer_id": self.customer_id,
            "lines": [
                {
                    "sku": line.sku,
                    "qty": line.qty,
                    "unit_price_fen": line.unit_price_fen,
                    "discount_fen": line.discount_fen,
                    "payable_fen": line.payable_fen,
                    "refunded_qty": self.refunded_qty.get(line.sku, 0),
                }
                for line in self.lines
            ],
            "subtotal_fen": self.subtotal_fen,
            "discount_fen": self.discount_fen,
            "shipping_fen": self.shipping_fen,
            "total_fen": self.total_fen,
            "refunded_fen": self.refunded_fen,
            "applied": list(self.applied),
            "fulfilment": self.fulfilment,
            "location": self.location,
            "created_at": iso(self.created_at_ms),
            "expires_at": iso(self.expires_at_ms),
            "version": self.version,
        }
        optional = {
            "flash_sale_id": self.flash_sale_id,
            "cancel_reason": self.cancel_reason,
            "transaction_id": self.transaction_id,
            "paid_at": iso(self.paid_at_ms) if self.paid_at_ms else None,
            "tracking_number": self.tracking_number,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        if include_history:
            body["history"] = [entry.to_dict() for entry in self.history]
        return body
