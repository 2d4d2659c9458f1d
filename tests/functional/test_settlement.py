"""Settlement runs on moto through the routes: a period's run fans out one message per entry shard
through the outbox, relay and settlement queue; progress, the statement CSV and one payee's
entries; a refund after settlement is a negative line in the next run."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from chalice.test import Client

from shared.commission.ledger_model import ENTRY_SHARDS, entry_shard
from shared.data.items.settlement import StatementRowItem, shard_partition
from shared.kernel.clock import FakeClock, iso, now_ms
from shared.kernel.identity import Principal, Role
from shared.platform import bootstrap
from tests.conftest import bearer
from tests.functional.commission_support import RULES, call, drain, given_shop, ordered_and_paid

ADMIN = Principal("admin", Role.MERCHANT_ADMIN)


@pytest.fixture
def shop(client: Client, tokens: dict, monkeypatch: pytest.MonkeyPatch) -> Client:
    monkeypatch.setenv("COMMISSION_AFTER_SALE_WINDOW_S", "0")  # settleable as soon as completed
    bootstrap.reset()
    return given_shop(client, tokens)


def whole_second(ms: int) -> str:
    return iso(ms // 1000 * 1000)


def start(client: Client, token: str, period_end: str):
    return client.http.post("/finance/settlements", headers=bearer(token), body=json.dumps({"period_end": period_end}))


def test_a_period_is_settled_once_per_payee_and_a_later_refund_is_a_negative_line_next_time(shop: Client, tokens: dict):
    finance, customer = tokens["finance"], tokens["customer"]
    t = now_ms()
    # Given a bound member's order of 80 yuan (plus freight), paid, shipped and completed 20 s ago
    shop.http.post("/guides/G001/bind", headers=bearer(customer))
    order_id = ordered_and_paid(shop, customer)["order_id"]
    assert (
        call(shop, "post", f"/orders/{order_id}/ship", tokens["merchant_admin"], {"tracking_number": "SF1"}).status_code
        == 200
    )
    bootstrap.order_lifecycle(FakeClock(t - 20_000)).complete(order_id, ADMIN)
    drain()
    assert bootstrap.commission_release().release_due() == 3
    # When finance settles the period, twice at once
    period = whole_second(t - 10_000)
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: start(shop, finance, period), range(2)))
    assert [a.status_code for a in answers] == [202, 202]
    run_id = answers[0].json_body["run_id"]
    assert answers[1].json_body["run_id"] == run_id
    drain()
    # Then one run settled the three entries: exactly 5%, 8% and 3% of 80 yuan
    run = call(shop, "get", f"/finance/settlements/{run_id}", finance).json_body
    assert (run["status"], run["processed"], run["total"], run["payees"], run["total_fen"]) == ("DONE", 3, 3, 3, 1_280)
    csv = call(shop, "get", f"/finance/settlements/{run_id}/statement.csv", finance)
    assert csv.headers["Content-Type"].startswith("text/csv")
    text = csv.body.decode("utf-8") if isinstance(csv.body, bytes) else csv.body
    assert text.startswith("\ufeffpayee_kind,")
    rows = [line.split(",") for line in text.lstrip("\ufeff").splitlines()[1:]]
    assert {(r[0], r[1], r[5]) for r in rows} == {
        ("dealer", "D001", "400"),
        ("store", "S001", "640"),
        ("guide", "G001", "240"),
    }
    assert "华东经销商" in text
    entries = call(shop, "get", f"/finance/settlements/{run_id}/payees/guide:G001.csv", finance)
    assert entries.status_code == 200 and order_id in (
        entries.body if isinstance(entries.body, str) else entries.body.decode()
    )
    assert call(shop, "get", "/me/commissions", tokens["guide"]).json_body["summary"]["settled_fen"] == 240

    # When one of the two units is refunded after settlement, and the next period is settled
    asked = call(
        shop, "post", f"/orders/{order_id}/refunds", customer, {"lines": [{"sku": "TEA-1", "qty": 1}], "reason": "破损"}
    )
    bootstrap.order_refunds(FakeClock(t - 5_000)).decide_refund(
        order_id, asked.json_body["refund_id"], True, False, ADMIN
    )
    drain()
    second = start(shop, finance, whole_second(t - 1_000))
    assert second.status_code == 202 and second.json_body["run_id"] != run_id
    drain()
    # Then the next statement carries the clawbacks as negative lines
    next_csv = call(shop, "get", f"/finance/settlements/{second.json_body['run_id']}/statement.csv", finance).body
    next_text = next_csv.decode("utf-8") if isinstance(next_csv, bytes) else next_csv
    lines = {tuple(r.split(",")[:2]): r.split(",") for r in next_text.lstrip("\ufeff").splitlines()[1:]}
    assert lines[("guide", "G001")][4:6] == ["120", "-120"]  # clawbacks_fen, net_fen
    assert lines[("dealer", "D001")][5] == "-200"
    guide = call(shop, "get", "/me/commissions", tokens["guide"]).json_body["summary"]
    assert guide["settled_fen"] == 120 and guide["settleable_fen"] == 0


def test_only_finance_runs_settlements_and_a_future_period_is_refused(shop: Client, tokens: dict):
    assert start(shop, tokens["merchant_admin"], whole_second(now_ms())).status_code == 403
    future = start(shop, tokens["finance"], whole_second(now_ms() + 3_600_000))
    assert (future.status_code, future.json_body["code"]) == (422, "VALIDATION_FAILED")
    assert call(shop, "get", "/finance/settlements/run-20300101T000000Z", tokens["finance"]).status_code == 404
    assert call(shop, "get", "/finance/settlements/nope", tokens["finance"]).status_code == 404


def test_a_period_ending_in_a_year_a_run_cannot_be_named_by_is_refused(shop: Client, tokens: dict):
    # A run is named run-YYYYMMDDTHHMMSSZ: year 235 made run-2351001T..., which its GET refused (404)
    for period_end in ("0235-10-01T19:42:24Z", "1999-12-31T23:59:59Z"):
        refused = start(shop, tokens["finance"], period_end)
        assert (refused.status_code, refused.json_body["code"]) == (422, "VALIDATION_FAILED"), period_end
    assert start(shop, tokens["finance"], "2000-01-01T00:00:00+08:00").status_code == 202


def test_a_failed_run_posted_again_resumes_and_settles_what_it_had_left(shop: Client, tokens: dict):
    finance, customer = tokens["finance"], tokens["customer"]
    t = now_ms()
    shop.http.post("/guides/G001/bind", headers=bearer(customer))
    order_id = ordered_and_paid(shop, customer)["order_id"]
    call(shop, "post", f"/orders/{order_id}/ship", tokens["merchant_admin"], {"tracking_number": "SF1"})
    bootstrap.order_lifecycle(FakeClock(t - 20_000)).complete(order_id, ADMIN)
    drain()
    assert bootstrap.commission_release().release_due() == 3
    # Given a run that failed before its shards' messages were delivered (a shard gave up)
    period = whole_second(t - 10_000)
    run_id = start(shop, finance, period).json_body["run_id"]
    bootstrap.settlement_runs().fail(run_id, "a shard gave up")
    drain()
    failed = call(shop, "get", f"/finance/settlements/{run_id}", finance).json_body
    assert (failed["status"], failed["processed"]) == ("FAILED", 0)
    # When finance posts the same period again
    again = start(shop, finance, period)
    assert (again.status_code, again.json_body["run_id"], again.json_body["status"]) == (202, run_id, "RUNNING")
    drain()
    # Then the same run settles the three entries
    run = call(shop, "get", f"/finance/settlements/{run_id}", finance).json_body
    assert (run["status"], run["processed"], run["total"], run["total_fen"]) == ("DONE", 3, 3, 1_280)


def test_payees_paid_from_several_shards_are_one_csv_row_each_with_the_summed_figures(shop: Client, tokens: dict):
    finance, customer = tokens["finance"], tokens["customer"]
    t = now_ms()
    shop.http.post("/guides/G001/bind", headers=bearer(customer))
    # Given orders of one unit until two of them are in different entry shards
    orders: list[str] = []
    while len({entry_shard(o) for o in orders}) < 2:
        assert len(orders) < 8, "eight orders all in one shard"
        orders.append(ordered_and_paid(shop, customer, qty=1)["order_id"])
    for order_id in orders:
        call(shop, "post", f"/orders/{order_id}/ship", tokens["merchant_admin"], {"tracking_number": "SF1"})
        bootstrap.order_lifecycle(FakeClock(t - 20_000)).complete(order_id, ADMIN)
    drain()
    assert bootstrap.commission_release().release_due() == 3 * len(orders)
    # When the period is settled
    run_id = start(shop, finance, whole_second(t - 10_000)).json_body["run_id"]
    drain()
    # Then each payee's rows are in several shards' partitions, and the CSV has one line per payee
    partitions = {
        shard
        for shard in range(ENTRY_SHARDS)
        for item in StatementRowItem.query(shard_partition(run_id, shard))
        if isinstance(item, StatementRowItem) and item.payee == "guide:G001"
    }
    assert partitions == {entry_shard(o) for o in orders}
    text = call(shop, "get", f"/finance/settlements/{run_id}/statement.csv", finance).body
    text = text.decode("utf-8") if isinstance(text, bytes) else text
    rows = [line.split(",") for line in text.lstrip("\ufeff").splitlines()[1:]]
    assert [(r[0], r[1]) for r in rows] == [("dealer", "D001"), ("guide", "G001"), ("store", "S001")]
    paid_fen = 4_000  # one unit of TEA-1, freight excluded
    for row in rows:
        rate_bp = RULES["rates_bp"][row[0]]
        gross, clawbacks, net, entries = (int(row[i]) for i in (3, 4, 5, 7))
        assert (gross, clawbacks, net, entries) == (len(orders) * paid_fen * rate_bp // 10_000, 0, gross, len(orders))
