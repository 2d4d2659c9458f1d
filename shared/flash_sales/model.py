"""Flash sales (秒杀): the campaign, its stock shards and the rules of buying. Pure domain code.

A sale's quantity is split over N shard items (docs/flash-sales.md): one DynamoDB partition
takes about 1,000 single-item writes per second, and every flash order takes its units from a
shard with one conditional decrement, so N shards carry about N x 1,000 x HEADROOM orders per
second. A buyer starts at the shard `start_shard(customer, N)` names and moves on when a shard is
empty; a sale is SOLD_OUT only when every shard is.

Each shard counts the units it ever gave out (`taken`), so every unit has a number on its shard:
a take of q units ending at `taken = e` owns units e-q+1 .. e. An order claims the numbers it
holds in the same transaction that writes it; numbers nobody claimed (a crash between the
decrement and the order, a response lost and retried) are found and given back by `reconcile`.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from shared.kernel.clock import Clock
from shared.kernel.errors import Ended, LimitReached, NotStarted, RuleViolation, SaleCancelled, ValidationFailed
from shared.kernel.shards import MAX_SHARDS, shards_for_peak, start_shard

# A sale's units are held out of this location's stock unless it names another; the value of
# shared.inventory.locations.WAREHOUSE (a model imports nothing in shared but the kernel).
STOCK_LOCATION = "WH"
MAX_PER_USER_LIMIT = 20  # an order claims at most this many takes in its transaction
MAX_QUANTITY = 1_000_000
MAX_WINDOW_MS = 30 * 24 * 3600 * 1000
MAX_PAYMENT_WINDOW_S = 24 * 3600


class SaleStatus(StrEnum):
    NOT_STARTED = "NOT_STARTED"
    ACTIVE = "ACTIVE"
    SOLD_OUT = "SOLD_OUT"
    ENDED = "ENDED"
    CANCELLED = "CANCELLED"


def release_shard(order_id: str, shards: int) -> int:
    """Where an unpaid order's units go back: any shard will do (units are alike); hashing the
    order id spreads the returns."""
    return start_shard(order_id, shards)


def new_sale_id(now_ms: int) -> str:
    return f"fs{now_ms:012x}{secrets.token_hex(6)}"


class ListedProduct(Protocol):
    """What a sale needs of the catalogue's product (shared.catalog.model.Product has it)."""

    @property
    def sku(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def price_fen(self) -> int: ...


@dataclass(frozen=True)
class NewFlashSale:
    """A merchant admin's request for a sale. None: the setting's default (SaleDefaults)."""

    sku: str
    price_fen: int
    quantity: int
    per_user_limit: int
    starts_at_ms: int
    ends_at_ms: int
    payment_window_s: int | None = None
    expected_peak_per_s: int | None = None
    location: str = STOCK_LOCATION  # whose stock the units are held out of (docs/flash-sales.md, "Stock")


@dataclass(frozen=True)
class SaleDefaults:
    """What a sale gets when its creator does not say (FLASH_SALE_DEFAULT_PEAK_PER_S, the orders'
    ORDER_PAYMENT_WINDOW_S)."""

    payment_window_s: int = 900
    peak_per_s: int = 2_000


@dataclass(frozen=True)
class FlashSale:
    """The campaign as created; immutable, so a process may keep it for the life of the sale."""

    sale_id: str
    sku: str
    price_fen: int
    quantity: int
    per_user_limit: int
    starts_at_ms: int
    ends_at_ms: int
    payment_window_s: int
    shards: int
    product_name: str
    list_price_fen: int
    location: str = STOCK_LOCATION  # the units are held (reserved) there from creation to sale or end
    holds_stock: bool = True  # False: created before sales held stock; no stock moves for it
    # Set once by POST /admin/flash-sales/{id}/cancel; the sale then closes there and then
    # (docs/flash-sales.md, "Cancelling a sale").
    cancelled_at_ms: int | None = None

    @property
    def closes_at_ms(self) -> int:
        """When it stops selling and the reconciler may settle it: its end, or its cancellation."""
        return self.ends_at_ms if self.cancelled_at_ms is None else min(self.ends_at_ms, self.cancelled_at_ms)

    @classmethod
    def plan(
        cls, sale_id: str, product: ListedProduct, wanted: NewFlashSale, defaults: SaleDefaults, now_ms: int
    ) -> FlashSale:
        """A new sale, or ValidationFailed (422) naming everything that is wrong with it."""
        payment_window_s = defaults.payment_window_s if wanted.payment_window_s is None else wanted.payment_window_s
        problems = _problems(product, wanted, now_ms)
        if not 1 <= payment_window_s <= MAX_PAYMENT_WINDOW_S:
            problems.append({"field": "payment_window_s", "problem": f"must be 1..{MAX_PAYMENT_WINDOW_S} seconds"})
        if problems:
            raise ValidationFailed("the flash sale is not valid", errors=problems)
        return cls(
            sale_id=sale_id,
            sku=product.sku,
            price_fen=wanted.price_fen,
            quantity=wanted.quantity,
            per_user_limit=wanted.per_user_limit,
            starts_at_ms=wanted.starts_at_ms,
            ends_at_ms=wanted.ends_at_ms,
            payment_window_s=payment_window_s,
            shards=shards_for_peak(wanted.expected_peak_per_s or defaults.peak_per_s, wanted.quantity, MAX_SHARDS),
            product_name=product.name,
            list_price_fen=product.price_fen,
            location=wanted.location,
        )

    def status(self, now_ms: int, remaining: int) -> SaleStatus:
        if self.cancelled_at_ms is not None:
            return SaleStatus.CANCELLED
        if now_ms < self.starts_at_ms:
            return SaleStatus.NOT_STARTED
        if now_ms >= self.ends_at_ms:
            return SaleStatus.ENDED
        return SaleStatus.SOLD_OUT if remaining <= 0 else SaleStatus.ACTIVE

    def check_purchase(self, qty: int, now_ms: int) -> None:
        """What can be refused without touching the database."""
        if self.cancelled_at_ms is not None:
            raise SaleCancelled("the flash sale was cancelled", flash_sale_id=self.sale_id)
        if now_ms < self.starts_at_ms:
            raise NotStarted(
                "the flash sale has not started", flash_sale_id=self.sale_id, starts_at_ms=self.starts_at_ms
            )
        if now_ms >= self.ends_at_ms:
            raise Ended("the flash sale has ended", flash_sale_id=self.sale_id)
        if qty > self.per_user_limit:
            raise LimitReached(
                "more units than one buyer may have", flash_sale_id=self.sale_id, per_user_limit=self.per_user_limit
            )


def _problems(product: ListedProduct, wanted: NewFlashSale, now_ms: int) -> list[dict[str, str]]:
    problems = []
    if not 1 <= wanted.quantity <= MAX_QUANTITY:
        problems.append({"field": "quantity", "problem": f"must be 1..{MAX_QUANTITY}"})
    if not 1 <= wanted.per_user_limit <= MAX_PER_USER_LIMIT:
        problems.append({"field": "per_user_limit", "problem": f"must be 1..{MAX_PER_USER_LIMIT}"})
    if not 1 <= wanted.price_fen <= product.price_fen:
        problems.append({"field": "price_fen", "problem": f"must be 1..{product.price_fen} (the list price)"})
    if wanted.ends_at_ms <= wanted.starts_at_ms:
        problems.append({"field": "ends_at", "problem": "must be after starts_at"})
    elif wanted.ends_at_ms - wanted.starts_at_ms > MAX_WINDOW_MS:
        problems.append({"field": "ends_at", "problem": "a flash sale lasts at most 30 days"})
    if wanted.ends_at_ms <= now_ms:
        problems.append({"field": "ends_at", "problem": "must be in the future"})
    return problems


def refuse_same_city(fulfilment_type: str) -> None:
    if fulfilment_type == "same_city":
        # Same-city picks a store by its stock; flash units are the sale's, not a store's.
        raise RuleViolation("same-city delivery is not offered for flash sales", fulfilment_type=fulfilment_type)


# -- shards, takes and claims ------------------------------------------------------------------
@dataclass(frozen=True)
class Take:
    """Units taken from one shard by one conditional decrement: numbers first_unit .. last_unit."""

    shard: int
    last_unit: int  # the shard's `taken` after the decrement
    qty: int

    @property
    def first_unit(self) -> int:
        return self.last_unit - self.qty + 1


def units_of(takes: Sequence[Take]) -> int:
    return sum(taken.qty for taken in takes)


class ShardShort(Exception):
    """The shard has fewer units than asked (`remaining` as the failed condition saw it)."""

    def __init__(self, remaining: int) -> None:
        super().__init__(f"shard has {remaining} units")
        self.remaining = remaining


@dataclass(frozen=True)
class ShardLevel:
    """One shard as read: remaining = initial + returned - ordered - taken."""

    shard: int
    initial: int
    remaining: int
    taken: int  # units taken by single-item decrements (the contended path); numbers them
    returned: int
    ordered: int = 0  # units taken inside an order's own transaction
    closed: bool = False  # the sale was cancelled: no purchase takes from it any more


class ClaimStatus(StrEnum):
    ORDER = "ORDER"  # an order holds the units
    VOID = "VOID"  # the units went back to a shard; no order can ever claim them


@dataclass(frozen=True)
class UnitClaim:
    """Who owns units first_unit .. first_unit + qty - 1 of a shard (the contended path's takes)."""

    first_unit: int
    qty: int
    status: ClaimStatus


class UnitsClaimed(Exception):
    """A give-back did not apply: the units of `claimed` were claimed already (by an order, or
    given back before), with that claim's status. Empty when it failed for another reason."""

    def __init__(self, claimed: dict[Take, ClaimStatus]) -> None:
        super().__init__(f"{len(claimed)} takes claimed already")
        self.claimed = claimed


def unclaimed(claims: Sequence[UnitClaim], checked: int, through: int) -> list[int]:
    """The unit numbers in (checked, through] that no claim covers."""
    covered: set[int] = set()
    for found_claim in claims:
        covered.update(range(found_claim.first_unit, found_claim.first_unit + found_claim.qty))
    return [unit for unit in range(checked + 1, through + 1) if unit not in covered]


@dataclass(frozen=True)
class ShardMark:
    """How far the reconciler has judged one shard: units 1..checked are settled; units up to
    `pending` were seen taken at `seen_at_ms` and are judged once the settle time has passed."""

    checked: int = 0
    pending: int = 0
    seen_at_ms: int = 0


@dataclass(frozen=True)
class ReconcileMarks:
    """Every shard's mark, and the version they were read at (-1: none stored yet)."""

    shards: dict[int, ShardMark]
    version: int = -1


# -- what one process remembers for a moment ---------------------------------------------------
class ExpiringMarks:
    """Per process: keys marked for `lifetime_s` seconds of `clock`'s monotonic time (thread-safe,
    bounded)."""

    def __init__(self, lifetime_s: float, clock: Clock) -> None:
        self.lifetime_s = lifetime_s
        self._clock = clock
        self._until: dict[Hashable, float] = {}
        self._lock = threading.Lock()

    def mark(self, key: Hashable) -> None:
        with self._lock:
            if len(self._until) > 10_000:
                self._until.clear()
            self._until[key] = self._clock.monotonic() + self.lifetime_s

    def unmark(self, key: Hashable) -> None:
        with self._lock:
            self._until.pop(key, None)

    def marked(self, key: Hashable) -> bool:
        until = self._until.get(key)
        return until is not None and until > self._clock.monotonic()


class EmptyShardHints(ExpiringMarks):
    """Shards seen empty a moment ago are skipped, so a sold-out sale answers SOLD_OUT without one
    round trip per shard per buyer. A hint lives `lifetime_s` (a unit given back meanwhile is found
    by the next buyer after that); a successful take clears it."""

    def note_empty(self, sale_id: str, shard: int) -> None:
        self.mark((sale_id, shard))

    def note_stocked(self, sale_id: str, shard: int) -> None:
        self.unmark((sale_id, shard))

    def seems_empty(self, sale_id: str, shard: int) -> bool:
        return self.marked((sale_id, shard))


class ContendedSales(ExpiringMarks):
    """Sales whose shards were found held by another transaction (or throttled) a moment ago.
    While a sale is marked (`lifetime_s`), its purchases take units by a plain single-item
    decrement and write the order afterwards (two round trips, no transaction on the hot item);
    otherwise the decrement is a part of the order's transaction (one round trip).
    docs/flash-sales.md, "The purchase"."""

    def note_conflict(self, sale_id: str) -> None:
        self.mark(sale_id)

    def clear(self, sale_id: str) -> None:
        self.unmark(sale_id)

    def contended(self, sale_id: str) -> bool:
        return self.marked(sale_id)
