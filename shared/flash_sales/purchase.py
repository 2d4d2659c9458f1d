"""Flash-sale services: create a sale, show it, buy in it, give unpaid units back, reconcile.

A purchase takes its units from a shard in one of two ways (docs/flash-sales.md, "The purchase"):

- uncontended (the usual case): ONE round trip. The shard's conditional decrement is a part of the
  order's transaction, with the order, its OrderPlaced event, the idempotency record and the
  buyer's count. All or nothing: no give-back, no claim, nothing for the reconciler.
- contended: in DynamoDB concurrent transactions on one item fail with TransactionConflict. When a
  purchase meets one on a shard, this process marks the sale contended for a while
  (`FLASH_SALE_CONTENDED_S`) and its purchases take units with a single-item conditional
  decrement (`take`, which does not conflict with other plain updates), then write the order in a
  transaction on items that are not hot: TWO round trips. Such units are numbered and claimed.

The sale's settings are kept per process (they never change), and shards seen empty a moment ago
are skipped, so a sold-out sale answers without a round trip. Invariants, and who keeps them:

- never sell a unit that does not exist: the shard's `remaining >= qty` condition, either way;
- never let a buyer past the limit: the buyer's count, `bought <= limit - qty`, in the order's
  transaction, either way;
- on the contended path, every unit taken ends up claimed exactly once, by an order or by a VOID
  claim that gives it back to a shard in the same transaction: the claim item's
  `attribute_not_exists` condition. Units whose request died between the decrement and the order
  (or whose decrement was applied twice after a lost response) are claimed by nobody; `reconcile`
  finds them by their numbers and gives them back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from shared.data.stores import flash_sales as store
from shared.data.stores import idempotency as idempotency_store
from shared.data.stores.flash_sales import Claim, ShardShort
from shared.data.transactions import CONFLICT_CODES, Transaction, TransactionCancelled
from shared.flash_sales.model import (
    ContendedSales,
    EmptyShardHints,
    FlashSale,
    Take,
    refuse_same_city,
    release_shard,
)
from shared.inventory.locations import WAREHOUSE, Location
from shared.kernel.clock import iso
from shared.kernel.errors import (
    DomainError,
    LimitReached,
    NotFound,
    OutOfStock,
    SoldOut,
    TemporarilyUnavailable,
)
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.kernel.shards import shard_order
from shared.ordering.checkout import fulfilment_record
from shared.ordering.fulfilment import Fulfilment, FulfilmentType, choose_location
from shared.ordering.model import Order
from shared.ordering.placement import Placement, place
from shared.ordering.pricing import CartLine, PricingRules, price_cart
from shared.platform.observability import count, logger

SALES_KEPT = 512
RECONCILE_GRACE_MS = 24 * 3600 * 1000  # keep checking a sale this long after it ends
VOIDS_PER_TRANSACTION = 90

_sales: dict[str, FlashSale] = {}
hints = EmptyShardHints()
contention = ContendedSales()


# -- the sale ----------------------------------------------------------------------------------
def sale(sale_id: str) -> FlashSale:
    """The sale's settings, read once per process (they never change after creation)."""
    known = _sales.get(sale_id)
    if known is not None:
        return known
    found = store.get(sale_id)
    if found is None:
        raise NotFound("no such flash sale", flash_sale_id=sale_id)
    if len(_sales) >= SALES_KEPT:
        _sales.clear()
    _sales[sale_id] = found
    return found


def create_sale(planned: FlashSale, request: IdempotentRequest, now_ms: int) -> StoredResponse:
    """The sale, its N shards and the reconciler's state in one transaction; a replay of the
    same Idempotency-Key returns the first answer and creates nothing."""
    response = StoredResponse(201, {"flash_sale_id": planned.sale_id, **describe(planned)})
    tx = Transaction()
    store.create(tx, planned, now_ms)
    stored = idempotency_store.commit(tx, request, response)
    if stored is response:
        count("FlashSalesCreated")
    return stored


def describe(planned: FlashSale) -> dict[str, Any]:
    return {
        "sku": planned.sku,
        "price_fen": planned.price_fen,
        "quantity": planned.quantity,
        "per_user_limit": planned.per_user_limit,
        "starts_at": iso(planned.starts_at_ms),
        "ends_at": iso(planned.ends_at_ms),
        "payment_window_s": planned.payment_window_s,
        "shards": planned.shards,
    }


def view(sale_id: str, now_ms: int) -> dict[str, Any]:
    """What a storefront shows: `remaining` is the sum of the shards, read consistently."""
    found = sale(sale_id)
    remaining = sum(level.remaining for level in store.levels(found))
    return {
        "flash_sale_id": found.sale_id,
        **describe(found),
        "remaining": remaining,
        "status": found.status(now_ms, remaining).value,
    }


# -- buying ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FlashOrder:
    """What the buyer asked for: `fulfilment` None is delivery from the warehouse (the address
    is given at payment)."""

    qty: int
    fulfilment: Fulfilment | None = None


def purchase(
    sale_id: str,
    customer_id: str,
    wanted: FlashOrder,
    request: IdempotentRequest,
    now_ms: int,
    rules: PricingRules,
    locations: Callable[[], Sequence[Location]],
) -> StoredResponse:
    """201 and a PENDING_PAYMENT order at the flash price, or: NotStarted / Ended (409), LimitReached
    (429), SoldOut (409, every shard empty), OutOfStock (409, fewer left than asked), or
    TemporarilyUnavailable (503: nothing was sold to this buyer and the client may retry). A replay
    of an Idempotency-Key gets its first answer back."""
    found = sale(sale_id)
    try:
        found.check_purchase(wanted.qty, now_ms)
        placement = _placement(found, wanted, rules, locations)
        if not contention.contended(found.sale_id):
            stored = _buy_in_one_transaction(found, customer_id, wanted.qty, placement, request, now_ms)
            if stored is not None:
                return stored
        takes = take_units(found, customer_id, wanted.qty)
    except DomainError:
        # A replay of a request that succeeded gets its order back even if the sale sold out since.
        stored = idempotency_store.replay(request) if request.client_supplied else None
        if stored is not None:
            return stored
        raise
    return _write_order(found, customer_id, wanted.qty, placement, takes, request, now_ms)


def _placement(
    found: FlashSale, wanted: FlashOrder, rules: PricingRules, locations: Callable[[], Sequence[Location]]
) -> Placement:
    fulfilment = wanted.fulfilment
    lines = [CartLine(found.sku, wanted.qty)]
    if fulfilment is None:
        location, record, kind = WAREHOUSE, {"type": str(FulfilmentType.DELIVERY)}, str(FulfilmentType.DELIVERY)
    else:
        refuse_same_city(str(fulfilment.type))
        location = choose_location(fulfilment, lines, locations() if fulfilment.fixed_location != WAREHOUSE else [], {})
        record, kind = fulfilment_record(fulfilment), str(fulfilment.type)
    quote = price_cart(
        lines,
        {found.sku: found.product},
        is_member=False,
        fulfilment_type=kind,
        rules=rules,
        unit_price_override={found.sku: found.price_fen},
    )
    return Placement(
        quote=quote,
        location=location,
        fulfilment=record,
        payment_window_s=found.payment_window_s,
        flash_sale_id=found.sale_id,
    )


class _ShardEmpty(Exception):
    """The one-transaction order found its shard empty: try the next."""


HOT_SHARD_CODES = CONFLICT_CODES | {"ProvisionedThroughputExceeded", "ThrottlingError"}


def _buy_in_one_transaction(
    found: FlashSale,
    customer_id: str,
    qty: int,
    placement: Placement,
    request: IdempotentRequest,
    now_ms: int,
) -> StoredResponse | None:
    """The uncontended path: the shard's decrement inside the order's transaction, starting at the
    buyer's shard and moving past empty ones. None sends the purchase the contended way: a shard
    was held by another transaction (the sale is then marked contended in this process), DynamoDB
    was busy, a shard had some units but fewer than asked (taking across shards needs numbered
    takes), or every shard tried was empty (that path's sold-out check confirms it)."""
    for shard in shard_order(customer_id, found.shards):
        if hints.seems_empty(found.sale_id, shard):
            continue
        try:
            return _order_with_shard(found, shard, customer_id, qty, placement, request, now_ms)
        except _ShardEmpty:
            continue
    return None


def _order_with_shard(
    found: FlashSale,
    shard: int,
    customer_id: str,
    qty: int,
    placement: Placement,
    request: IdempotentRequest,
    now_ms: int,
) -> StoredResponse | None:
    """One transaction: the order, its event, the idempotency record, the buyer's count and the
    shard's decrement. The stored response, or None (go the contended way); _ShardEmpty."""
    written: list[str] = []

    def take_shard(tx: Transaction, order: Order) -> None:
        written.append(order.order_id)
        store.take_in_order(tx, found.sale_id, shard, qty)

    def count_buyer(tx: Transaction, order: Order) -> None:
        store.count_purchase(tx, found, customer_id, qty)

    try:
        stored = place(
            placement, customer_id, request, now_ms, hold=take_shard, extra=count_buyer, retry_conflicts=False
        )
    except TransactionCancelled as cancelled:
        _refused_by(found, shard, cancelled)
        return None  # the shard had units, fewer than asked: take them across shards
    except TemporarilyUnavailable as busy:
        # The shard held by another transaction, or throttled (the other path writes it at half the
        # write units): the sale is contended. Anything else (another item busy, a timeout after
        # which the order may even exist) sends only this purchase the other way; its transaction
        # carries the same idempotency record, so it cannot place a second order.
        if busy.details.get("reasons", {}).get(f"{store.SHARD_PREFIX}{shard}") in HOT_SHARD_CODES:
            contention.note_conflict(found.sale_id)
            count("FlashContended")
        return None
    if stored.body.get("order_id") in written:  # else a replay of an earlier request: nothing taken
        hints.note_stocked(found.sale_id, shard)
        count("FlashOrdersPlaced")
        count("FlashOrdersInOneTransaction")
    return stored


def _refused_by(found: FlashSale, shard: int, cancelled: TransactionCancelled) -> None:
    """Raises why the one-transaction order was cancelled (the limit, an empty shard, something
    else); returns when the shard had some units but fewer than asked."""
    if store.LIMIT_LABEL in cancelled.failed:
        raise _limit_reached(found) from cancelled
    left = store.left_on(cancelled, f"{store.SHARD_PREFIX}{shard}")
    if left is None:
        raise TemporarilyUnavailable(
            "the order could not be written; retry", flash_sale_id=found.sale_id
        ) from cancelled
    if left == 0:
        hints.note_empty(found.sale_id, shard)
        raise _ShardEmpty from cancelled


def _limit_reached(found: FlashSale) -> LimitReached:
    count("FlashLimitReached")
    return LimitReached(
        "this buyer has bought the most this sale allows",
        flash_sale_id=found.sale_id,
        per_user_limit=found.per_user_limit,
    )


def take_units(found: FlashSale, customer_id: str, qty: int) -> list[Take]:
    """Take qty units, starting at the buyer's shard and moving on past empty or busy ones. One
    round trip when the first shard has them. Raises SoldOut only when every shard is empty."""
    takes: list[Take] = []
    order = shard_order(customer_id, found.shards)
    skipped = [shard for shard in order if hints.seems_empty(found.sale_id, shard)]
    need, busy = _take_across(found, [s for s in order if s not in skipped], qty, takes)
    if need and skipped and not busy:
        # Shards this process saw empty a moment ago may have had units given back since (an
        # expired order, another process's give-back). SOLD_OUT must be true, so before saying
        # it, one consistent read (read capacity, not the hot shards' write ceiling) checks them.
        refilled = {level.shard for level in store.levels(found) if level.remaining > 0}
        for shard in refilled:
            hints.note_stocked(found.sale_id, shard)
        need, busy = _take_across(found, [s for s in skipped if s in refilled], need, takes)
    if need == 0:
        return takes
    if takes:
        give_back(found, takes)
    if busy:
        count("FlashBusy")
        raise TemporarilyUnavailable("the flash sale is busy; retry", flash_sale_id=found.sale_id)
    if takes:
        raise OutOfStock("fewer units are left than asked", sku=found.sku, flash_sale_id=found.sale_id)
    count("FlashSoldOut")
    raise SoldOut("the flash sale is sold out", flash_sale_id=found.sale_id)


def _take_across(found: FlashSale, shards: list[int], need: int, takes: list[Take]) -> tuple[int, bool]:
    """Take from `shards` in turn until `need` is met; appends to `takes`. Returns what is still
    needed and whether a shard was busy (throttled, or held by a transaction)."""
    busy = False
    for shard in shards:
        if need == 0:
            break
        try:
            taken = _take_from(found.sale_id, shard, need)
        except TemporarilyUnavailable:
            busy = True  # the next shard may not be
            continue
        if taken is not None:
            takes.append(taken)
            need -= taken.qty
    return need, busy


def _take_from(sale_id: str, shard: int, need: int) -> Take | None:
    try:
        taken = store.take(sale_id, shard, need)
    except ShardShort as short:
        if short.remaining <= 0:
            hints.note_empty(sale_id, shard)
            return None
        try:  # fewer than needed: take what is there, and look for the rest on the next shards
            taken = store.take(sale_id, shard, short.remaining)
        except ShardShort:
            return None
    hints.note_stocked(sale_id, shard)
    return taken


def _write_order(
    found: FlashSale,
    customer_id: str,
    qty: int,
    placement: Placement,
    takes: list[Take],
    request: IdempotentRequest,
    now_ms: int,
) -> StoredResponse:
    written: list[str] = []

    def count_and_claim(tx: Transaction, order: Order) -> None:
        written.append(order.order_id)
        store.count_purchase(tx, found, customer_id, qty)
        for taken in takes:
            store.claim(tx, found.sale_id, taken, order.order_id, now_ms)

    try:
        stored = place(placement, customer_id, request, now_ms, hold=_held_already, extra=count_and_claim)
    except TransactionCancelled as cancelled:
        give_back(found, takes)
        if store.LIMIT_LABEL in cancelled.failed:
            raise _limit_reached(found) from cancelled
        # Our units were given back by the reconciler (this request took longer than it waits).
        raise TemporarilyUnavailable(
            "the order could not be written; retry", flash_sale_id=found.sale_id
        ) from cancelled
    except TemporarilyUnavailable:
        # The transaction may or may not have applied. Giving the units back settles it: the
        # VOID claims fail if the order claimed them, and then the order exists.
        outcome = give_back(found, takes)
        if outcome.claimed_by_order:
            stored_first = idempotency_store.replay(request)
            if stored_first is not None:
                return stored_first
        raise
    except Exception:
        give_back(found, takes)
        raise
    if stored.body.get("order_id") not in written:
        give_back(found, takes)  # a replay of an earlier request: its order holds its own units
    else:
        count("FlashOrdersPlaced")
        count("FlashOrdersAfterTake")
    return stored


def _held_already(tx: Transaction, order: Order) -> None:
    """The units left the shard before the order was written; nothing to hold here."""


# -- giving units back -------------------------------------------------------------------------
@dataclass
class GiveBack:
    returned: list[Take] = field(default_factory=list)
    claimed_by_order: list[Take] = field(default_factory=list)
    voided_before: list[Take] = field(default_factory=list)
    unsettled: list[Take] = field(default_factory=list)  # left to the reconciler


def give_back(found: FlashSale, takes: list[Take], now_ms: int | None = None) -> GiveBack:
    """Return units that no order will hold: VOID claims and the shard increments in one
    transaction, so the units come back at most once, and never while an order holds them."""
    outcome = GiveBack()
    pending = list(takes)
    for _ in range(2):
        if not pending:
            break
        tx = Transaction()
        _void_and_return(tx, found.sale_id, pending, now_ms)
        try:
            tx.commit()
            outcome.returned.extend(pending)
            count("FlashUnitsGivenBack", store.units_of(pending))
            pending = []
        except TransactionCancelled as cancelled:
            pending = _sort_failed_claims(cancelled, found.sale_id, pending, outcome)
        except TemporarilyUnavailable:
            break
    outcome.unsettled.extend(pending)
    if outcome.unsettled:
        logger.warning("units left for the reconciler", extra={"flash_sale_id": found.sale_id})
    return outcome


def _void_and_return(tx: Transaction, sale_id: str, takes: list[Take], now_ms: int | None) -> None:
    by_shard: dict[int, int] = defaultdict(int)
    for taken in takes:
        store.claim(tx, sale_id, taken, None, now_ms or 0)
        by_shard[taken.shard] += taken.qty
    for shard, qty in sorted(by_shard.items()):
        store.give_back_units(tx, sale_id, shard, qty)


def _sort_failed_claims(
    cancelled: TransactionCancelled, sale_id: str, takes: list[Take], outcome: GiveBack
) -> list[Take]:
    failed = set(store.claim_labels(cancelled))
    still: list[Take] = []
    for taken in takes:
        label = f"{store.CLAIM_PREFIX}{taken.shard}:{taken.first_unit}"
        if label not in failed:
            still.append(taken)
        elif store.voided(cancelled, label):
            outcome.voided_before.append(taken)
        else:
            outcome.claimed_by_order.append(taken)
    return still


def release(tx: Transaction, order: Order) -> None:
    """The releaser of unpaid flash orders (cancel, expiry): the units go back to a shard and the
    buyer's count goes down, in the transaction that cancels the order (so exactly once)."""
    assert order.flash_sale_id is not None
    found = sale(order.flash_sale_id)
    qty = sum(line.qty for line in order.lines)
    store.give_back_units(tx, found.sale_id, release_shard(order.order_id, found.shards), qty)
    store.uncount_purchase(tx, found.sale_id, order.customer_id, qty)


# -- reconciliation ----------------------------------------------------------------------------
def reconcile(now_ms: int, settle_ms: int) -> int:
    """Give back units that nobody claimed, on every live or recently ended sale; returns how many.
    A unit is judged only once `settle_ms` have passed since it was seen taken, so a purchase in
    flight normally claims its units first; if one is slower, the VOID claim wins and that
    purchase answers 503 having sold nothing: never both."""
    returned = 0
    for found in store.sales_ending_after(now_ms - RECONCILE_GRACE_MS):
        if now_ms >= found.starts_at_ms:
            returned += reconcile_sale(found, now_ms, settle_ms)
    if returned:
        count("FlashUnitsReconciled", returned)
        logger.warning("reconciled unclaimed flash units", extra={"units": returned})
    return returned


def reconcile_sale(found: FlashSale, now_ms: int, settle_ms: int) -> int:
    marks, version = store.marks(found.sale_id)
    new_marks = dict(marks)
    returned = 0
    for level in store.levels(found):
        checked, pending, seen_at = marks.get(str(level.shard), [0, 0, 0])
        if pending > checked and now_ms - seen_at >= settle_ms:
            settled = _return_unclaimed(found.sale_id, level.shard, checked, pending, now_ms)
            if settled is not None:
                returned += settled
                checked = pending
        if pending == checked and level.taken > checked:
            pending, seen_at = level.taken, now_ms
        new_marks[str(level.shard)] = [checked, pending, seen_at]
    if new_marks != marks:
        tx = Transaction()
        store.save_marks(tx, found.sale_id, new_marks, version)
        # If another reconciler moved the marks first, its VOID claims and ours never overlap.
        with suppress(TransactionCancelled):
            tx.commit()
    return returned


def _return_unclaimed(sale_id: str, shard: int, checked: int, through: int, now_ms: int) -> int | None:
    """Units checked+1 .. through of a shard that no claim covers go back, each with a VOID claim of
    its own (any late claim starts at one of them and so fails). None if that could not be settled
    now (it is tried again on the next run)."""
    missing = unclaimed(store.claims_between(sale_id, shard, checked, through), checked, through)
    returned = 0
    for start in range(0, len(missing), VOIDS_PER_TRANSACTION):
        chunk = [Take(shard, unit, 1) for unit in missing[start : start + VOIDS_PER_TRANSACTION]]
        tx = Transaction()
        _void_and_return(tx, sale_id, chunk, now_ms)
        try:
            tx.commit()
        except (TransactionCancelled, TemporarilyUnavailable):
            return None  # a claim appeared meanwhile, or DynamoDB is busy: look again next run
        returned += len(chunk)
    return returned


def unclaimed(claims: Sequence[Claim], checked: int, through: int) -> list[int]:
    """The unit numbers in (checked, through] that no claim covers."""
    covered: set[int] = set()
    for found_claim in claims:
        covered.update(range(found_claim.first_unit, found_claim.first_unit + found_claim.qty))
    return [unit for unit in range(checked + 1, through + 1) if unit not in covered]
