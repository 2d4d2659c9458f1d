"""The paid-membership ratios (shared/membership/paid_reports.py) on hand-computed cases: seven
customers whose terms cover, miss, start, end, renew and are refunded around one period."""

from __future__ import annotations

from shared.membership.paid import Term, TermKind
from shared.membership.paid_reports import PaidMembershipReport, Period, Ratio, ratios
from shared.membership.paid_terms import StoredTerm, TermStatus
from shared.membership.tags import Activity
from tests.fakes.membership import MemoryMembers, MemoryMembershipRules

D = 86_400_000
D0 = 1_767_225_600_000  # the period's start
PERIOD = Period(D0, D0 + 30 * D)


def term(customer: str, order: str, bought: int, start: int, end: int, store: str | None, guide: str | None,
         refunded: bool = False) -> StoredTerm:  # fmt: skip
    placed = Term(order, "gold-12", "gold", 1, 30, D0 + bought * D, TermKind.NEW, ((D0 + start * D, D0 + end * D),),
                  store_id=store, guide_id=guide)  # fmt: skip
    status = TermStatus.REFUNDED if refunded else TermStatus.ACTIVE
    return StoredTerm(customer, placed, 19_900, status=status, version=1)


TERMS = [
    # a: a term ending in the period, renewed before its end (the renewal runs past `to`)
    term("a", "a1", -100, -100, 10, "S1", "g1"),
    term("a", "a2", 5, 10, 40, "S1", "g1"),
    # b: a term ending in the period, not renewed
    term("b", "b1", -20, -20, 15, "S1", "g1"),
    # c: no term at `from`, one bought in the period running past `to`
    term("c", "c1", 3, 3, 33, "S2", "g2"),
    # e: bought in the period and refunded two days later (ended at its refund)
    term("e", "e1", 2, 2, 4, "S2", "g2", refunded=True),
    # f: not an active customer; lapsed in the period and came back within it
    term("f", "f1", -50, -50, 5, "S1", "g1"),
    term("f", "f2", 20, 20, 50, "S1", "g1"),
    # g: one term across the period, and a queued renewal refunded before it ran (length 0)
    term("g", "g1", -10, -10, 60, "S1", "g1"),
    term("g", "g2", 7, 8, 8, "S1", "g1", refunded=True),
]
ACTIVE = {"a": "S1", "b": "S1", "c": "S2", "d": "S2", "e": None, "g": "S1"}
BOUND = {"g1": {"a", "b", "g", "d"}, "g2": {"c", "e"}}


def r(numerator: int, denominator: int) -> dict:
    return Ratio(numerator, denominator).view()


def test_totals_by_hand():
    report = ratios(TERMS, ACTIVE, BOUND, PERIOD)
    assert report["totals"] == {
        "penetration": r(3, 6),  # a, c, g hold a term at `to`; b, d, e do not
        "conversion": r(1, 3),  # c, d, e had none at `from`; c bought (e's was refunded)
        "renewal": r(2, 4),  # a, b, e, f had a term end in the period; a and f bought again
        "churn": r(2, 4),  # b, e
    }
    assert report["totals"]["penetration"]["bp"] == 5_000
    assert report["totals"]["conversion"]["bp"] == 3_333  # rounded down


def test_per_store_by_hand():
    stores = {row.pop("store_id"): row for row in ratios(TERMS, ACTIVE, BOUND, PERIOD)["stores"]}
    assert stores == {
        # penetration and conversion by the last order's store, renewal by the ended term's store
        "S1": {"penetration": r(2, 3), "conversion": r(0, 0), "renewal": r(2, 3), "churn": r(1, 3)},
        "S2": {"penetration": r(1, 2), "conversion": r(1, 2), "renewal": r(0, 1), "churn": r(1, 1)},
        None: {"penetration": r(0, 1), "conversion": r(0, 1), "renewal": r(0, 0), "churn": r(0, 0)},
    }
    assert stores["S1"]["penetration"]["bp"] == 6_666
    assert stores["S1"]["conversion"]["bp"] is None  # nobody to convert: no ratio, not 0


def test_per_guide_by_hand():
    guides = {row.pop("guide_id"): row for row in ratios(TERMS, ACTIVE, BOUND, PERIOD)["guides"]}
    assert guides == {
        # penetration and conversion over the guide's bound customers, renewal by the ended term's guide
        "g1": {"penetration": r(2, 4), "conversion": r(0, 1), "renewal": r(2, 3), "churn": r(1, 3)},
        "g2": {"penetration": r(1, 2), "conversion": r(1, 2), "renewal": r(0, 1), "churn": r(1, 1)},
    }


def test_a_renewal_bought_after_the_period_does_not_count():
    late = [term("x", "x1", -40, -40, 10, "S1", None), term("x", "x2", 31, 31, 61, "S1", None)]
    assert ratios(late, {}, {}, PERIOD)["totals"]["renewal"] == r(0, 1)


class Terms:
    def __init__(self, terms: list[StoredTerm], page: int) -> None:
        self.sorted = sorted(terms, key=lambda t: (t.term.end_ms, t.order_id))
        self.size = page

    def page(self, from_ms: int, limit: int, cursor):
        start = 0 if cursor is None else cursor["at"]
        found = [t for t in self.sorted if t.term.end_ms >= from_ms][start : start + min(limit, self.size)]
        after = start + len(found)
        rest = [t for t in self.sorted if t.term.end_ms >= from_ms][after:]
        return found, ({"at": after} if rest else None)


class Roster:
    def __init__(self, page: int = 100) -> None:
        self.size = page
        self.queries = 0

    def bound(self, guide_id: str, at_ms: int, limit: int, cursor):
        self.queries += 1
        customers = sorted(BOUND.get(guide_id, set()))
        start = 0 if cursor is None else cursor["at"]
        end = start + min(limit, self.size)
        return customers[start:end], ({"at": end} if end < len(customers) else None)


def seeded_members() -> MemoryMembers:
    members = MemoryMembers()
    for n, (customer, store) in enumerate(sorted(ACTIVE.items())):
        members.activities[customer] = Activity(customer, D0 - 5 * D, D0 + (n + 1) * D, 1, 10_000, store, 1)
    return members


def test_the_report_reads_pages_and_marks_an_exhausted_budget():
    members, rules = seeded_members(), MemoryMembershipRules()
    full = PaidMembershipReport(Terms(TERMS, 2), Roster(), members, rules, page_size=2).for_period(PERIOD)
    assert full["complete"] is True
    assert full["totals"] == ratios(TERMS, ACTIVE, BOUND, PERIOD)["totals"]
    short = PaidMembershipReport(Terms(TERMS, 2), Roster(), members, rules, page_size=2, max_pages=2)
    assert short.for_period(PERIOD)["complete"] is False


def test_the_guides_rosters_share_one_budget():
    members, rules = seeded_members(), MemoryMembershipRules()
    roster = Roster(page=1)  # g1 has 4 bound customers: 4 pages; g2 2 pages
    report = PaidMembershipReport(Terms(TERMS, 100), roster, members, rules, page_size=3, max_pages=5)
    read = report.for_period(PERIOD)
    assert roster.queries == 5 and read["complete"] is False
    guides = {row["guide_id"]: row for row in read["guides"]}
    assert guides["g1"]["penetration"] == r(2, 4)  # read whole
    assert guides["g2"]["penetration"] == r(0, 0)  # not read whole: no denominator claimed
    assert guides["g2"]["renewal"] == r(0, 1)  # the terms were read whole
