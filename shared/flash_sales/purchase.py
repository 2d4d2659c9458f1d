"""Buying in a flash sale (docs/flash-sales.md, "The purchase").

A purchase takes its units from a shard in one of two ways:

- uncontended (the usual case): ONE round trip. The shard's conditional decrement is a part of the
  order's unit of work, with the order, its OrderPlaced event, the idempotency record and the
  buyer's count. All or nothing: no give-back, no claim, nothing for the reconciler.
- contended: in DynamoDB concurrent transactions on one item fail with TransactionConflict. When a
  purchase meets one on a shard, this process marks the sale contended for a while
  (`FLASH_SALE_CONTENDED_S`) and its purchases take units with a single-item conditional
  decrement (`ShardStore.take`, which does not conflict with other plain updates), then write the
  order on items that are not hot: TWO round trips. Such units are numbered and claimed.

Invariants, and who keeps them:

- never sell a unit that does not exist: the shard's `remaining >= qty` condition, either way;
- never let a buyer past the limit: the buyer's count, `bought <= limit - qty`, in the order's
  unit of work, either way;
- on the contended path, every unit taken ends up claimed exactly once, by an order or by a VOID
  claim that gives it back to a shard in the same write (`give_back`). Units whose request died
  between the decrement and the order (or whose decrement was applied twice after a lost
  response) are claimed by nobody; the reconciler finds them by their numbers and gives them back.
"""

from __future__ import annotations

from shared.catalog.model import Product
from shared.flash_sales.campaign import SaleBook
from shared.flash_sales.commands import FlashOrder
from shared.flash_sales.give_back import UnitReturns
from shared.flash_sales.model import (
    ContendedSales,
    EmptyShardHints,
    FlashSale,
    ShardShort,
    Take,
    UnitsClaimed,
    refuse_same_city,
)
from shared.flash_sales.ports import PurchaseParts, ShardStore, StoredResponses, StoreList
from shared.inventory.locations import WAREHOUSE
from shared.kernel.clock import Clock
from shared.kernel.errors import (
    DomainError,
    FulfilmentRequired,
    LimitReached,
    OutOfStock,
    SaleCancelled,
    SoldOut,
    TemporarilyUnavailable,
)
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.kernel.shards import shard_order
from shared.ordering.addresses import NO_SAVED_ADDRESSES, AddressBook, SavedAddresses
from shared.ordering.checkout import fulfilment_record
from shared.ordering.fulfilment import choose_location
from shared.ordering.model import Order
from shared.ordering.placement import OrderPlacement, Placement
from shared.ordering.ports import OrderingUnitOfWork
from shared.ordering.pricing import CartLine, PricingRules, price_cart
from shared.platform.observability import count


class _ShardEmpty(Exception):
    """The one-transaction order found its shard empty: try the next."""


class _TakeInOrder:
    """The uncontended path's units: the shard's decrement and the buyer's count, in the order's
    own unit of work."""

    def __init__(self, parts: PurchaseParts, sale: FlashSale, shard: int, customer_id: str, qty: int) -> None:
        self._parts, self._sale, self._shard, self._customer_id, self._qty = parts, sale, shard, customer_id, qty

    def hold(self, uow: OrderingUnitOfWork, order: Order) -> None:
        # The count first: where parts are named by their place, the limit is the refusal to report.
        self._parts.count_purchase(uow, self._sale, self._customer_id, self._qty)
        self._parts.take_in_order(uow, self._sale.sale_id, self._shard, self._qty)


class _ClaimTaken:
    """The contended path's units left their shards before the order: the buyer's count and the
    claims of the takes join the order's unit of work."""

    def __init__(
        self, parts: PurchaseParts, sale: FlashSale, customer_id: str, qty: int, takes: list[Take], now_ms: int
    ) -> None:
        self._parts, self._sale, self._customer_id, self._qty = parts, sale, customer_id, qty
        self._takes, self._now_ms = takes, now_ms

    def hold(self, uow: OrderingUnitOfWork, order: Order) -> None:
        self._parts.count_purchase(uow, self._sale, self._customer_id, self._qty)
        for taken in self._takes:
            self._parts.claim(uow, self._sale.sale_id, taken, order.order_id, self._now_ms)


class Purchases:
    def __init__(
        self,
        *,
        book: SaleBook,
        shards: ShardStore,
        parts: PurchaseParts,
        orders: OrderPlacement,
        replays: StoredResponses,
        returns: UnitReturns,
        stores: StoreList,
        rules: PricingRules,
        hints: EmptyShardHints,
        contention: ContendedSales,
        clock: Clock,
        addresses: SavedAddresses = NO_SAVED_ADDRESSES,
    ) -> None:
        self._book = book
        self._shards = shards
        self._parts = parts
        self._orders = orders
        self._replays = replays
        self._returns = returns
        self._stores = stores
        self._rules = rules
        self.hints = hints
        self.contention = contention
        self._clock = clock
        self._addresses = AddressBook(addresses, clock)

    def purchase(
        self, sale_id: str, customer_id: str, wanted: FlashOrder, request: IdempotentRequest
    ) -> StoredResponse:
        """201 and a PENDING_PAYMENT order at the flash price, or: NotStarted / Ended (409),
        LimitReached (429), SoldOut (409, every shard empty), OutOfStock (409, fewer left than
        asked), or TemporarilyUnavailable (503: nothing was sold to this buyer and the client may
        retry), FulfilmentRequired (422: no fulfilment and no saved address), SaleCancelled (409:
        the sale, or the shard a decrement met, was cancelled). A replay of an
        Idempotency-Key gets its first answer back."""
        sale = self._book.get(sale_id)
        try:
            sale.check_purchase(wanted.qty, self._clock.now_ms())
            if wanted.fulfilment is None:  # the saved default address, or 422: never a delivery to nowhere
                wanted = FlashOrder(wanted.qty, self._addresses.delivery_for(customer_id))
            placement = self._placement(sale, wanted)
            if not self.contention.contended(sale.sale_id):
                stored = self._buy_in_one_transaction(sale, customer_id, wanted.qty, placement, request)
                if stored is not None:
                    return stored
            takes = self.take_units(sale, customer_id, wanted.qty)
        except DomainError as refused:
            if isinstance(refused, SaleCancelled):
                self._book.forget(sale_id)  # found on a closed shard: read the sale again next time
            # A replay of a request that succeeded gets its order back even if the sale sold out since.
            stored = self._replays.replay_placed(request) if request.client_supplied else None
            if stored is not None:
                return stored
            raise
        return self._write_order(sale, customer_id, wanted.qty, placement, takes, request)

    def _placement(self, sale: FlashSale, wanted: FlashOrder) -> Placement:
        fulfilment = wanted.fulfilment
        lines = [CartLine(sale.sku, wanted.qty)]
        if fulfilment is None:
            raise FulfilmentRequired("a flash order needs a fulfilment or a saved address")
        refuse_same_city(str(fulfilment.type))
        stores = self._stores.list() if fulfilment.fixed_location != WAREHOUSE else []
        location = choose_location(fulfilment, lines, stores, {})
        record, kind = fulfilment_record(fulfilment), str(fulfilment.type)
        quote = price_cart(
            lines,
            {sale.sku: Product(sku=sale.sku, name=sale.product_name, price_fen=sale.list_price_fen)},
            is_member=False,
            fulfilment_type=kind,
            rules=self._rules,
            unit_price_override={sale.sku: sale.price_fen},
        )
        return Placement(
            quote=quote,
            location=location,
            fulfilment=record,
            payment_window_s=sale.payment_window_s,
            flash_sale_id=sale.sale_id,
        )

    # -- one round trip ------------------------------------------------------------------------
    def _buy_in_one_transaction(
        self, sale: FlashSale, customer_id: str, qty: int, placement: Placement, request: IdempotentRequest
    ) -> StoredResponse | None:
        """The uncontended path: the shard's decrement inside the order's transaction, starting at
        the buyer's shard and moving past empty ones. None sends the purchase the contended way: a
        shard was held by another transaction (the sale is then marked contended in this process),
        the database was busy, a shard had some units but fewer than asked (taking across shards
        needs numbered takes), or every shard tried was empty (that path's sold-out check confirms it)."""
        for shard in shard_order(customer_id, sale.shards):
            if self.hints.seems_empty(sale.sale_id, shard):
                continue
            try:
                return self._order_with_shard(sale, shard, customer_id, qty, placement, request)
            except _ShardEmpty:
                continue
        return None

    def _order_with_shard(
        self,
        sale: FlashSale,
        shard: int,
        customer_id: str,
        qty: int,
        placement: Placement,
        request: IdempotentRequest,
    ) -> StoredResponse | None:
        """One transaction: the order (carrying the request's idempotency), the buyer's count and the
        shard's decrement. The stored response, or None (go the contended way); _ShardEmpty."""
        holder = _TakeInOrder(self._parts, sale, shard, customer_id, qty)
        try:
            stored = self._orders.place(placement, customer_id, request, holder=holder, retry_conflicts=False)
        except LimitReached:
            count("FlashLimitReached")
            raise
        except ShardShort as short:
            if short.remaining > 0:
                return None  # the shard had units, fewer than asked: take them across shards
            self.hints.note_empty(sale.sale_id, shard)
            raise _ShardEmpty from short
        except TemporarilyUnavailable as busy:
            # The shard held by another transaction, or throttled (the other path writes it at half
            # the write units): the sale is contended. Anything else (another item busy, a timeout
            # after which the order may even exist) sends only this purchase the other way; its
            # order has the same id (derived from the key), so it cannot place a second order.
            if self._parts.busy_on_shard(busy, shard):
                self.contention.note_conflict(sale.sale_id)
                count("FlashContended")
            return None
        if not stored.replayed:  # else a replay of an earlier request
            self.hints.note_stocked(sale.sale_id, shard)
            count("FlashOrdersPlaced")
            count("FlashOrdersInOneTransaction")
        return stored

    # -- two round trips -----------------------------------------------------------------------
    def take_units(self, sale: FlashSale, customer_id: str, qty: int) -> list[Take]:
        """Take qty units, starting at the buyer's shard and moving on past empty or busy ones. One
        round trip when the first shard has them. Raises SoldOut only when every shard is empty."""
        takes: list[Take] = []
        try:
            return self._take_units(sale, customer_id, qty, takes)
        except SaleCancelled:
            if takes:  # taken before the cancel: back to their shards, which the reconciler settles
                self._returns.give_back(sale, takes)
            raise

    def _take_units(self, sale: FlashSale, customer_id: str, qty: int, takes: list[Take]) -> list[Take]:
        order = shard_order(customer_id, sale.shards)
        skipped = [shard for shard in order if self.hints.seems_empty(sale.sale_id, shard)]
        need, busy = self._take_across(sale, [s for s in order if s not in skipped], qty, takes)
        if need and skipped and not busy:
            # Shards this process saw empty a moment ago may have had units given back since (an
            # expired order, another process's give-back). SOLD_OUT must be true, so before saying
            # it, one consistent read (read capacity, not the hot shards' write ceiling) checks them.
            levels = self._shards.levels(sale)
            if any(level.closed for level in levels):
                raise SaleCancelled("the flash sale was cancelled", flash_sale_id=sale.sale_id)
            refilled = {level.shard for level in levels if level.remaining > 0}
            for shard in refilled:
                self.hints.note_stocked(sale.sale_id, shard)
            need, busy = self._take_across(sale, [s for s in skipped if s in refilled], need, takes)
        if need == 0:
            return takes
        if takes:
            self._returns.give_back(sale, takes)
        if busy:
            count("FlashBusy")
            raise TemporarilyUnavailable("the flash sale is busy; retry", flash_sale_id=sale.sale_id)
        if takes:
            raise OutOfStock("fewer units are left than asked", sku=sale.sku, flash_sale_id=sale.sale_id)
        count("FlashSoldOut")
        raise SoldOut("the flash sale is sold out", flash_sale_id=sale.sale_id)

    def _take_across(self, sale: FlashSale, shards: list[int], need: int, takes: list[Take]) -> tuple[int, bool]:
        """Take from `shards` in turn until `need` is met; appends to `takes`. Returns what is still
        needed and whether a shard was busy (throttled, or held by a transaction)."""
        busy = False
        for shard in shards:
            if need == 0:
                break
            try:
                taken = self._take_from(sale.sale_id, shard, need)
            except TemporarilyUnavailable:
                busy = True  # the next shard may not be
                continue
            if taken is not None:
                takes.append(taken)
                need -= taken.qty
        return need, busy

    def _take_from(self, sale_id: str, shard: int, need: int) -> Take | None:
        try:
            taken = self._shards.take(sale_id, shard, need)
        except ShardShort as short:
            if short.remaining <= 0:
                self.hints.note_empty(sale_id, shard)
                return None
            try:  # fewer than needed: take what is there, and look for the rest on the next shards
                taken = self._shards.take(sale_id, shard, short.remaining)
            except ShardShort:
                return None
        self.hints.note_stocked(sale_id, shard)
        return taken

    def _write_order(
        self,
        sale: FlashSale,
        customer_id: str,
        qty: int,
        placement: Placement,
        takes: list[Take],
        request: IdempotentRequest,
    ) -> StoredResponse:
        """The order for units taken already, with their claims. Whatever stops it, the units go
        back (or are found held by the order, which then exists)."""
        holder = _ClaimTaken(self._parts, sale, customer_id, qty, takes, self._clock.now_ms())
        try:
            stored = self._orders.place(placement, customer_id, request, holder=holder)
        except LimitReached:
            self._returns.give_back(sale, takes)
            count("FlashLimitReached")
            raise
        except UnitsClaimed as claimed:
            # Our units were given back by the reconciler (this request took longer than it waits).
            self._returns.give_back(sale, takes)
            raise TemporarilyUnavailable(
                "the order could not be written; retry", flash_sale_id=sale.sale_id
            ) from claimed
        except TemporarilyUnavailable:
            # The transaction may or may not have applied. Giving the units back settles it: the
            # VOID claims fail if the order claimed them, and then the order exists.
            outcome = self._returns.give_back(sale, takes)
            if outcome.claimed_by_order:
                stored_first = self._replays.replay_placed(request)
                if stored_first is not None:
                    return stored_first
            raise
        except Exception:
            self._returns.give_back(sale, takes)
            raise
        if stored.replayed:
            self._returns.give_back(sale, takes)  # a replay of an earlier request: its order holds its own units
        else:
            count("FlashOrdersPlaced")
            count("FlashOrdersAfterTake")
        return stored
