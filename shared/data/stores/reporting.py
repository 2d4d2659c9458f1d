"""The report books and cells in DynamoDB (docs/data-model.md, "Reports"): implements
shared.reporting.ports.ReportBooks and ReportReads.

A book's write is one TransactWriteItems: the book (Put conditional on its version, or new), an
`ADD` of each moved figure on each cell, and with a claim the consumer's mark set DONE on its token.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from typing import Any

from pynamodb.exceptions import DoesNotExist

from shared.data.items.reporting import ReportBookItem, ReportCellItem
from shared.data.stores.consumer_marks import done_in
from shared.data.transactions import Transaction, TransactionCancelled, translated
from shared.kernel.clock import iso
from shared.kernel.errors import ConcurrentUpdate
from shared.messaging.ports import HeldClaim
from shared.reporting.model import AGGREGATE_SHARDS, Cell, Figures, OrderBook, Refund
from shared.reporting.ports import BookChange, ReportClaimLost

FIGURES = tuple(f.name for f in fields(Figures))
# A transaction holds 100 items: the book, the mark and the cells. An event moves at most 16 cells
# (4 dimensions x its order's and its refund's day and month); re-attributing a book heard of
# before its OrderPaid moves both groups' cells of every day in it.
MAX_CELLS = 98


class DynamoReportBooks:
    def book(self, order_id: str) -> OrderBook | None:
        with translated():
            try:
                item = ReportBookItem.get(*ReportBookItem.key(order_id), consistent_read=True)
            except DoesNotExist:
                return None
        return book_of(item.body, int(item.version))

    def write(self, change: BookChange, claim: HeldClaim | None = None) -> None:
        if len(change.cells) > MAX_CELLS:
            raise ValueError(f"order {change.after.order_id}: {len(change.cells)} cells exceed one transaction")
        tx = Transaction()
        _put_book(tx, change.before, change.after, change.booked_day)
        for n, (cell, delta) in enumerate(sorted(change.cells.items())):
            _add_to_cell(tx, cell, delta, f"cell {n}")
        if claim is not None:
            done_in(tx, claim)
        try:
            tx.commit()
        except TransactionCancelled as exc:
            if "mark" in exc.failed:
                raise ReportClaimLost("the claim on the event is not ours") from exc
            raise ConcurrentUpdate("the report book changed meanwhile", order_id=change.after.order_id) from exc

    def cells(self, dimension: str, first: str, last: str) -> list[tuple[Cell, Figures]]:
        found: list[tuple[Cell, Figures]] = []
        low, high = ReportCellItem.sort_key(first, ""), ReportCellItem.sort_key(last, "~")
        with translated():
            for shard in range(AGGREGATE_SHARDS):
                partition = ReportCellItem.partition(dimension, shard)
                for item in ReportCellItem.query(partition, ReportCellItem.sk.between(low, high)):
                    if isinstance(item, ReportCellItem):
                        found.append((_cell_of(item), _figures_of(item)))
        return found

    def books_of_day(self, day: str, until_ms: int) -> list[OrderBook]:
        with translated():
            found = ReportBookItem.gsi1.query(f"REPORTDAY#{day}", ReportBookItem.gsi1sk <= f"{iso(until_ms)}#~")
            return [book_of(i.body, int(i.version)) for i in found if isinstance(i, ReportBookItem)]

    def differences(self, until_ms: int, limit: int, after: tuple[int, str] | None = None) -> list[OrderBook]:
        until = f"{iso(until_ms)}#~"
        # `between` includes its low end: ask for one more and drop the book the cursor names.
        low = f"{iso(after[0])}#{after[1]}" if after is not None else None
        found: list[OrderBook] = []
        with translated():
            for shard in range(AGGREGATE_SHARDS):
                condition = ReportBookItem.gsi2sk.between(low, until) if low else ReportBookItem.gsi2sk <= until
                items = ReportBookItem.gsi2.query(f"REPORTDIFF#{shard}", condition, limit=limit + 1)
                found += [book_of(i.body, int(i.version)) for i in items if isinstance(i, ReportBookItem)]
        found = [b for b in found if after is None or (b.booked_at_ms, b.order_id) > after]
        return sorted(found, key=lambda b: (b.booked_at_ms, b.order_id))[:limit]


def _put_book(tx: Transaction, before: OrderBook, after: OrderBook, booked_day: str) -> None:
    pk, sk = ReportBookItem.key(after.order_id)
    booked = f"{iso(after.booked_at_ms)}#{after.order_id}"
    differs = after.difference_fen != 0
    item = ReportBookItem(
        pk,
        sk,
        order_id=after.order_id,
        version=before.version + 1,
        body=_body(after),
        gsi1pk=f"REPORTDAY#{booked_day}",
        gsi1sk=booked,
        gsi2pk=f"REPORTDIFF#{after.shard}" if differs else None,
        gsi2sk=booked if differs else None,
        created_at=after.seen_at_ms,
    )
    unchanged = ReportBookItem.pk.does_not_exist() if before.version == 0 else ReportBookItem.version == before.version
    tx.put(item, "book", unchanged)


def _add_to_cell(tx: Transaction, cell: Cell, delta: Figures, label: str) -> None:
    actions: list[Any] = [
        getattr(ReportCellItem, name).add(amount) for name, amount in delta.as_dict().items() if amount != 0
    ]
    actions += [
        ReportCellItem.entity.set(ReportCellItem),  # the item is created by its first write
        ReportCellItem.dimension.set(cell.dimension),
        ReportCellItem.group.set(cell.group),
        ReportCellItem.period.set(cell.period),
        ReportCellItem.shard.set(cell.shard),
    ]
    tx.update(ReportCellItem, ReportCellItem.key(cell.dimension, cell.shard, cell.period, cell.group), actions, label)


def _cell_of(item: ReportCellItem) -> Cell:
    return Cell(item.dimension, item.group, item.period, int(item.shard))


def _figures_of(item: ReportCellItem) -> Figures:
    return Figures.of({name: getattr(item, name) for name in FIGURES})


def _body(book: OrderBook) -> dict[str, Any]:
    body = {f.name: getattr(book, f.name) for f in fields(book) if f.name not in ("version", "refunds", "applied")}
    body["refunds"] = [[r.refund_id, r.at_ms, r.amount_fen] for r in book.refunds]
    body["applied"] = list(book.applied)
    return body


def book_of(body: dict[str, Any], version: int) -> OrderBook:
    numbers: Iterable[str] = (
        "seen_at_ms",
        "units",
        "gross_fen",
        "discounts_fen",
        "paid_fen",
        "ledger_paid_fen",
        "ledger_refunded_fen",
        "commissions_fen",
    )
    return OrderBook(
        order_id=str(body["order_id"]),
        version=version,
        paid_at_ms=int(body["paid_at_ms"]) if body.get("paid_at_ms") is not None else None,
        store_id=body.get("store_id"),
        guide_id=body.get("guide_id"),
        dealer_id=body.get("dealer_id"),
        refunds=tuple(Refund(str(r[0]), int(r[1]), int(r[2])) for r in body.get("refunds") or []),
        applied=tuple(str(e) for e in body.get("applied") or []),
        **{name: int(body.get(name) or 0) for name in numbers},
    )
