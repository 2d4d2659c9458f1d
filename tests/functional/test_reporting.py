"""The reports on moto through the routes: a bound member's order paid and partly refunded, the real
stream, relay, queues, commission ledger and report consumer; then `GET /finance/reconciliation`
and `GET /admin/reports/sales` (JSON and CSV). Events delivered twice write once."""

from __future__ import annotations

import json

import pytest
from chalice.test import Client

from shared.data.items import ReportBookItem
from shared.kernel.clock import iso, now_ms
from shared.platform import settings as config
from shared.reporting.model import day_of
from tests.conftest import bearer
from tests.functional.commission_support import call, drain, given_shop, ordered_and_paid
from tests.functional.events_support import Queue, announced


@pytest.fixture
def shop(client: Client, tokens: dict) -> Client:
    return given_shop(client, tokens)


def refunded_one_of_two(shop: Client, tokens: dict) -> dict:
    """A member bound to G001 (S001, D001) orders 2 x 40 yuan + 10 yuan freight, pays; one unit is refunded."""
    customer, admin = tokens["customer"], tokens["merchant_admin"]
    assert shop.http.post("/guides/G001/bind", headers=bearer(customer)).status_code == 200
    order = ordered_and_paid(shop, customer)
    asked = call(
        shop,
        "post",
        f"/orders/{order['order_id']}/refunds",
        customer,
        {"lines": [{"sku": "TEA-1", "qty": 1}], "reason": "破损"},
    )
    assert asked.status_code == 201, asked.json_body
    path = f"/admin/orders/{order['order_id']}/refunds/{asked.json_body['refund_id']}/decision"
    assert call(shop, "post", path, admin, {"approve": True}).status_code == 200
    drain()
    return order


def test_finance_pages_through_differences_across_the_index_shards(shop: Client, tokens: dict, table: dict):
    # Given 12 orders the ledger recorded but whose payment the reports never heard (each a
    # difference, spread over the sparse index's shards)
    queue = Queue.of(table, "ReportingQueue")
    for i in range(12):
        payload = {"order_id": f"o-diff-{i:02d}", "paid_fen": 1_000, "refunded_fen": 0, "commissions_fen": 100}
        event = {"event_id": f"e-diff-{i}", "type": "CommissionRecorded", "aggregate_id": payload["order_id"]}
        queue.send(json.dumps({**event, "occurred_at": f"2026-11-{1 + i % 5:02d}T08:00:00.000Z", "payload": payload}))
    drain()
    # When finance reads them five at a time, following next_cursor
    seen: list[str] = []
    path = "/finance/reconciliation?period_end=2026-12-01T00:00:00Z&limit=5"
    cursor: str | None = None
    for _ in range(4):
        answer = shop.http.get(path + (f"&cursor={cursor}" if cursor else ""), headers=bearer(tokens["finance"]))
        assert answer.status_code == 200, answer.json_body
        seen += [d["order_id"] for d in answer.json_body["differences"]]
        cursor = answer.json_body["next_cursor"]
        if cursor is None:
            break
    # Then each of the 12 comes once, oldest first, and the last page says there is no more
    assert sorted(seen) == [f"o-diff-{i:02d}" for i in range(12)] and len(seen) == 12
    assert cursor is None and answer.json_body["totals"]["difference_orders"] == 12
    # And a cursor the API never gave out is a 400, not a page
    forged = shop.http.get(path + "&cursor=abc.def", headers=bearer(tokens["finance"]))
    assert forged.status_code == 400


def merchant_today() -> str:
    """Today in the merchant's calendar, which the report days are in (REPORT_UTC_OFFSET_MINUTES)."""
    return day_of(now_ms(), config.settings().report_utc_offset_minutes)


def reconciliation(shop: Client, token: str, period_end: str):
    return shop.http.get(f"/finance/reconciliation?period_end={period_end}", headers=bearer(token))


def test_a_partly_refunded_order_reconciles_per_store_and_dealer(shop: Client, tokens: dict):
    # Given the order (9,000 paid), one unit refunded (4,000); the ledger earned 5% + 8% + 3% of
    # 8,000 (1,280) and clawed back half (640)
    before = now_ms() - 1_000
    order = refunded_one_of_two(shop, tokens)
    assert order["total_fen"] == 9_000
    # When finance reconciles up to now
    answer = reconciliation(shop, tokens["finance"], iso(now_ms() + 1_000))
    assert answer.status_code == 200, answer.json_body
    report = answer.json_body
    # Then S001 and D001 close to the fen, with no difference
    expected = {
        "orders": 1,
        "paid_fen": 9_000,
        "refunded_fen": 4_000,
        "merchant_net_fen": 9_000 - 4_000 - 640,
        "commissions_fen": 640,
        "difference_fen": 0,
        "difference_orders": 0,
    }
    assert report["stores"] == [{"store_id": "S001", **expected}]
    assert report["dealers"] == [{"dealer_id": "D001", **expected}]
    assert report["differences"] == []
    # And up to a moment before it was paid, the order is not there
    assert reconciliation(shop, tokens["finance"], iso(before)).json_body["stores"] == []


def test_events_consumed_twice_write_the_books_once(shop: Client, tokens: dict, table: dict):
    order = refunded_one_of_two(shop, tokens)
    book = ReportBookItem.get(*ReportBookItem.key(order["order_id"]))
    heard = [
        e
        for e in announced()  # the test reads back what the stream announced; the code never scans
        if e["aggregate_id"] == order["order_id"] and e["type"] in ("OrderPaid", "RefundIssued", "CommissionRecorded")
    ]
    assert sorted(e["type"] for e in heard) == [
        "CommissionRecorded",
        "CommissionRecorded",
        "OrderPaid",
        "RefundIssued",
    ]
    # When every event the report books heard is delivered again
    queue = Queue.of(table, "ReportingQueue")
    for event in heard:
        queue.send(json.dumps(event))
    drain()
    # Then the book is as it was and the figures are those of one delivery
    assert ReportBookItem.get(*ReportBookItem.key(order["order_id"])).version == book.version == 4
    store = reconciliation(shop, tokens["finance"], iso(now_ms() + 1_000)).json_body["stores"][0]
    assert (store["paid_fen"], store["refunded_fen"], store["commissions_fen"]) == (9_000, 4_000, 640)
    sales = call(
        shop,
        "get",
        f"/admin/reports/sales?from={merchant_today()}&to={merchant_today()}&group_by=store",
        tokens["merchant_admin"],
    ).json_body
    assert sales["totals"]["orders"] == 1


def test_sales_per_store_as_json_and_as_csv(shop: Client, tokens: dict):
    refunded_one_of_two(shop, tokens)
    today = merchant_today()
    path = f"/admin/reports/sales?from={today}&to={today}&group_by=store"
    # When an admin asks for the day's sales per store
    answer = call(shop, "get", path, tokens["merchant_admin"])
    assert answer.status_code == 200, answer.json_body
    # Then S001 sold 2 units in one order, 8,000 gross, nothing off, 4,000 refunded
    assert answer.json_body["groups"] == [
        {
            "group": "S001",
            "orders": 1,
            "units": 2,
            "gross_fen": 8_000,
            "discounts_fen": 0,
            "refunds_fen": 4_000,
            "net_fen": 4_000,
            "average_order_value_fen": 8_000,
        }
    ]
    # And finance gets the same as CSV (UTF-8, BOM, CRLF) for Accept: text/csv
    csv = shop.http.get(path, headers={**bearer(tokens["finance"]), "Accept": "text/csv"})
    assert csv.status_code == 200 and csv.headers["Content-Type"].startswith("text/csv")
    text = csv.body.decode("utf-8") if isinstance(csv.body, bytes) else csv.body
    assert text.startswith("\ufeffgroup_by,group,orders,units,gross_fen,discounts_fen,refunds_fen,net_fen,net_yuan,")
    assert text.split("\r\n")[1:] == [
        "store,S001,1,2,8000,0,4000,4000,40.00,8000",
        "store,total,1,2,8000,0,4000,4000,40.00,8000",
        "",
    ]
    by_day = call(shop, "get", f"/admin/reports/sales?from={today}&to={today}&group_by=day", tokens["finance"])
    assert [g["group"] for g in by_day.json_body["groups"]] == [today]


@pytest.mark.parametrize(
    "query",
    [
        "from=2026-11-01&to=2026-11-30",  # no group_by
        "from=2026-11-01&to=2026-11-30&group_by=sku",
        "from=2026-11-30&to=2026-11-01&group_by=store",
        "from=2025-01-01&to=2026-01-02&group_by=day",
        "from=2026-13-01&to=2026-12-31&group_by=day",
        "to=2026-11-30&group_by=day",
    ],
)
def test_a_bad_sales_query_is_400(shop: Client, tokens: dict, query: str):
    assert call(shop, "get", f"/admin/reports/sales?{query}", tokens["finance"]).status_code == 400


def test_the_reports_are_for_their_roles_only(shop: Client, tokens: dict):
    assert reconciliation(shop, tokens["merchant_admin"], "2026-11-30T00:00:00Z").status_code == 403
    assert reconciliation(shop, tokens["finance"], "2026-11-30").status_code == 400
    sales = "/admin/reports/sales?from=2026-11-01&to=2026-11-30&group_by=day"
    assert call(shop, "get", sales, tokens["customer"]).status_code == 403
