"""The finance reports, read from the report books' cells (docs/commission.md, "Reports"): the
reconciliation up to a period end, per store and per dealer, with the orders whose sides disagree;
and sales per store, guide, dealer or day over a range of days, as JSON or CSV. No Scan: each
reads ranges of the cells' partitions and, for the period end's own day, that day's books."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from typing import Any

from shared.kernel.clock import iso
from shared.reporting.model import NO_GROUP, Figures, day_of
from shared.reporting.ports import ReportReads
from shared.settlement.model import yuan
from shared.settlement.runs import BOM

RECONCILED = ("store", "dealer")
GROUP_BY = ("store", "guide", "dealer", "day")
SALES_COLUMNS = (
    "group_by",
    "group",
    "orders",
    "units",
    "gross_fen",
    "discounts_fen",
    "refunds_fen",
    "net_fen",
    "net_yuan",
    "average_order_value_fen",
)


def _before(period: str) -> str:
    """The day (or month) before `period`."""
    if len(period) == 10:
        return (date.fromisoformat(period) - timedelta(days=1)).isoformat()
    year, month = int(period[:4]), int(period[5:7])
    return f"{year - 1:04d}-12" if month == 1 else f"{year:04d}-{month - 1:02d}"


def _group(value: str) -> str | None:
    return None if value == NO_GROUP else value


class Reports:
    def __init__(self, reads: ReportReads, differences_listed: int = 100, utc_offset_min: int = 0) -> None:
        self._reads = reads
        self._listed = differences_listed
        self._utc_offset_min = utc_offset_min  # the calendar the cells were written in (model.day_of)

    def reconciliation(
        self, period_end_ms: int, differences_after: tuple[int, str] | None = None, differences_limit: int | None = None
    ) -> dict[str, Any]:
        """Every order booked at or before the period end, summed per store and per dealer it is
        credited to: the months before the period end's month, its days before the period end's
        day, and that day's books up to the period end. The totals are the stores' sum (each order
        is in one store group and one dealer group); `differences` lists the orders whose sides
        disagree, oldest first, at most `differences_limit` (or `differences_listed`) of
        `totals.difference_orders` a page:
        `differences_after` is the last one of the page before (booked at, order id), and
        `differences_next` that of this page when there may be more."""
        end_day = day_of(period_end_ms, self._utc_offset_min)
        month = end_day[:7]
        sums: dict[str, dict[str, Figures]] = {dimension: {} for dimension in RECONCILED}
        for dimension in RECONCILED:
            found = list(self._reads.cells(dimension, "0000-01", _before(month)))
            if not end_day.endswith("-01"):
                found += self._reads.cells(dimension, f"{month}-01", _before(end_day))
            for cell, figures in found:
                _add(sums[dimension], cell.group, figures)
        for book in self._reads.books_of_day(end_day, period_end_ms):
            for dimension in RECONCILED:
                _add(sums[dimension], book.groups()[dimension], book.figures())
        for dimension in RECONCILED:  # a group whose orders all moved to another (heard late) is gone
            sums[dimension] = {group: figures for group, figures in sums[dimension].items() if not figures.is_zero}
        total = Figures()
        for figures in sums["store"].values():
            total = total.plus(figures)
        listed = differences_limit or self._listed
        differences = self._reads.differences(period_end_ms, listed, differences_after)
        last = differences[-1] if len(differences) == listed else None
        return {
            "period_end": iso(period_end_ms),
            "stores": [
                {"store_id": _group(group), **figures.reconciliation_view()}
                for group, figures in sorted(sums["store"].items())
            ],
            "dealers": [
                {"dealer_id": _group(group), **figures.reconciliation_view()}
                for group, figures in sorted(sums["dealer"].items())
            ],
            "totals": total.reconciliation_view(),
            "differences": [book.view() for book in differences],
            "differences_next": None if last is None else (last.booked_at_ms, last.order_id),
        }

    def sales(self, group_by: str, first_day: str, last_day: str) -> dict[str, Any]:
        """Per group, what was sold on the days [first_day, last_day] (UTC): orders, units, gross
        and discounts by the day each order was paid, refunds by the day each was issued."""
        rows: dict[str, Figures] = {}
        for cell, figures in self._reads.cells(group_by, first_day, last_day):
            _add(rows, cell.period if group_by == "day" else cell.group, figures)
        total = Figures()
        listed = []
        for group, figures in sorted(rows.items()):
            if figures.has_sales:
                listed.append({"group": _group(group), **figures.sales_view()})
                total = total.plus(figures)
        return {
            "from": first_day,
            "to": last_day,
            "group_by": group_by,
            "groups": listed,
            "totals": total.sales_view(),
        }

    def sales_csv(self, group_by: str, first_day: str, last_day: str) -> Iterator[str]:
        """The sales report as CSV: UTF-8 with a BOM (Excel reads it as UTF-8), CRLF, one row per
        group and a last row `total`."""
        report = self.sales(group_by, first_day, last_day)
        yield BOM + _line(SALES_COLUMNS)
        for row in [*report["groups"], {"group": "total", **report["totals"]}]:
            yield _line(
                [
                    group_by,
                    row["group"] if row["group"] is not None else NO_GROUP,
                    row["orders"],
                    row["units"],
                    row["gross_fen"],
                    row["discounts_fen"],
                    row["refunds_fen"],
                    row["net_fen"],
                    yuan(row["net_fen"]),
                    row["average_order_value_fen"],
                ]
            )


def _add(sums: dict[str, Figures], group: str, figures: Figures) -> None:
    sums[group] = sums.get(group, Figures()).plus(figures)


def _line(values: Sequence[Any]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(values)
    return out.getvalue()
