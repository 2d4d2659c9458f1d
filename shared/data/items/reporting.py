"""The report books and their aggregate cells (shared/data/stores/reporting.py; docs/data-model.md,
"Reports")."""

from __future__ import annotations

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute

from shared.data.table import BaseItem


class ReportBookItem(BaseItem, discriminator="ReportBook"):
    """pk `REPORT#ORDER#<order_id>`, sk `BOOK`: both sides of one order's books (body: the
    shared.reporting.model.OrderBook), written conditional on `version`.
    gsi1 `REPORTDAY#<yyyy-mm-dd>` / `<booked iso>#<order_id>`: a day's books (the period end's day).
    gsi2 `REPORTDIFF#<shard>` / `<booked iso>#<order_id>`, only while its sides disagree (sparse)."""

    order_id = UnicodeAttribute()
    version = NumberAttribute()
    body = JSONAttribute()

    @staticmethod
    def key(order_id: str) -> tuple[str, str]:
        return f"REPORT#ORDER#{order_id}", "BOOK"


class ReportCellItem(BaseItem, discriminator="ReportCell"):
    """pk `REPORT#<dimension>#<shard>`, sk `D#<yyyy-mm-dd>#<group>` or `M#<yyyy-mm>#<group>`: what
    the books of one shard add up to for a group over a day or a month. Created by the first `ADD`;
    every figure (shared.reporting.model.Figures) is a number attribute moved by `ADD` only."""

    dimension = UnicodeAttribute()
    group = UnicodeAttribute()
    period = UnicodeAttribute()
    shard = NumberAttribute()
    orders = NumberAttribute(null=True)
    units = NumberAttribute(null=True)
    gross_fen = NumberAttribute(null=True)
    discounts_fen = NumberAttribute(null=True)
    refunds_fen = NumberAttribute(null=True)
    paid_fen = NumberAttribute(null=True)
    refunded_fen = NumberAttribute(null=True)
    ledger_paid_fen = NumberAttribute(null=True)
    ledger_refunded_fen = NumberAttribute(null=True)
    commissions_fen = NumberAttribute(null=True)
    difference_orders = NumberAttribute(null=True)
    difference_fen = NumberAttribute(null=True)

    @staticmethod
    def partition(dimension: str, shard: int) -> str:
        return f"REPORT#{dimension}#{shard}"

    @staticmethod
    def sort_key(period: str, group: str) -> str:
        return f"{'D' if len(period) == 10 else 'M'}#{period}#{group}"

    @classmethod
    def key(cls, dimension: str, shard: int, period: str, group: str) -> tuple[str, str]:
        return cls.partition(dimension, shard), cls.sort_key(period, group)
