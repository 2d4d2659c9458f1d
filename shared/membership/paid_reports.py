"""The paid-membership ratios of `GET /admin/reports/membership?from=&to=` (issue 14 item 6;
docs/membership.md, "Reports: paid membership"). For a period [from, to), every count by distinct
customer, each ratio as integer basis points (rounded down) with its numerator and denominator:

- **penetration** = active customers at `to` holding a paid term that covers `to` / customers in the
  `active` tag at `to`;
- **conversion** = of the active customers at `to` who held no term covering `from`, those who bought
  a term in the period (not refunded);
- **renewal** = of the customers with a term that ended in the period (a refunded term at its
  refund, a term that never ran not at all), those who hold a later term (not refunded) bought
  before the period's end; **churn** = the rest, over the same denominator.

Per store: penetration and conversion by the store of the customer's last paid order (the
existing report's attribution), renewal and churn by the store of the term that ended. Per guide:
penetration and conversion over the customers bound to the guide at `to` (the guides' binding),
renewal and churn by the guide credited on the term that ended.

Reads, all range Queries (no Scan), each bounded by the page budget (`complete` false past it):
the terms by their end from `from` on (gsi1 `PAIDTERM#END`: every term that covers `from` or
`to`, was bought in the period or ended in it ends at or after `from`), the `active` tag's range
at `to` (the activity index, every shard), and the bound customers of each guide credited on a
term read (gsi1 `GUIDE_MEMBERS#<guide>`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol

from shared.kernel.clock import iso
from shared.membership.directory import page
from shared.membership.paid_terms import StoredTerm, TermStatus
from shared.membership.ports import Cursor, MemberStore, RulesStore
from shared.membership.tags import Tag, TagRange

NO_STORE = "-"
RATIOS = ("penetration", "conversion", "renewal", "churn")


class TermsEnding(Protocol):
    def page(self, from_ms: int, limit: int, cursor: Cursor) -> tuple[list[StoredTerm], Cursor]:
        """Terms whose last segment ends at or after `from_ms`, in that order (a Query of gsi1
        `PAIDTERM#END`); the cursor resumes after the page (None after the last)."""
        ...


class GuideRoster(Protocol):
    def bound(self, guide_id: str, at_ms: int, limit: int, cursor: Cursor) -> tuple[list[str], Cursor]:
        """The customers bound to `guide_id` at `at_ms` (a Query of gsi1 `GUIDE_MEMBERS#<guide>`)."""
        ...


@dataclass(frozen=True)
class Ratio:
    numerator: int
    denominator: int

    @property
    def bp(self) -> int | None:
        return None if self.denominator == 0 else self.numerator * 10_000 // self.denominator

    def view(self) -> dict[str, Any]:
        return {"bp": self.bp, "numerator": self.numerator, "denominator": self.denominator}


def _covers(terms: Iterable[StoredTerm], at_ms: int) -> StoredTerm | None:
    return next((t for t in terms if t.term.covers(at_ms)), None)


def _ran(term: StoredTerm) -> bool:
    return term.term.length_ms > 0


@dataclass(frozen=True)
class Period:
    from_ms: int
    to_ms: int

    @property
    def last_ms(self) -> int:
        """The period's last instant: what "at `to`" means for a term (its segments are [start, end))."""
        return self.to_ms - 1


def _renewed(terms: Sequence[StoredTerm], period: Period) -> tuple[StoredTerm, bool] | None:
    """The customer's last term that ended in the period, and whether a later term (not refunded,
    bought before the period's end) runs after it; None if no term of theirs ended in it."""
    ended = [t for t in terms if _ran(t) and period.from_ms <= t.term.end_ms < period.to_ms]
    if not ended:
        return None
    last = max(ended, key=lambda t: (t.term.end_ms, t.order_id))
    again = any(
        t.status is TermStatus.ACTIVE and t.term.bought_at_ms < period.to_ms and t.term.end_ms > last.term.end_ms
        for t in terms
        if t is not last
    )
    return last, again


def _bought_in(terms: Iterable[StoredTerm], period: Period) -> bool:
    return any(t.status is TermStatus.ACTIVE and period.from_ms <= t.term.bought_at_ms < period.to_ms for t in terms)


class _Tally:
    def __init__(self) -> None:
        self.counts: dict[str, list[int]] = {name: [0, 0] for name in RATIOS}

    def add(self, name: str, hit: bool) -> None:
        self.counts[name][1] += 1
        self.counts[name][0] += int(hit)

    def view(self) -> dict[str, Any]:
        return {name: Ratio(*self.counts[name]).view() for name in RATIOS}


def _count_active(own: Sequence[StoredTerm], period: Period, places: list[_Tally]) -> None:
    """An active customer (of the totals, its store, the guides it is bound to): penetration, and
    conversion if it held no term at `from`."""
    covered_at_to, covered_at_from = _covers(own, period.last_ms), _covers(own, period.from_ms)
    for tally in places:
        tally.add("penetration", covered_at_to is not None)
        if covered_at_from is None:
            tally.add("conversion", _bought_in(own, period))


def ratios(
    terms: Sequence[StoredTerm],
    active: Mapping[str, str | None],
    bound: Mapping[str, set[str]],
    period: Period,
) -> dict[str, Any]:
    """The ratios from what was read: `terms` (every term ending at or after `from`), `active`
    (customer -> store of the last paid order, for the customers active at `to`), `bound` (guide ->
    its customers at `to`). Pure: the definitions in the module docstring."""
    by_customer: dict[str, list[StoredTerm]] = defaultdict(list)
    for term in terms:
        by_customer[term.customer_id].append(term)
    totals = _Tally()
    stores: defaultdict[str, _Tally] = defaultdict(_Tally)
    guides: defaultdict[str, _Tally] = defaultdict(_Tally)
    for customer, store in active.items():
        places = [totals, stores[store or NO_STORE]]
        places += [guides[guide] for guide, customers in bound.items() if customer in customers]
        _count_active(by_customer.get(customer, []), period, places)
    for own in by_customer.values():
        outcome = _renewed(own, period)
        if outcome is None:
            continue
        last, again = outcome
        places = [totals, stores[last.term.store_id or NO_STORE]]
        places += [guides[last.term.guide_id]] if last.term.guide_id else []
        for tally in places:
            tally.add("renewal", again)
            tally.add("churn", not again)
    return {
        "from": iso(period.from_ms),
        "to": iso(period.to_ms),
        "totals": totals.view(),
        "stores": [
            {"store_id": None if key == NO_STORE else key, **tally.view()} for key, tally in sorted(stores.items())
        ],
        "guides": [{"guide_id": key, **tally.view()} for key, tally in sorted(guides.items())],
    }


class PaidMembershipReport:
    def __init__(
        self,
        terms: TermsEnding,
        roster: GuideRoster,
        members: MemberStore,
        rules: RulesStore,
        page_size: int = 500,
        max_pages: int = 400,
        utc_offset_min: int = 0,
    ) -> None:
        self._utc_offset_min = utc_offset_min  # the merchant's calendar, as the sales report's
        self._terms = terms
        self._roster = roster
        self._members = members
        self._rules = rules
        self._page_size = page_size
        self._max_pages = max_pages  # per read: 200,000 items at 500 a page

    def for_days(self, first: date, last: date) -> dict[str, Any]:
        """From the start of `first` to the end of `last` in the merchant's calendar."""
        return self.for_period(Period(self._start_ms(first), self._start_ms(last + timedelta(days=1))))

    def _start_ms(self, day: date) -> int:
        return int(datetime.combine(day, time(0), UTC).timestamp() * 1000) - self._utc_offset_min * 60_000

    def for_period(self, period: Period) -> dict[str, Any]:
        terms, complete = self._all(lambda c: self._terms.page(period.from_ms, self._page_size, c))
        tag_range = TagRange.of(Tag.ACTIVE, period.to_ms, self._rules.current().tags)
        found, active_complete = self._all(lambda c: page(self._members, tag_range, self._page_size, c))
        active = {a.customer_sub: a.store_id for a in found}
        bound: dict[str, set[str]] = {}
        budget = [self._max_pages]  # the guides' rosters share one budget (a Query per page)
        for guide in sorted({t.term.guide_id for t in terms if t.term.guide_id}):
            customers, guide_complete = self._all(
                lambda c, g=guide: self._roster.bound(g, period.to_ms, self._page_size, c),  # type: ignore[misc]
                budget,
            )
            if guide_complete:
                bound[guide] = set(customers)  # a guide read in part: no penetration or conversion row
            complete = complete and guide_complete
        return {**ratios(terms, active, bound, period), "complete": complete and active_complete}

    def _all(self, read: Any, budget: list[int] | None = None) -> tuple[list[Any], bool]:
        """Every page of one read, at most the budget (its own, or `budget[0]` pages shared and
        spent): (what was read, whether it reached the end)."""
        budget = budget if budget is not None else [self._max_pages]
        found: list[Any] = []
        cursor: Cursor = None
        while budget[0] > 0:
            budget[0] -= 1
            more, cursor = read(cursor)
            found += more
            if cursor is None:
                return found, True
        return found, False
