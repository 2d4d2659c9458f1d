"""A buyer's first count in a flash order's transaction (`first_count_part`) is PynamoDB's Put for
a stand-in buyer, built once per table, sale and limit, with each buyer's key put in
(shared/data/stores/flash_sales.py): the part is the one PynamoDB builds for that buyer, each
transaction gets its own copy, and the limit it enforces is the sale's."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.data.connection import connection
from shared.data.items import FlashBuyerItem
from shared.data.stores import flash_sales as store
from shared.data.transactions import put_part
from shared.flash_sales.model import FlashSale

SALE = FlashSale(
    sale_id="fs-count",
    sku="SKU-1",
    price_fen=9900,
    quantity=100,
    per_user_limit=1,
    starts_at_ms=0,
    ends_at_ms=10**13,
    payment_window_s=900,
    shards=4,
    product_name="秒杀",
    list_price_fen=19900,
)


def _built_now(sale: FlashSale, customer_id: str, qty: int) -> dict:
    item = FlashBuyerItem(*FlashBuyerItem.key(sale.sale_id, customer_id), bought=qty)
    return put_part(item, store.within_limit(sale, qty))


# Nothing is written, so the table may serve every example.
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    customer_id=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40),
    limit=st.integers(1, 5),
    sale_id=st.sampled_from(["fs-count", "fs-other", "销售#1"]),
)
def test_the_part_is_the_put_pynamodb_builds_for_that_buyer(table, customer_id: str, limit: int, sale_id: str):
    sale = replace(SALE, sale_id=sale_id, per_user_limit=limit)
    # A stand-in built the memo; any buyer (keys with '#', CJK, spaces) gets their own key in it
    assert store.first_count_part(sale, customer_id) == _built_now(sale, customer_id, limit)


def test_each_transaction_holds_its_own_part(table):
    first = store.first_count_part(SALE, "c1")
    again = store.first_count_part(SALE, "c2")
    first["Extra"] = True
    first["Item"]["Extra"] = {"S": "x"}
    assert "Extra" not in again and "Extra" not in again["Item"]
    assert store.first_count_part(SALE, "c1") == _built_now(SALE, "c1", 1)


def test_what_changes_the_part_gets_a_part_of_its_own(table, monkeypatch: pytest.MonkeyPatch):
    base = store.first_count_part(SALE, "c1")
    # Another limit: the count is the whole limit (the condition: the buyer holds nothing yet)
    higher = store.first_count_part(replace(SALE, per_user_limit=3), "c1")
    assert higher["Item"]["bought"] == {"N": "3"} != base["Item"]["bought"]
    assert higher == _built_now(replace(SALE, per_user_limit=3), "c1", 3)
    # Another table (each test, each stage has its own): the part names it
    from shared.data.table import BaseItem

    monkeypatch.setattr(BaseItem.Meta, "table_name", "another-table")
    assert store.first_count_part(SALE, "c1")["TableName"] == "another-table"


def test_the_memo_stays_bounded(table, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(store, "FIRST_COUNT_PARTS_KEPT", 5)
    store._FIRST_COUNT_PARTS.clear()
    for n in range(12):
        store.first_count_part(replace(SALE, sale_id=f"fs-{n}"), "c1")
    assert len(store._FIRST_COUNT_PARTS) <= 5


def test_the_part_holds_the_limit_on_the_emulator(table):
    """Written as a transaction on the emulator: the first count is written, a second one of the
    same buyer is refused, another buyer's is not."""
    from botocore.exceptions import ClientError

    def write(customer_id: str) -> None:
        connection().client.transact_write_items(TransactItems=[{"Put": store.first_count_part(SALE, customer_id)}])

    write("c1")
    with pytest.raises(ClientError) as refused:
        write("c1")
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    write("c2")
    stored = FlashBuyerItem.get(*FlashBuyerItem.key(SALE.sale_id, "c1"), consistent_read=True)
    assert stored.bought == 1
