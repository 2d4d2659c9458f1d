"""The ordering unit of work (`shared.ordering.ports.OrderingUnitOfWork`) as ONE DynamoDB
transaction: each method adds a labelled conditional part; `commit` sends TransactWriteItems
once and turns a refused part into the domain error it means.

A data-layer adapter of another capability that must write in the same transaction (a flash
sale's shard decrement, buyer count and unit claims) reaches the transaction through `tx` and may
add a `translate` hook for its own labels; the services only ever see the port.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.data import outbox
from shared.data.stores import idempotency as idempotency_store
from shared.data.stores import orders as order_store
from shared.data.stores import stock as stock_store
from shared.data.transactions import Transaction, TransactionCancelled
from shared.kernel.errors import ConcurrentUpdate, InvalidTransition, OutOfStock
from shared.kernel.events import DomainEvent
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.ordering.model import Order
from shared.ordering.ports import PaymentAlreadyRecorded, PaymentRecord, Refund

# Raises the domain error a cancellation means for the parts it knows, or returns to let the
# unit of work translate the rest.
CancellationTranslator = Callable[[TransactionCancelled], None]


class DynamoOrderingUnitOfWork:
    def __init__(self, *, retry_conflicts: bool = True) -> None:
        self.tx = Transaction(retry_conflicts=retry_conflicts)
        self._translators: list[CancellationTranslator] = []
        self._reservations: dict[str, tuple[str, str]] = {}  # stock label -> (sku, location)
        self._order_ids: list[str] = []
        self._refund_ids: list[str] = []
        self._carrier: Order | None = None  # a new order that carries its request's idempotency
        self._carried_refund: tuple[str, str] | None = None  # a new refund's label and the fingerprint it carries
        self._committed = False

    # -- parts -----------------------------------------------------------------------------
    def add_order(self, order: Order) -> None:
        order_store.add_new(self.tx, order)
        self._order_ids.append(order.order_id)
        if order.request_hash is not None:
            self._carrier = order

    def replace_order(self, before: Order, after: Order) -> None:
        order_store.replace_if_unchanged(self.tx, before, after)
        self._order_ids.append(before.order_id)

    def reserve_stock(self, sku: str, location: str, qty: int) -> None:
        stock_store.reserve(self.tx, sku, location, qty)
        self._reservations[stock_store.label(sku, location)] = (sku, location)

    def commit_stock(self, sku: str, location: str, qty: int) -> None:
        stock_store.commit(self.tx, sku, location, qty)

    def release_stock(self, sku: str, location: str, qty: int) -> None:
        stock_store.release(self.tx, sku, location, qty)

    def restock(self, sku: str, location: str, qty: int) -> None:
        stock_store.restock(self.tx, sku, location, qty)

    def emit(self, event: DomainEvent) -> None:
        outbox.emit(self.tx, event)

    def record_payment(self, payment: PaymentRecord) -> None:
        order_store.record_payment(self.tx, payment)

    def record_clashing_payment(self, payment: PaymentRecord) -> None:
        order_store.record_clashing_payment(self.tx, payment)

    def add_refund(self, refund: Refund, now_ms: int, carrying: IdempotentRequest | None = None) -> None:
        order_store.add_refund(self.tx, refund, now_ms, carrying)
        if carrying is not None:
            self._carried_refund = (order_store.refund_label(refund["refund_id"]), carrying.fingerprint)

    def decide_refund(self, refund: Refund, status: str, restock: bool) -> None:
        order_store.decide_refund(self.tx, refund, status, restock)
        self._refund_ids.append(refund["refund_id"])

    def translate(self, translator: CancellationTranslator) -> None:
        """For data-layer adapters whose parts joined `tx`: called on a cancellation after the
        idempotency replay and the order's condition, before the stock, payment and refund parts."""
        self._translators.append(translator)

    # -- commit ----------------------------------------------------------------------------
    def commit(self) -> None:
        self._start()
        try:
            self.tx.commit()
        except TransactionCancelled as cancelled:
            self._raise_domain_error(cancelled)
            raise

    def commit_once(self, request: IdempotentRequest, response: StoredResponse) -> StoredResponse:
        """A new order or refund that carries `request` (its id derived from the key) is the
        idempotency record: no item of its own. Otherwise the record joins the transaction."""
        self._start()
        carried = self._carrier is not None and self._carrier.request_hash == request.fingerprint
        refund = self._carried_refund
        refund_label = refund[0] if refund is not None and refund[1] == request.fingerprint else None
        if not carried and refund_label is None:
            idempotency_store.join(self.tx, request, response)
        try:
            self.tx.commit()
        except TransactionCancelled as cancelled:
            first: StoredResponse | None = None
            if carried:
                first = order_store.replayed_order(cancelled, request)
            elif refund_label is not None:
                first = order_store.replayed_refund(cancelled, refund_label, request)
            elif idempotency_store.was_replayed(cancelled):
                first = idempotency_store.replay(request, cancelled)
            if first is not None:
                return first
            self._raise_domain_error(cancelled)
            raise
        return response

    def _start(self) -> None:
        if self._committed:
            raise RuntimeError("a unit of work is committed once")
        self._committed = True

    def _raise_domain_error(self, cancelled: TransactionCancelled) -> None:
        """The domain error of the first refused part that has one; returns when none has (a
        condition the services never expect to fail: the cancellation propagates as it is)."""
        failed = cancelled.failed
        if order_store.ORDER_LABEL in failed:
            raise ConcurrentUpdate(
                "the order changed since it was read", order_id=self._order_ids[0] if self._order_ids else None
            ) from cancelled
        for translator in self._translators:
            translator(cancelled)
        short = [self._reservations[label] for label in failed if label in self._reservations]
        if short:
            sku, location = short[0]
            raise OutOfStock("not enough stock", sku=sku, location=location) from cancelled
        if order_store.PAYMENT_LABEL in failed:
            raise PaymentAlreadyRecorded("this payment was recorded before") from cancelled
        for refund_id in self._refund_ids:
            if order_store.refund_label(refund_id) in failed:
                raise InvalidTransition("refund was decided concurrently", refund_id=refund_id) from cancelled


def unit_of_work(*, retry_conflicts: bool = True) -> DynamoOrderingUnitOfWork:
    """The `OrderingUnitOfWorkFactory` of production."""
    return DynamoOrderingUnitOfWork(retry_conflicts=retry_conflicts)
