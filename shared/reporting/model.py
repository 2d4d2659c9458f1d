"""Reconciliation and sales reports as data: an order's report book and the aggregate cells it
adds to. Pure (the kernel only); docs/commission.md ("Reports") has the definitions and
docs/data-model.md ("Reports") the keys.

An order's book holds both sides of the books: what its order events say was paid and refunded
(the payments side), and what the commission ledger announced it booked (CommissionRecorded: the
paid amount it split, the refunds it clawed back on, the sum of its entries). The merchant's net is
the ledger side's: `ledger_paid - ledger_refunded - commissions`; the difference is what the two
sides disagree by, `(paid - refunded) - (merchant_net + commissions)`.

The aggregates are a function of the books: `contributions(book)` is what one book adds to each
cell (a dimension's group over a UTC day, and over its month), so a change of a book moves the
cells by `contributions(after) - contributions(before)`, whatever the order its events came in.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

from shared.kernel.clock import iso
from shared.kernel.credited import Credited

# Cells are spread over this many partitions (by order id): one dealer's concurrent orders write
# a few items, not one, and a report reads this many partitions per dimension.
AGGREGATE_SHARDS = 4
DIMENSIONS = ("store", "guide", "dealer", "day")
NO_GROUP = "-"  # an order credited to no store (guide, dealer); and the one group of `day`


def day_of(epoch_ms: int, utc_offset_min: int = 0) -> str:
    """The day of an instant in the merchant's calendar: `utc_offset_min` east of UTC (480 for
    China Standard Time, which keeps no daylight saving). Days and months of the cells are these."""
    return datetime.fromtimestamp(epoch_ms / 1000 + utc_offset_min * 60, tz=UTC).strftime("%Y-%m-%d")


def aggregate_shard(order_id: str) -> int:
    return zlib.crc32(order_id.encode()) % AGGREGATE_SHARDS


@dataclass(frozen=True)
class Figures:
    """What a cell (or a book) adds up. Sales: orders, units, gross, discounts on the day an order
    was paid, refunds on the day each was issued. Reconciliation: the rest, on the order's day
    (the day it was paid, or first heard of if never paid), so a period holds whole orders."""

    orders: int = 0
    units: int = 0
    gross_fen: int = 0
    discounts_fen: int = 0
    refunds_fen: int = 0
    paid_fen: int = 0
    refunded_fen: int = 0
    ledger_paid_fen: int = 0
    ledger_refunded_fen: int = 0
    commissions_fen: int = 0
    difference_orders: int = 0
    difference_fen: int = 0

    def plus(self, other: Figures) -> Figures:
        return Figures(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def minus(self, other: Figures) -> Figures:
        return Figures(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)})

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def of(cls, data: dict[str, Any]) -> Figures:
        return cls(**{f.name: int(data.get(f.name) or 0) for f in fields(cls)})

    @property
    def is_zero(self) -> bool:
        return not any(self.as_dict().values())

    @property
    def merchant_net_fen(self) -> int:
        return self.ledger_paid_fen - self.ledger_refunded_fen - self.commissions_fen

    @property
    def has_sales(self) -> bool:
        return any((self.orders, self.units, self.gross_fen, self.discounts_fen, self.refunds_fen))

    def sales_view(self) -> dict[str, int]:
        net = self.gross_fen - self.discounts_fen - self.refunds_fen
        paid_goods = self.gross_fen - self.discounts_fen
        return {
            "orders": self.orders,
            "units": self.units,
            "gross_fen": self.gross_fen,
            "discounts_fen": self.discounts_fen,
            "refunds_fen": self.refunds_fen,
            "net_fen": net,
            # Integer fen, rounded down: what an order paid for goods on average (freight excluded).
            "average_order_value_fen": paid_goods // self.orders if self.orders else 0,
        }

    def reconciliation_view(self) -> dict[str, int]:
        return {
            "orders": self.orders,
            "paid_fen": self.paid_fen,
            "refunded_fen": self.refunded_fen,
            "merchant_net_fen": self.merchant_net_fen,
            "commissions_fen": self.commissions_fen,
            "difference_fen": self.difference_fen,
            "difference_orders": self.difference_orders,
        }


@dataclass(frozen=True, order=True)
class Cell:
    """One aggregate item: a dimension's group over a period ("yyyy-mm-dd" or "yyyy-mm"), one shard."""

    dimension: str
    group: str
    period: str
    shard: int


@dataclass(frozen=True)
class Refund:
    refund_id: str
    at_ms: int
    amount_fen: int


@dataclass(frozen=True)
class OrderBook:
    """What the reports know of one order (see the module docstring)."""

    order_id: str
    version: int = 0  # 0: not stored yet
    seen_at_ms: int = 0  # when its first event happened: the day of a book whose order was never paid
    paid_at_ms: int | None = None
    store_id: str | None = None
    guide_id: str | None = None
    dealer_id: str | None = None
    units: int = 0
    gross_fen: int = 0
    discounts_fen: int = 0
    paid_fen: int = 0
    refunds: tuple[Refund, ...] = ()
    ledger_paid_fen: int = 0
    ledger_refunded_fen: int = 0
    commissions_fen: int = 0
    applied: tuple[str, ...] = field(default=())  # the event ids in it: a replay changes nothing

    @property
    def refunded_fen(self) -> int:
        return sum(r.amount_fen for r in self.refunds)

    @property
    def merchant_net_fen(self) -> int:
        return self.ledger_paid_fen - self.ledger_refunded_fen - self.commissions_fen

    @property
    def difference_fen(self) -> int:
        return (self.paid_fen - self.refunded_fen) - (self.merchant_net_fen + self.commissions_fen)

    @property
    def booked_at_ms(self) -> int:
        return self.paid_at_ms if self.paid_at_ms is not None else self.seen_at_ms

    @property
    def shard(self) -> int:
        return aggregate_shard(self.order_id)

    def figures(self) -> Figures:
        """Everything the book adds to its order's day (refunds_fen, which goes by refund day, aside)."""
        differs = self.difference_fen != 0
        return Figures(
            orders=1 if self.paid_at_ms is not None else 0,
            units=self.units,
            gross_fen=self.gross_fen,
            discounts_fen=self.discounts_fen,
            paid_fen=self.paid_fen,
            refunded_fen=self.refunded_fen,
            ledger_paid_fen=self.ledger_paid_fen,
            ledger_refunded_fen=self.ledger_refunded_fen,
            commissions_fen=self.commissions_fen,
            difference_orders=1 if differs else 0,
            difference_fen=self.difference_fen,
        )

    def groups(self) -> dict[str, str]:
        return {
            "store": self.store_id or NO_GROUP,
            "guide": self.guide_id or NO_GROUP,
            "dealer": self.dealer_id or NO_GROUP,
            "day": NO_GROUP,
        }

    def view(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "store_id": self.store_id,
            "dealer_id": self.dealer_id,
            "booked_at": iso(self.booked_at_ms),
            "paid": self.paid_at_ms is not None,
            "paid_fen": self.paid_fen,
            "refunded_fen": self.refunded_fen,
            "merchant_net_fen": self.merchant_net_fen,
            "commissions_fen": self.commissions_fen,
            "ledger_paid_fen": self.ledger_paid_fen,
            "ledger_refunded_fen": self.ledger_refunded_fen,
            "difference_fen": self.difference_fen,
        }


def contributions(book: OrderBook, utc_offset_min: int = 0) -> dict[Cell, Figures]:
    """What `book` adds to each cell: its figures to its order's day and month, each refund's amount
    (as refunds_fen) to the refund's day and month, in every dimension, under its groups."""
    if book.version == 0 and not book.applied:
        return {}
    per_day: dict[str, Figures] = {day_of(book.booked_at_ms, utc_offset_min): book.figures()}
    for refund in book.refunds:
        day = day_of(refund.at_ms, utc_offset_min)
        per_day[day] = per_day.get(day, Figures()).plus(Figures(refunds_fen=refund.amount_fen))
    cells: dict[Cell, Figures] = {}
    for dimension, group in book.groups().items():
        for day, figures in per_day.items():
            for period in (day, day[:7]):
                cell = Cell(dimension, group, period, book.shard)
                cells[cell] = cells.get(cell, Figures()).plus(figures)
    return cells


def cell_changes(before: OrderBook, after: OrderBook, utc_offset_min: int = 0) -> dict[Cell, Figures]:
    """How the cells move when `before` becomes `after` (cells that do not move are left out)."""
    old, new = contributions(before, utc_offset_min), contributions(after, utc_offset_min)
    moved = {cell: new.get(cell, Figures()).minus(old.get(cell, Figures())) for cell in set(old) | set(new)}
    return {cell: delta for cell, delta in sorted(moved.items()) if not delta.is_zero}


# -- the events ---------------------------------------------------------------------------------------
def _seen(book: OrderBook, event_id: str, at_ms: int) -> OrderBook:
    seen = at_ms if book.version == 0 and not book.applied else min(book.seen_at_ms, at_ms)
    return replace(book, seen_at_ms=seen, applied=(*book.applied, event_id))


def paid(book: OrderBook, event_id: str, at_ms: int, payload: dict[str, Any], credited: Credited) -> OrderBook:
    """OrderPaid: the payments side's paid amount, the sales figures, and the groups (the order's
    credited store, guide and dealer). Orders paid before events carried subtotal and discount
    count their lines' paid amounts as gross, with no discount."""
    after = _seen(book, event_id, at_ms)
    if book.paid_at_ms is not None:
        return after  # an order is paid once; a second OrderPaid adds nothing
    lines = payload.get("lines") or []
    goods_fen = sum(int(line["payable_fen"]) for line in lines)
    gross = int(payload.get("subtotal_fen", goods_fen))
    return replace(
        after,
        paid_at_ms=at_ms,
        store_id=credited.store_id,
        guide_id=credited.guide_id,
        dealer_id=credited.dealer_id,
        units=sum(int(line["qty"]) for line in lines),
        gross_fen=gross,
        discounts_fen=int(payload.get("discount_fen", gross - goods_fen)),
        paid_fen=int(payload["total_fen"]),
    )


def refunded(book: OrderBook, event_id: str, at_ms: int, refund_id: str, amount_fen: int) -> OrderBook:
    """RefundIssued: an amount paid back (once per refund id)."""
    after = _seen(book, event_id, at_ms)
    if any(r.refund_id == refund_id for r in book.refunds):
        return after
    return replace(after, refunds=(*book.refunds, Refund(refund_id, at_ms, amount_fen)))


def recorded(book: OrderBook, event_id: str, at_ms: int, payload: dict[str, Any]) -> OrderBook:
    """CommissionRecorded: what one ledger write booked (added; each write announces once)."""
    after = _seen(book, event_id, at_ms)
    return replace(
        after,
        ledger_paid_fen=book.ledger_paid_fen + int(payload.get("paid_fen") or 0),
        ledger_refunded_fen=book.ledger_refunded_fen + int(payload.get("refunded_fen") or 0),
        commissions_fen=book.commissions_fen + int(payload.get("commissions_fen") or 0),
    )
