"""What the ordering use cases need from the outside: reads, and one unit of work per change.

The unit of work is ONE DynamoDB transaction in production (`shared.data.stores.ordering_uow`):
each method adds a conditional part, `commit` applies every part or none, and a refused part
comes back as the domain error it means, never as an SDK error:

- `add_order` / `replace_order`: ConcurrentUpdate when the stored order is not the one read
  (another writer got there first; the lifecycle reads again and decides again);
- `reserve_stock`: OutOfStock naming the SKU and location that is short (nothing is held);
- `record_payment`: PaymentAlreadyRecorded when the transaction id was recorded before;
- `record_clashing_payment`: PaymentAlreadyRecorded when this transaction id was recorded for
  this order before (its id was taken by another order's payment);
- `decide_refund`: InvalidTransition when the refund was decided a moment ago;
- `commit_once`: the idempotency record joins the same transaction; a replay of the key gets the
  first response back, the key with another body is IdempotencyKeyReused;
- TemporarilyUnavailable (503) when the database stays busy: nothing applied.

The in-memory fake (`tests/fakes/ordering.py`) keeps the same rules, and one contract test class
(`tests/contract/test_ordering_ports.py`) runs against both, so the fake cannot drift.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.catalog.model import Product
from shared.inventory.locations import Location
from shared.kernel.credited import CreditFacts
from shared.kernel.errors import Conflict
from shared.kernel.events import DomainEvent
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.ordering.model import Order, OrderCoupon, OrderPromotion
from shared.ordering.pricing import PointsOffer

# A refund as the API shows it (API.md, "Refunds"): refund_id, order_id, customer_id, status
# (REQUESTED | ISSUED | REJECTED), lines [{sku, qty, amount_fen}], amount_fen, reason, restock,
# created_at.
Refund = dict[str, Any]


class PaymentAlreadyRecorded(Conflict):
    """This payment transaction id was recorded before (a concurrent or earlier duplicate)."""

    code = "PAYMENT_ALREADY_RECORDED"


class VerifiedPayment(Protocol):
    """A payment notification whose signature the provider checked (`shared.payments`)."""

    @property
    def order_id(self) -> str: ...

    @property
    def transaction_id(self) -> str: ...

    @property
    def amount_fen(self) -> int: ...

    @property
    def paid_at(self) -> str: ...

    @property
    def provider(self) -> str:
        """Who took the money ("hmac", "wechatpay"): a refund goes back through it."""
        ...


@dataclass(frozen=True)
class PaymentRecord:
    """A provider's payment as we received it, recorded once per transaction id: APPLIED to the
    order, or NEEDS_REFUND (late, cancelled order, second payment, no such order) with the reason;
    or, when its transaction id was recorded for another order, once per (transaction id, order)
    as NEEDS_REFUND. Money that arrived is never left unrecorded (docs/orders.md, "Paying")."""

    transaction_id: str
    order_id: str
    amount_fen: int
    paid_at: str
    status: str  # "APPLIED" | "NEEDS_REFUND" | "REFUNDED" (a NEEDS_REFUND one, once paid back)
    reason: str | None
    recorded_at_ms: int
    provider: str = "hmac"
    refunded_by: str | None = None  # "wechatpay:<refund id>", or the finance user who marked it
    refunded_at_ms: int | None = None
    refund_note: str | None = None
    # A NEEDS_REFUND payment's announcement of its order (`announcements.payment_order_part`): the
    # relay derives PaymentNeedsRefund from the record's INSERT with it. Not part of its value.
    order_part: dict[str, Any] | None = field(default=None, compare=False, repr=False)


# -- checkout reads ----------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckoutData:
    """What checkout reads before it prices: found products by SKU, membership, available units
    per (sku, location) read, and the locations read (by id)."""

    products: Mapping[str, Product]
    is_member: bool  # member prices apply (the level's or a paid membership's, docs/pricing.md)
    availability: Mapping[tuple[str, str], int]
    locations: Mapping[str, Location]
    coupons: Mapping[str, OrderCoupon] = field(default_factory=dict)  # the customer's, of those named
    # The promotions not ended when read (cached per process; docs/pricing.md): checkout keeps the
    # ones running at its own `now`. Their gift SKUs' products and stock are read with the cart.
    promotions: Sequence[OrderPromotion] = ()
    # The customer's binding and last share, read in the same batch (docs/commission.md); None: not read.
    credit: CreditFacts | None = None
    points: PointsOffer | None = None  # the points the cart names, with the rule and balance read
    member_discount_bp: int = 0  # off the member's unit prices: the best of its level and paid membership


class CheckoutReader(Protocol):
    def __call__(
        self, skus: Sequence[str], customer_sub: str, locations: Sequence[str] | None, *, coupon_ids: Sequence[str] = ()
    ) -> CheckoutData:
        """`locations` None: every store (same-city). `coupon_ids`: read those of the customer's
        coupons in the same read (one not theirs, or not there, is left out)."""
        ...


# -- order reads -------------------------------------------------------------------------------
class OrderReads(Protocol):
    def get(self, order_id: str) -> Order | None:
        """The order as last written (a consistent read), or None."""
        ...

    def due_orders(self, now_ms: int) -> Iterable[Order]:
        """PENDING_PAYMENT orders whose payment window has passed by `now_ms`, oldest first per
        partition of the expiry queue. May include a few that are no longer due: callers check."""
        ...

    def list_for_customer(
        self, customer_id: str, limit: int, cursor: dict[str, Any] | None
    ) -> tuple[list[Order], dict[str, Any] | None]:
        """The customer's orders, newest first, a page at a time."""
        ...

    def refunds_of(self, order_id: str) -> list[Refund]: ...

    def get_refund(self, order_id: str, refund_id: str) -> Refund | None: ...

    def get_payment(self, transaction_id: str) -> PaymentRecord | None: ...

    def payments_needing_refund(
        self, limit: int, cursor: dict[str, Any] | None
    ) -> tuple[list[PaymentRecord], dict[str, Any] | None]:
        """Every NEEDS_REFUND payment (the clashing ones too), newest first, a page at a time,
        through an index of those alone (no scan; the applied ones are not in it)."""
        ...

    def replay(self, request: IdempotentRequest) -> StoredResponse | None:
        """The response stored under this request's key, if the key was used with the same body;
        IdempotencyKeyReused if it was used with another body; None if it was never used."""
        ...

    def replay_refund(self, order_id: str, refund_id: str, request: IdempotentRequest) -> StoredResponse | None:
        """`replay` for a refund request: the refund `refund_id`, the id derived from its key
        (`shared.ordering.model.refund_id_for`), carries the first answer."""
        ...

    def replay_placed(self, request: IdempotentRequest) -> StoredResponse | None:
        """`replay` for a request that places an order: the order under the id derived from its key
        carries the answer (docs/orders.md, "Idempotency")."""
        ...


# -- the unit of work --------------------------------------------------------------------------
class OrderingUnitOfWork(Protocol):
    """The parts of one transaction. Nothing is written before `commit` / `commit_once`, and then
    every part or none. A unit of work is committed once."""

    def add_order(self, order: Order) -> None:
        """A new order (its id unused)."""
        ...

    def replace_order(self, before: Order, after: Order) -> None:
        """Write `after` only if the stored order is still `before` (same status and version)."""
        ...

    def reserve_stock(self, sku: str, location: str, qty: int) -> None:
        """Hold qty units: available -= qty, reserved += qty, only if available >= qty."""
        ...

    def commit_stock(self, sku: str, location: str, qty: int) -> None:
        """Held units leave: on_hand -= qty, reserved -= qty (on payment)."""
        ...

    def release_stock(self, sku: str, location: str, qty: int) -> None:
        """Held units come back: available += qty, reserved -= qty (cancel, expiry)."""
        ...

    def restock(self, sku: str, location: str, qty: int) -> None:
        """Refunded units back on the shelf: on_hand += qty, available += qty."""
        ...

    def emit(self, event: DomainEvent) -> None:
        """The event that announces this change (the outbox), in the same transaction."""
        ...

    def record_payment(self, payment: PaymentRecord) -> None:
        """Once per transaction id: PaymentAlreadyRecorded at commit otherwise."""
        ...

    def record_clashing_payment(self, payment: PaymentRecord) -> None:
        """A NEEDS_REFUND payment whose transaction id is recorded for another order, kept beside
        that record once per (transaction id, order id): PaymentAlreadyRecorded at commit otherwise."""
        ...

    def add_refund(self, refund: Refund, now_ms: int, carrying: IdempotentRequest | None = None) -> None:
        """A new refund request (status REQUESTED). `carrying`: the request it was made with under
        an Idempotency-Key (its id derived from it): the refund keeps its fingerprint and is its
        idempotency record at `commit_once`."""
        ...

    def decide_refund(self, refund: Refund, status: str, restock: bool) -> None:
        """REQUESTED -> ISSUED | REJECTED, once: InvalidTransition at commit otherwise. An issued
        refund keeps its lines and amount as issued, and `refund["order_part"]` (the order after it,
        `Order.event_payload()`) and `refund["decided_at_ms"]`: RefundIssued is derived from that
        change (`announcements.refund_issued`), no outbox item."""
        ...

    def commit(self) -> None:
        """Apply every part or none; a refused part raises its domain error (module docstring)."""
        ...

    def commit_once(self, request: IdempotentRequest, response: StoredResponse) -> StoredResponse:
        """Join the idempotency record of `request` (answering `response`; none when a new order or
        refund of this unit of work carries it) and commit. Returns `response`, or the response
        stored under the key by the request that used it first (nothing else applied);
        IdempotencyKeyReused when the key came with another body."""
        ...


class OrderingUnitOfWorkFactory(Protocol):
    def __call__(self, *, retry_conflicts: bool = True) -> OrderingUnitOfWork:
        """A fresh unit of work. `retry_conflicts` False: a transaction conflict raises
        TemporarilyUnavailable at once instead of being retried (for a caller with somewhere
        else to go, e.g. a flash purchase that moves off a contended shard)."""
        ...


# -- who holds and gives back an order's units --------------------------------------------------
class UnitHolder(Protocol):
    def hold(self, uow: OrderingUnitOfWork, order: Order) -> None:
        """Add the parts that take the units of `order` (a new order) to its transaction: stock
        reservations by default; a flash sale's shard and buyer count; nothing when its units
        were taken before."""
        ...


class FlashUnitReleaser(Protocol):
    def release(self, uow: OrderingUnitOfWork, order: Order) -> None:
        """Add the parts that give the units of an unpaid flash-sale order (`order.flash_sale_id`
        set) back to its sale, in the transaction that cancels or expires it, so exactly once."""
        ...

    def commit(self, uow: OrderingUnitOfWork, order: Order) -> None:
        """Add the parts that take a paid flash order's units out of its sale's hold (on_hand and
        reserved down at the sale's location, as a normal order's payment does), in the
        transaction that pays it."""
        ...

    def stock_location(self, order: Order) -> str:
        """The location whose stock a flash order's units came from (the sale's `location`):
        a restocked refund returns them there, not to the order's pickup store."""
        ...


# -- the coupons an order holds (shared.coupons; docs/coupons.md, "At checkout") -----------------
class CouponHolder(Protocol):
    def lock(self, uow: OrderingUnitOfWork, order: Order, coupons: Sequence[OrderCoupon]) -> None:
        """Add the parts that lock `coupons` to the new `order` (AVAILABLE -> LOCKED, conditional
        on the coupon read) to its transaction. At commit: CouponInUse (409) when one is no longer
        AVAILABLE (another order took it first); nothing of the order applied."""
        ...

    def use(self, uow: OrderingUnitOfWork, order: Order, now_ms: int) -> None:
        """The order is paid: its coupons LOCKED -> USED, in the payment's transaction."""
        ...

    def give_back(self, uow: OrderingUnitOfWork, order: Order, now_ms: int) -> None:
        """The unpaid order is cancelled or expires: its coupons go back to AVAILABLE if still
        inside their use window, else EXPIRED, in the transaction that cancels it."""
        ...

    def refund(self, uow: OrderingUnitOfWork, order: Order, now_ms: int) -> None:
        """The paid order is refunded in full: its coupons USED by it go back to AVAILABLE if still
        inside their use window, else EXPIRED, in the refund's transaction (a partial refund keeps
        them USED: docs/coupons.md, "Refunds")."""
        ...


class NoCoupons:
    """For services wired without coupons (flash sales; tests of other things): an order that
    names none needs nothing."""

    def lock(self, uow: OrderingUnitOfWork, order: Order, coupons: Sequence[OrderCoupon]) -> None:
        if coupons:
            raise RuntimeError("this service was wired without coupons")

    def use(self, uow: OrderingUnitOfWork, order: Order, now_ms: int) -> None:
        return None

    def give_back(self, uow: OrderingUnitOfWork, order: Order, now_ms: int) -> None:
        return None

    def refund(self, uow: OrderingUnitOfWork, order: Order, now_ms: int) -> None:
        return None


NO_COUPONS = NoCoupons()


# -- lines a refund prices by a policy (shared.membership; docs/membership.md, "Refunds") ---------
class RefundPricing(Protocol):
    def amounts(self, order: Order, units: Mapping[str, int], now_ms: int) -> dict[str, int]:
        """{sku: fen} for the lines of `units` that are refunded by a policy's amount instead of
        by their units (a paid membership's line: the plan's refund policy); {} for none. The
        order caps each at what the line has left (`Order.refund_lines`)."""
        ...


class ByUnits:
    def amounts(self, order: Order, units: Mapping[str, int], now_ms: int) -> dict[str, int]:
        return {}


BY_UNITS = ByUnits()


# -- the points an order spends (shared.membership; docs/membership.md, "Spending at checkout") ----
class PointsReader(Protocol):
    def __call__(self, customer_sub: str, points: int) -> PointsOffer:
        """The merchant's rule for spending points and the member's available points, read (one
        round trip, only for a cart that names points)."""
        ...


class PointsHolder(Protocol):
    def spend(self, uow: OrderingUnitOfWork, order: Order, points: int) -> None:
        """Add the parts that take `points` off the member's balance for the new `order` to its
        transaction, conditional on the balance having them. At commit: InsufficientPoints (409)
        when it does not; nothing of the order applied. What comes back (cancel, expiry, refund)
        the membership consumer gives back from the order's events."""
        ...


class NoPoints:
    """For services wired without membership: an order that spends no points needs nothing."""

    def spend(self, uow: OrderingUnitOfWork, order: Order, points: int) -> None:
        raise RuntimeError("this service was wired without points")


NO_POINTS = NoPoints()
