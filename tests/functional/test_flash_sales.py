"""Flash sales on moto: the routes' contract (API.md, "Flash sales") and the service's invariants:
units are never sold twice, buyers never pass the limit, unpaid units come back, and units a
purchase took but never claimed are given back by the reconciler."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from infra.local.faults import FaultInjector, Kind
from shared.data.connection import events
from shared.data.stores.flash_sales import DynamoShards
from shared.flash_sales.commands import FlashOrder
from shared.flash_sales.service import FlashSales, FlashSaleSettings
from shared.kernel.clock import FakeClock, now_ms
from shared.kernel.errors import Ended, LimitReached, NotStarted, SoldOut, TemporarilyUnavailable
from shared.kernel.idempotency import IdempotentRequest
from shared.payments.hmac_webhook import PaymentNotice
from shared.platform import bootstrap
from shared.web.auth import Principal, Role, issue_token
from tests.conftest import TEST_ENV, bearer
from tests.functional.flash_support import HOME_DELIVERY, books, buy, flash_service, given_sale, iso_in
from tests.functional.orders_support import given_catalogue


@pytest.fixture
def catalogue(table):
    given_catalogue({("TEA-1", "WH"): 100_000})  # a sale holds its quantity out of WH
    # The buyers of these tests saved a default address: an order naming no fulfilment goes there
    for customer in ("c-1", "c-2"):
        bootstrap.address_book().save(customer, HOME_DELIVERY.address)


@pytest.fixture
def clock() -> FakeClock:
    """The flash-sale service's clock: the time of the test's start, moved only by the test."""
    return FakeClock(now_ms())


@pytest.fixture
def flash(table, clock: FakeClock) -> FlashSales:
    return flash_service(clock)


def move_to(clock: FakeClock, at_ms: int) -> None:
    clock.advance((at_ms - clock.now_ms()) / 1000)


def shard_levels(sale):
    return DynamoShards().levels(sale)


def customer_token(sub: str) -> str:
    return issue_token(TEST_ENV["JWT_SECRET"], sub, Role.CUSTOMER)


def post(client, path, token, body, **headers):
    return client.http.post(path, headers={**bearer(token), **headers}, body=json.dumps(body))


def sale_body(**changes):
    body = {
        "sku": "TEA-1",
        "price_fen": 5000,
        "quantity": 10,
        "per_user_limit": 1,
        "starts_at": iso_in(-1),
        "ends_at": iso_in(3600),
        "payment_window_s": 300,
    }
    return {**body, **changes}


# -- routes ------------------------------------------------------------------------------------
def test_an_admin_creates_a_sale_and_anyone_sees_it(client, tokens, catalogue):
    # When a merchant admin creates a sale of 10 units at 50 yuan
    created = post(client, "/admin/flash-sales", tokens["merchant_admin"], sale_body(expected_peak_per_s=2000))
    # Then it is there, ACTIVE, with all its units, split over ceil(2000 / 500) = 4 shards
    assert created.status_code == 201, created.json_body
    sale_id = created.json_body["flash_sale_id"]
    assert created.json_body["shards"] == 4
    shown = client.http.get(f"/flash-sales/{sale_id}")
    assert shown.status_code == 200
    assert {k: shown.json_body[k] for k in ("sku", "price_fen", "remaining", "status")} == {
        "sku": "TEA-1",
        "price_fen": 5000,
        "remaining": 10,
        "status": "ACTIVE",
    }


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"quantity": 0}, "quantity"),
        ({"per_user_limit": 0}, "per_user_limit"),
        ({"price_fen": 10001}, "price_fen"),  # above the list price of 100 yuan
        ({"price_fen": 0}, "price_fen"),
        ({"ends_at": iso_in(-10)}, "ends_at"),
        ({"starts_at": iso_in(60), "ends_at": iso_in(30)}, "ends_at"),
        ({"payment_window_s": 0}, "payment_window_s"),
    ],
)
def test_a_sale_that_makes_no_sense_is_refused(client, tokens, catalogue, changes, field):
    refused = post(client, "/admin/flash-sales", tokens["merchant_admin"], sale_body(**changes))
    assert refused.status_code == 422
    assert field in json.dumps(refused.json_body["details"])


def test_a_sale_of_an_unknown_sku_or_by_a_customer_is_refused(client, tokens, catalogue):
    unknown = post(client, "/admin/flash-sales", tokens["merchant_admin"], sale_body(sku="NOPE-1"))
    by_customer = post(client, "/admin/flash-sales", tokens["customer"], sale_body())
    float_price = post(client, "/admin/flash-sales", tokens["merchant_admin"], sale_body(price_fen=49.5))
    assert (unknown.status_code, unknown.json_body["code"]) == (422, "UNKNOWN_SKU")
    assert by_customer.status_code == 403
    assert float_price.status_code == 422
    assert client.http.get("/flash-sales/fs000000000000000000000000").status_code == 404
    assert client.http.get("/flash-sales/nonsense").status_code == 404


def test_buying_gives_a_pending_order_at_the_flash_price_once_per_buyer(client, tokens, catalogue):
    sale_id = post(client, "/admin/flash-sales", tokens["merchant_admin"], sale_body()).json_body["flash_sale_id"]
    # When a customer buys one, then tries again
    first = post(client, f"/flash-sales/{sale_id}/orders", tokens["customer"], {"qty": 1})
    again = post(client, f"/flash-sales/{sale_id}/orders", tokens["customer"], {"qty": 1})
    # Then the first is a PENDING_PAYMENT order at 50 yuan (+ shipping) expiring after the sale's
    # payment window, and the second is refused with 429
    assert first.status_code == 201, first.json_body
    order = first.json_body
    assert order["status"] == "PENDING_PAYMENT" and order["flash_sale_id"] == sale_id
    assert order["lines"][0]["unit_price_fen"] == 5000 and order["lines"][0]["qty"] == 1
    assert order["total_fen"] == 5000 + order["shipping_fen"]
    assert again.status_code == 429 and again.json_body["code"] == "LIMIT_REACHED"
    assert client.http.get(f"/flash-sales/{sale_id}").json_body["remaining"] == 9


def test_a_replayed_key_returns_the_same_order_even_after_the_sale_sold_out(client, tokens, catalogue):
    sale_id = post(client, "/admin/flash-sales", tokens["merchant_admin"], sale_body(quantity=1)).json_body[
        "flash_sale_id"
    ]
    first = post(client, f"/flash-sales/{sale_id}/orders", tokens["customer"], {"qty": 1}, **{"Idempotency-Key": "k1"})
    replay = post(client, f"/flash-sales/{sale_id}/orders", tokens["customer"], {"qty": 1}, **{"Idempotency-Key": "k1"})
    other = post(client, f"/flash-sales/{sale_id}/orders", tokens["customer2"], {"qty": 1})
    assert first.status_code == 201 and replay.status_code == 201
    assert replay.json_body["order_id"] == first.json_body["order_id"]
    assert other.status_code == 409 and other.json_body["code"] == "SOLD_OUT"
    assert client.http.get(f"/flash-sales/{sale_id}").json_body["status"] == "SOLD_OUT"


def test_a_sale_not_started_refuses_buyers(client, tokens, catalogue):
    body = sale_body(starts_at=iso_in(3600), ends_at=iso_in(7200))
    sale_id = post(client, "/admin/flash-sales", tokens["merchant_admin"], body).json_body["flash_sale_id"]
    refused = post(client, f"/flash-sales/{sale_id}/orders", tokens["customer"], {"qty": 1})
    assert refused.status_code == 409 and refused.json_body["code"] == "NOT_STARTED"
    assert client.http.get(f"/flash-sales/{sale_id}").json_body["status"] == "NOT_STARTED"


def test_pickup_at_a_store_that_does_not_exist_is_refused(client, tokens, catalogue):
    sale_id = post(client, "/admin/flash-sales", tokens["merchant_admin"], sale_body()).json_body["flash_sale_id"]
    body = {"qty": 1, "fulfilment": {"type": "pickup", "store_id": "S999"}}
    refused = post(client, f"/flash-sales/{sale_id}/orders", tokens["customer"], body)
    assert refused.status_code == 422 and refused.json_body["code"] == "UNKNOWN_STORE"
    assert client.http.get(f"/flash-sales/{sale_id}").json_body["remaining"] == 10


# -- the service -------------------------------------------------------------------------------
def test_the_window_is_checked_before_any_unit_moves(table, catalogue, flash, clock):
    sale = given_sale(flash, quantity=3)
    move_to(clock, sale.starts_at_ms - 1)
    with pytest.raises(NotStarted):
        buy(flash, sale, "c-1")
    move_to(clock, sale.ends_at_ms)
    with pytest.raises(Ended):
        buy(flash, sale, "c-1")
    move_to(clock, sale.starts_at_ms + 1)
    with pytest.raises(LimitReached):
        buy(flash, sale, "c-1", qty=2)
    assert books(sale).on_shards == 3


@contextmanager
def dynamodb_calls() -> Iterator[list[str]]:
    """The DynamoDB operations sent (every HTTP attempt) inside the block."""
    sent: list[str] = []
    events().register(
        "before-send.dynamodb", lambda event_name, **_: sent.append(event_name.rsplit(".", 1)[-1]), unique_id="ops"
    )
    try:
        yield sent
    finally:
        events().unregister("before-send.dynamodb", unique_id="ops")


def test_an_uncontended_order_is_one_transaction(table, catalogue, flash):
    # Given a sale whose settings this process has already read
    sale = given_sale(flash, quantity=5)
    flash.sale(sale.sale_id)
    # When a buyer buys while no shard is contended
    with dynamodb_calls() as sent:
        buy(flash, sale, "c-1")
    # Then one transaction took the unit and wrote the order: no claim, nothing to reconcile
    assert sent == ["TransactWriteItems"]
    levels = shard_levels(sale)
    assert sum(level.ordered for level in levels) == 1 and sum(level.taken for level in levels) == 0
    state = books(sale)
    assert state.on_shards == 4 and state.balanced and state.unclaimed == 0


def test_a_conflict_on_a_shard_sends_the_sale_the_contended_way(table, catalogue, flash):
    # Given a sale whose shards are held by other transactions (as at a real flash peak)
    sale = given_sale(flash, quantity=5)
    flash.sale(sale.sale_id)
    held = FaultInjector(
        rate=1.0, kinds=[Kind.CONFLICT], operations=["TransactWriteItems"], partitions=lambda pk: "#SHARD#" in pk
    )
    # When a buyer buys, the order's transaction meets a conflict on its shard
    with held.attached(), dynamodb_calls() as sent:
        first = buy(flash, sale, "c-1")
    # Then the purchase goes on without a transaction on the shard: a plain decrement, then the order
    assert first.status == 201 and held.total == 1
    assert sent == ["TransactWriteItems", "UpdateItem", "TransactWriteItems"]
    # And this process keeps the sale on that path: two round trips per order, no conflict possible
    assert flash.contention.contended(sale.sale_id)
    with held.attached(), dynamodb_calls() as sent:
        buy(flash, sale, "c-2")
    assert sent == ["UpdateItem", "TransactWriteItems"] and held.total == 1
    state = books(sale)
    assert state.live_orders == 2 and state.on_shards == 3 and state.balanced and state.unclaimed == 0


def test_the_contended_path_ends_when_its_time_is_up(table, catalogue, flash, clock):
    sale = given_sale(flash, quantity=5)
    flash.sale(sale.sale_id)
    flash.contention.note_conflict(sale.sale_id)
    with dynamodb_calls() as sent:
        buy(flash, sale, "c-1")
    assert sent == ["UpdateItem", "TransactWriteItems"]
    clock.advance(FlashSaleSettings().contended_s)  # FLASH_SALE_CONTENDED_S, 10 s
    with dynamodb_calls() as sent:
        buy(flash, sale, "c-2")
    assert sent == ["TransactWriteItems"]


def test_sold_out_only_when_every_shard_is_empty_and_then_without_writes(table, catalogue, flash):
    # Given 8 units over 4 shards and 8 buyers who all start at the same shard's neighbours
    sale = given_sale(flash, quantity=8, peak=2000)
    for i in range(8):
        buy(flash, sale, f"b-{i}")
    assert books(sale).on_shards == 0
    # When a ninth buyer tries, every shard is found empty; a tenth is answered from the hints
    # after one read that confirms no unit came back, without touching the hot shards' writes
    with pytest.raises(SoldOut):
        buy(flash, sale, "late-1")
    with dynamodb_calls() as sent, pytest.raises(SoldOut):
        buy(flash, sale, "late-2")
    assert sent == ["BatchGetItem"]


def test_units_given_back_after_a_sold_out_answer_are_found_at_once(table, catalogue, flash):
    # Given a sold-out sale this process has seen empty
    sale = given_sale(flash, quantity=1, peak=500)
    order = buy(flash, sale, "first")
    with pytest.raises(SoldOut):
        buy(flash, sale, "second")
    # When the unit comes back (the order is cancelled) within the hint's lifetime
    bootstrap.order_lifecycle().cancel(order.body["order_id"], Principal("first", Role.CUSTOMER))
    # Then the next buyer gets it: SOLD_OUT is only ever said when every shard is empty
    assert buy(flash, sale, "third").status == 201


def test_a_buyer_takes_what_is_left_across_shards(table, catalogue, flash):
    # Given 4 units over 4 shards (one each) and a limit of 3
    sale = given_sale(flash, quantity=4, per_user_limit=3, peak=2000)
    # When a buyer asks for 3
    order = buy(flash, sale, "c-1", qty=3).body
    # Then the order holds 3 units taken from 3 shards, and 1 is left
    assert order["lines"][0]["qty"] == 3
    state = books(sale)
    assert state.on_shards == 1 and state.balanced and state.unclaimed == 0


def test_the_limit_is_counted_in_the_order_and_a_refused_buyer_gives_the_unit_back(table, catalogue, flash):
    sale = given_sale(flash, quantity=5, per_user_limit=2)
    buy(flash, sale, "c-1", qty=2)
    with pytest.raises(LimitReached):
        buy(flash, sale, "c-1", qty=1)
    state = books(sale)
    assert state.on_shards == 3 and state.bought == {"c-1": 2} and state.balanced and state.unclaimed == 0


def test_buying_the_whole_limit_at_once_is_only_for_a_buyer_who_holds_nothing(table, catalogue, flash):
    # Given a limit of 2 and a buyer who holds 1 (the count is written as "bought + 1")
    sale = given_sale(flash, quantity=6, per_user_limit=2)
    buy(flash, sale, "c-1", qty=1)
    # When that buyer asks for the whole limit (the count is written as "bought = 2", no read)
    with pytest.raises(LimitReached):
        buy(flash, sale, "c-1", qty=2)
    # Then it is refused, but one more unit is still allowed, and a new buyer may take both at once
    buy(flash, sale, "c-1", qty=1)
    buy(flash, sale, "c-2", qty=2)
    with pytest.raises(LimitReached):
        buy(flash, sale, "c-2", qty=1)
    state = books(sale)
    assert state.bought == {"c-1": 2, "c-2": 2} and state.balanced and state.unclaimed == 0


def test_cancel_and_expiry_give_units_and_counts_back_and_paid_orders_keep_theirs(table, catalogue, flash):
    # Given three buyers of a sale with a 5-second payment window
    sale = given_sale(flash, quantity=3, payment_window_s=5)
    cancelled_id = buy(flash, sale, "c-1").body["order_id"]
    expiring_id = buy(flash, sale, "c-2").body["order_id"]
    paid = buy(flash, sale, "c-3").body
    # When c-1 cancels, c-3 pays, and the sweeper runs after the window
    clock = FakeClock(now_ms())
    order_lifecycle = bootstrap.order_lifecycle(clock)
    order_lifecycle.cancel(cancelled_id, Principal("c-1", Role.CUSTOMER))
    notice = PaymentNotice(paid["order_id"], "wx-flash", paid["total_fen"], "2026-11-23T01:00:00Z")
    order_lifecycle.apply_payment(notice)
    clock.advance(6)
    assert order_lifecycle.expire_due() == 1
    # Then two units are back on the shards, the paid one stays sold, and counts match orders
    state = books(sale)
    assert state.on_shards == 2 and state.in_live_orders == 1 and state.balanced
    assert order_lifecycle.load(expiring_id).status == "CANCELLED"
    # And the returned units can be bought again, even by a buyer whose order expired
    buy(flash, sale, "c-2")
    buy(flash, sale, "c-4")
    assert books(sale).on_shards == 0


def test_a_unit_taken_by_a_purchase_that_died_is_given_back_by_the_reconciler(table, catalogue, clock):
    # Given a purchase that took a unit and died before writing its order
    flash = flash_service(clock, FlashSaleSettings(settle_s=1.0))
    sale = given_sale(flash, quantity=2, peak=500)
    lost = DynamoShards().take(sale.sale_id, 0, 1)
    assert books(sale).on_shards == 1 and books(sale).unclaimed == 1
    # When the reconciler has seen the unit, and looked again after the settle time
    assert flash.reconcile() == 0  # first sight: too early to judge
    clock.advance(1.0)
    assert flash.reconcile() == 1
    # Then the unit is back, claimed VOID, and the dead purchase could never claim it now
    state = books(sale)
    assert state.on_shards == 2 and state.unclaimed == 0
    outcome = flash.give_back(sale, [lost])
    assert outcome.voided_before == [lost] and books(sale).on_shards == 2
    # And orders placed since are not touched by later runs
    buy(flash, sale, "c-1")
    clock.advance(1.0)
    flash.reconcile()
    clock.advance(2.0)
    assert flash.reconcile() == 0
    assert books(sale).balanced


def test_a_decrement_applied_twice_after_a_lost_response_is_repaired(table, catalogue, clock):
    # Given the shard decrement's response is lost once (botocore sends it again)
    flash = flash_service(clock, FlashSaleSettings(settle_s=0))
    sale = given_sale(flash, quantity=3, peak=500)
    flash.sale(sale.sale_id)
    flash.contention.note_conflict(sale.sale_id)  # the path that decrements first
    lost = FaultInjector(rate=1.0, kinds=[Kind.TIMEOUT_APPLIED], operations=["UpdateItem"], max_faults=1)
    with lost.attached():
        order = buy(flash, sale, "c-1").body
    # Then the buyer has exactly one order; the first decrement's unit is unclaimed for a while
    assert lost.total == 1 and order["lines"][0]["qty"] == 1
    state = books(sale)
    assert state.in_live_orders == 1 and state.unclaimed == 1 and state.on_shards == 1
    # And the reconciler gives it back
    flash.reconcile()
    clock.advance(0.001)
    flash.reconcile()
    state = books(sale)
    assert state.on_shards == 2 and state.unclaimed == 0 and state.balanced


@pytest.mark.parametrize("contended", [False, True], ids=["one transaction", "decrement first"])
def test_a_lost_response_of_the_order_transaction_still_answers_with_the_order(table, catalogue, contended, flash):
    sale = given_sale(flash, quantity=3)
    flash.sale(sale.sale_id)
    if contended:
        flash.contention.note_conflict(sale.sale_id)
    lost = FaultInjector(rate=1.0, kinds=[Kind.TIMEOUT_APPLIED], operations=["TransactWriteItems"], max_faults=1)
    with lost.attached():
        order = buy(flash, sale, "c-1").body
    assert lost.total == 1 and order["status"] == "PENDING_PAYMENT"
    state = books(sale)
    assert state.live_orders == 1 and state.on_shards == 2 and state.balanced and state.unclaimed == 0


@pytest.mark.parametrize("contended", [False, True], ids=["one transaction", "decrement first"])
def test_a_replayed_key_sells_nothing_more(table, catalogue, contended, flash):
    sale = given_sale(flash, quantity=3, per_user_limit=2)
    flash.sale(sale.sale_id)
    if contended:
        flash.contention.note_conflict(sale.sale_id)
    first = buy(flash, sale, "c-1", key="k-1")
    again = buy(flash, sale, "c-1", key="k-1")
    assert again.body == first.body
    state = books(sale)
    assert state.live_orders == 1 and state.on_shards == 2 and state.bought == {"c-1": 1} and state.balanced


def test_when_the_order_cannot_be_written_the_units_go_back(table, catalogue, flash):
    # Given DynamoDB keeps cancelling the order's transaction with conflicts
    sale = given_sale(flash, quantity=3)
    flash.sale(sale.sale_id)
    busy = FaultInjector(
        rate=1.0,
        kinds=[Kind.CONFLICT],
        operations=["TransactWriteItems"],
        match=lambda call: any(pk.startswith("ORDER#") for pk in call.partitions),
    )
    # When a buyer tries, the answer is a retryable 503 and nothing is sold
    with busy.attached(), pytest.raises(TemporarilyUnavailable):
        buy(flash, sale, "c-1")
    state = books(sale)
    assert state.on_shards == 3 and state.live_orders == 0 and state.unclaimed == 0 and state.bought == {}


def test_a_slow_purchase_loses_its_units_to_the_reconciler_and_sells_nothing(table, catalogue, clock):
    # Given the reconciler voided a take before its purchase wrote the order
    flash = flash_service(clock, FlashSaleSettings(settle_s=0))
    sale = given_sale(flash, quantity=1, peak=500)
    taken = DynamoShards().take(sale.sale_id, 0, 1)
    flash.reconcile()
    clock.advance(0.001)
    flash.reconcile()
    assert books(sale).on_shards == 1
    # When the slow purchase now writes its order with that take
    placement = flash.purchases._placement(sale, FlashOrder(1, HOME_DELIVERY))
    request = IdempotentRequest.of("flash:slow", None, {})
    with pytest.raises(TemporarilyUnavailable):
        flash.purchases._write_order(sale, "slow", 1, placement, [taken], request)
    # Then no order exists and the unit is on the shard once
    state = books(sale)
    assert state.live_orders == 0 and state.on_shards == 1 and state.bought == {}


def test_fulfilment_pickup_at_a_known_store(client, tokens, catalogue):
    from shared.data.items import LocationItem

    pk, sk = LocationItem.key("S001")
    LocationItem(
        pk, sk, location_id="S001", kind="store", name="静安店", city="上海", gsi1pk="LOCATIONS", gsi1sk="S001"
    ).save()
    sale_id = post(client, "/admin/flash-sales", tokens["merchant_admin"], sale_body()).json_body["flash_sale_id"]
    body = {"qty": 1, "fulfilment": {"type": "pickup", "store_id": "S001"}}
    placed = post(client, f"/flash-sales/{sale_id}/orders", tokens["customer"], body)
    assert placed.status_code == 201, placed.json_body
    assert placed.json_body["location"] == "S001" and placed.json_body["shipping_fen"] == 0


def test_time_runs_out(client, tokens, catalogue):
    # Given a sale of one second, created (on the service's own clock) ten seconds ago
    ten_seconds_ago = FakeClock(now_ms() - 10_000)
    sale_id = given_sale(flash_service(ten_seconds_ago), starts_in_s=-0.5, lasts_s=1.0).sale_id
    # When a buyer comes now, the sale has ended
    refused = post(client, f"/flash-sales/{sale_id}/orders", tokens["customer"], {"qty": 1})
    assert refused.status_code == 409 and refused.json_body["code"] == "ENDED"
    assert client.http.get(f"/flash-sales/{sale_id}").json_body["status"] == "ENDED"
