"""`GET /admin/reports/membership?from=&to=` on moto: the paid-membership ratios read through the
terms' index (gsi1 `PAIDTERM#END`), the active tag's range and the guides' bound customers, for
four customers whose numbers are worked out by hand; what the report answered before is
unchanged, and the period's refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.data.items import BindingItem
from shared.data.stores.membership import DynamoMembers
from shared.data.stores.paid_membership import DynamoPaidTerms
from shared.kernel.clock import iso
from shared.membership.paid import Term, TermKind
from shared.membership.paid_terms import StoredTerm, purchased
from shared.membership.ports import MemberChange
from shared.membership.tags import Activity
from tests.conftest import bearer

CHINA_MS = 8 * 3_600_000


def at(day: str) -> int:
    """Noon of a day in China time, epoch ms."""
    return int(datetime.fromisoformat(f"{day}T12:00:00").replace(tzinfo=UTC).timestamp() * 1000) - CHINA_MS


def buy(customer: str, order_id: str, day: str, store: str, guide: str) -> None:
    store_ = DynamoPaidTerms()
    read = store_.read(customer)
    term = Term(order_id, "gold-30", "金卡", 1, 30, at(day), TermKind.NEW, (), store_id=store, guide_id=guide)
    store_.write(read, purchased(read, StoredTerm(customer, term, paid_fen=9_900), at(day)))


def active(customer: str, store: str, last_day: str) -> None:
    activity = Activity(customer, at("2026-09-01"), at(last_day), 2, 30_000, store)
    DynamoMembers().write(MemberChange(activity_before=Activity.none_yet(customer, 0), activity_after=activity))


def bind(customer: str, guide: str) -> None:
    pk, sk = BindingItem.key(customer)
    BindingItem(
        pk, sk, customer_id=customer, guide_id=guide, store_id="S1", bound_at=at("2026-09-01"), version=1,
        gsi1pk=f"GUIDE_MEMBERS#{guide}", gsi1sk=f"{iso(at('2026-09-01'))}#{customer}",
    ).save()  # fmt: skip


def ratio(numerator: int, denominator: int) -> dict:
    bp = None if denominator == 0 else numerator * 10_000 // denominator
    return {"bp": bp, "numerator": numerator, "denominator": denominator}


@pytest.fixture
def given_members(table):
    # a: a term ending 11-14, renewed on 11-10 (runs to 12-14); b: a term ending 11-19, not renewed;
    # c: no term at 11-01, one bought 11-05; d: no term at all. a, b, d bound to g1, c to g2.
    buy("a", "o-a1", "2026-10-15", "S1", "g1")
    buy("a", "o-a2", "2026-11-10", "S1", "g1")
    buy("b", "o-b1", "2026-10-20", "S1", "g1")
    buy("c", "o-c1", "2026-11-05", "S2", "g2")
    for customer, store, last in [("a", "S1", "2026-11-20"), ("b", "S1", "2026-11-02"), ("c", "S2", "2026-11-05")]:
        active(customer, store, last)
    active("d", "S2", "2026-11-25")
    for customer, guide in [("a", "g1"), ("b", "g1"), ("d", "g1"), ("c", "g2")]:
        bind(customer, guide)


def test_the_ratios_per_store_and_guide_by_hand(client, tokens, given_members):
    response = client.http.get(
        "/admin/reports/membership?from=2026-11-01&to=2026-11-30", headers=bearer(tokens["merchant_admin"])
    )
    assert response.status_code == 200, response.body
    body = response.json_body
    paid = body["paid_membership"]
    assert (paid["from"], paid["to"], paid["complete"]) == (
        "2026-10-31T16:00:00.000Z",
        "2026-11-30T16:00:00.000Z",
        True,
    )
    assert paid["totals"] == {
        "penetration": ratio(2, 4),  # a and c hold a term at the end of 11-30
        "conversion": ratio(1, 2),  # c and d held none on 11-01; c bought
        "renewal": ratio(1, 2),  # a's and b's terms ended in November; a renewed
        "churn": ratio(1, 2),
    }
    stores = {row.pop("store_id"): row for row in paid["stores"]}
    assert stores == {
        "S1": {"penetration": ratio(1, 2), "conversion": ratio(0, 0), "renewal": ratio(1, 2), "churn": ratio(1, 2)},
        "S2": {"penetration": ratio(1, 2), "conversion": ratio(1, 2), "renewal": ratio(0, 0), "churn": ratio(0, 0)},
    }
    guides = {row.pop("guide_id"): row for row in paid["guides"]}
    assert guides == {
        "g1": {"penetration": ratio(1, 3), "conversion": ratio(0, 1), "renewal": ratio(1, 2), "churn": ratio(1, 2)},
        "g2": {"penetration": ratio(1, 1), "conversion": ratio(1, 1), "renewal": ratio(0, 0), "churn": ratio(0, 0)},
    }
    assert guides["g1"]["penetration"]["bp"] == 3_333

    # Without a period the report answers what it answered before, and nothing more
    plain = client.http.get("/admin/reports/membership", headers=bearer(tokens["merchant_admin"])).json_body
    assert set(plain) == {"at", "tags", "stores", "totals", "complete"}
    assert set(body) - set(plain) == {"paid_membership"}


@pytest.mark.parametrize(
    "query",
    ["from=2026-11-01", "to=2026-11-30", "from=2026-11-31&to=2026-12-01", "from=2026-12-01&to=2026-11-01",
     "from=2025-01-01&to=2026-01-02", "from=11/01/2026&to=2026-11-30", "from=9999-12-31&to=9999-12-31",
     "from=0001-01-01&to=0001-01-01"],
)  # fmt: skip
def test_a_period_that_is_not_one_is_400(client, tokens, table, query):
    response = client.http.get(f"/admin/reports/membership?{query}", headers=bearer(tokens["merchant_admin"]))
    assert response.status_code == 400, response.body
    assert response.json_body["code"] == "MALFORMED_REQUEST"


def test_only_merchant_admins_read_it(client, tokens, table):
    path = "/admin/reports/membership?from=2026-11-01&to=2026-11-30"
    assert client.http.get(path, headers=bearer(tokens["customer"])).status_code == 403
    assert client.http.get(path).status_code == 401
