"""Buying in a flash sale, on the in-memory ports (milliseconds, no emulator): the two purchase
paths, the sold-out rule, the limit, replays, units coming back, and creating and showing a sale
(docs/flash-sales.md). The same rules run on moto in tests/functional/test_flash_sales.py."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.catalog.model import Product
from shared.flash_sales.commands import FlashOrder
from shared.flash_sales.model import ClaimStatus, FlashSale, NewFlashSale, UnitClaim
from shared.flash_sales.service import FlashSaleSettings
from shared.inventory.locations import Location
from shared.kernel.errors import (
    Ended,
    FulfilmentRequired,
    IdempotencyKeyReused,
    LimitReached,
    NotStarted,
    OutOfStock,
    RuleViolation,
    SoldOut,
    TemporarilyUnavailable,
    UnknownSku,
    ValidationFailed,
)
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.kernel.identity import Principal, Role
from shared.kernel.shards import start_shard
from shared.ordering.fulfilment import Address, Fulfilment, FulfilmentType
from tests.fakes.flash_sales import FlashOnFakes, flash_on_fakes
from tests.fakes.ordering import MemorySavedAddresses

TEA = Product(sku="TEA-1", name="龙井", price_fen=10_000)
HOME = Address("韩梅梅", "+86 137 0000 1234", "上海", "徐汇区 3 号")
HOME_DELIVERY = Fulfilment(FulfilmentType.DELIVERY, address=HOME)
STORE = Location("S001", "store", "静安店", "上海")


@pytest.fixture
def fakes() -> FlashOnFakes:
    return flash_on_fakes(products=[TEA], stores=[STORE])


def given_sale(
    fakes: FlashOnFakes,
    quantity: int = 10,
    per_user_limit: int = 1,
    peak: int = 2000,
    payment_window_s: int = 900,
    key: str | None = None,
) -> FlashSale:
    now = fakes.clock.now_ms()
    wanted = NewFlashSale("TEA-1", 5000, quantity, per_user_limit, now - 1000, now + 3_600_000, payment_window_s, peak)
    created = fakes.flash.create(wanted, IdempotentRequest.of("flash-sales:admin", key, {"q": quantity}))
    return fakes.flash.sale(created.body["flash_sale_id"])


def buy(
    fakes: FlashOnFakes, sale: FlashSale, customer: str, qty: int = 1, key: str | None = None, **fulfilment: object
) -> StoredResponse:
    # A delivery unless the test names another fulfilment (none at all: the saved address, below)
    chosen = Fulfilment(**fulfilment) if fulfilment else HOME_DELIVERY  # type: ignore[arg-type]
    wanted = FlashOrder(qty, chosen)
    request = IdempotentRequest.of(f"flash:{sale.sale_id}:{customer}", key, {"qty": qty})
    return fakes.flash.purchase(sale.sale_id, customer, wanted, request)


# -- creating and showing ------------------------------------------------------------------------
def test_a_sale_is_created_with_the_settings_defaults_and_shown_with_its_units(fakes):
    now = fakes.clock.now_ms()
    wanted = NewFlashSale("TEA-1", 5000, 10, 1, now - 1000, now + 60_000)
    created = fakes.flash.create(wanted, IdempotentRequest.of("flash-sales:admin", None, {}))
    assert created.status == 201
    assert (created.body["payment_window_s"], created.body["shards"]) == (900, 4)  # FlashSaleSettings()
    shown = fakes.flash.view(created.body["flash_sale_id"])
    assert (shown["remaining"], shown["status"], shown["price_fen"]) == (10, "ACTIVE", 5000)


def test_a_sale_of_an_unknown_product_or_that_makes_no_sense_creates_nothing(fakes):
    now = fakes.clock.now_ms()
    request = IdempotentRequest.of("flash-sales:admin", None, {})
    with pytest.raises(UnknownSku):
        fakes.flash.create(NewFlashSale("NOPE-1", 5000, 10, 1, now, now + 60_000), request)
    with pytest.raises(ValidationFailed) as refused:
        fakes.flash.create(NewFlashSale("TEA-1", 10_001, 0, 1, now, now - 1), request)
    assert {problem["field"] for problem in refused.value.details["errors"]} == {"price_fen", "quantity", "ends_at"}
    assert fakes.tables.sales == {}


def test_a_replayed_creation_answers_the_first_sale_and_creates_no_other(fakes):
    first = given_sale(fakes, key="k-1")
    again = given_sale(fakes, key="k-1")
    assert again == first and list(fakes.tables.sales) == [first.sale_id]
    with pytest.raises(IdempotencyKeyReused):
        given_sale(fakes, quantity=11, key="k-1")


def test_the_status_follows_the_clock_and_the_shards(fakes):
    sale = given_sale(fakes, quantity=1, peak=500)
    buy(fakes, sale, "c-1")
    assert fakes.flash.view(sale.sale_id)["status"] == "SOLD_OUT"
    fakes.clock.advance(3600)
    assert fakes.flash.view(sale.sale_id)["status"] == "ENDED"


# -- the two paths -------------------------------------------------------------------------------
def test_an_uncontended_order_is_one_transaction_and_nothing_to_claim(fakes):
    sale = given_sale(fakes, quantity=5)
    order = buy(fakes, sale, "c-1").body
    assert fakes.transactions == 1 and "take" not in fakes.tables.calls
    assert order["status"] == "PENDING_PAYMENT" and order["flash_sale_id"] == sale.sale_id
    assert order["lines"][0]["unit_price_fen"] == 5000
    assert sum(held.ordered for held in fakes.tables.shards.values()) == 1 and fakes.tables.claims == {}
    assert fakes.balanced(sale)


def test_a_shard_held_by_another_transaction_sends_the_sale_the_contended_way(fakes):
    # Given the buyer's own shard is held by other transactions (as at a real peak)
    sale = given_sale(fakes, quantity=8)
    held = start_shard("c-1", sale.shards)
    fakes.tables.busy.add((sale.sale_id, held))
    # When the buyer buys, the order's transaction is refused on that shard
    order = buy(fakes, sale, "c-1").body
    # Then the purchase goes on by a plain decrement of another shard, then the order with its claim
    assert order["status"] == "PENDING_PAYMENT" and fakes.transactions == 2
    assert fakes.flash.contention.contended(sale.sale_id) and not fakes.flash.hints.seems_empty(sale.sale_id, held)
    assert [claim.status for claim, _ in fakes.tables.claims.values()] == [ClaimStatus.ORDER]
    # And the next purchase goes that way at once: a decrement, then one transaction
    fakes.tables.busy.clear()
    calls = len(fakes.tables.calls)
    buy(fakes, sale, "c-2")
    assert fakes.tables.calls[calls:] == ["take"] and fakes.transactions == 3
    assert fakes.balanced(sale)


def test_the_contended_path_ends_when_its_time_is_up(fakes):
    sale = given_sale(fakes, quantity=5)
    fakes.flash.contention.note_conflict(sale.sale_id)
    buy(fakes, sale, "c-1")
    assert fakes.tables.calls.count("take") == 1
    fakes.clock.advance(FlashSaleSettings().contended_s)
    buy(fakes, sale, "c-2")
    assert fakes.tables.calls.count("take") == 1 and fakes.balanced(sale)


def test_a_buyer_takes_what_is_left_across_shards(fakes):
    sale = given_sale(fakes, quantity=4, per_user_limit=3)
    assert sale.shards == 4
    order = buy(fakes, sale, "c-1", qty=3).body
    assert order["lines"][0]["qty"] == 3 and fakes.on_shards(sale) == 1
    assert sum(claim.qty for claim, _ in fakes.tables.claims.values()) == 3 and fakes.balanced(sale)


# -- sold out, out of stock, busy ----------------------------------------------------------------
def test_sold_out_only_when_every_shard_is_empty_and_then_from_the_hints_with_one_read(fakes):
    sale = given_sale(fakes, quantity=8)
    for i in range(8):
        buy(fakes, sale, f"b-{i}")
    with pytest.raises(SoldOut):
        buy(fakes, sale, "late-1")
    calls, transactions = len(fakes.tables.calls), fakes.transactions
    with pytest.raises(SoldOut):
        buy(fakes, sale, "late-2")
    assert fakes.tables.calls[calls:] == ["levels"] and fakes.transactions == transactions


def test_units_given_back_after_a_sold_out_answer_are_found_at_once(fakes):
    sale = given_sale(fakes, quantity=1, peak=500)
    order = buy(fakes, sale, "first").body
    with pytest.raises(SoldOut):
        buy(fakes, sale, "second")
    fakes.lifecycle.cancel(order["order_id"], Principal("first", Role.CUSTOMER))
    assert buy(fakes, sale, "third").status == 201


def test_fewer_left_than_asked_is_out_of_stock_and_gives_back_what_was_taken(fakes):
    sale = given_sale(fakes, quantity=2, per_user_limit=3, peak=1000)
    with pytest.raises(OutOfStock):
        buy(fakes, sale, "c-1", qty=3)
    assert fakes.on_shards(sale) == 2 and fakes.live_orders(sale) == [] and fakes.balanced(sale)


def test_every_shard_busy_is_a_retryable_503_that_sells_nothing(fakes):
    sale = given_sale(fakes, quantity=4, peak=1000)
    fakes.tables.busy.update({(sale.sale_id, 0), (sale.sale_id, 1)})
    with pytest.raises(TemporarilyUnavailable):
        buy(fakes, sale, "c-1")
    assert fakes.on_shards(sale) == 4 and fakes.live_orders(sale) == []


# -- the window and the limit --------------------------------------------------------------------
def test_the_window_and_the_limit_are_checked_before_any_unit_moves(fakes):
    sale = given_sale(fakes, quantity=3)
    fakes.clock.advance(-1.001)  # a millisecond before it starts
    with pytest.raises(NotStarted):
        buy(fakes, sale, "c-1")
    fakes.clock.advance(1.001 + 3600)  # the moment it ends
    with pytest.raises(Ended):
        buy(fakes, sale, "c-1")
    assert fakes.transactions == 0 and "take" not in fakes.tables.calls


@pytest.mark.parametrize("contended", [False, True], ids=["one transaction", "decrement first"])
def test_the_limit_is_counted_in_the_order_and_a_refused_buyer_keeps_no_unit(fakes, contended):
    sale = given_sale(fakes, quantity=5, per_user_limit=2)
    if contended:
        fakes.flash.contention.note_conflict(sale.sale_id)
    buy(fakes, sale, "c-1", qty=2)
    with pytest.raises(LimitReached):
        buy(fakes, sale, "c-1")
    with pytest.raises(LimitReached):
        buy(fakes, sale, "c-1", qty=3)  # more than the limit: refused before anything moves
    assert fakes.on_shards(sale) == 3 and fakes.tables.bought == {(sale.sale_id, "c-1"): 2} and fakes.balanced(sale)


def test_the_whole_limit_at_once_is_only_for_a_buyer_who_holds_nothing(fakes):
    sale = given_sale(fakes, quantity=6, per_user_limit=2)
    buy(fakes, sale, "c-1", qty=1)
    with pytest.raises(LimitReached):
        buy(fakes, sale, "c-1", qty=2)
    buy(fakes, sale, "c-1", qty=1)
    buy(fakes, sale, "c-2", qty=2)
    assert fakes.balanced(sale)


# -- replays and failures ------------------------------------------------------------------------
@pytest.mark.parametrize("contended", [False, True], ids=["one transaction", "decrement first"])
def test_a_replayed_key_sells_nothing_more_even_after_the_sale_sold_out(fakes, contended):
    sale = given_sale(fakes, quantity=1, per_user_limit=2, peak=500)
    if contended:
        fakes.flash.contention.note_conflict(sale.sale_id)
    first = buy(fakes, sale, "c-1", key="k-1")
    again = buy(fakes, sale, "c-1", key="k-1")
    assert again.body == first.body and len(fakes.live_orders(sale)) == 1
    assert fakes.tables.bought == {(sale.sale_id, "c-1"): 1} and fakes.balanced(sale)


def test_when_the_order_cannot_be_written_the_units_go_back(fakes):
    sale = given_sale(fakes, quantity=3)
    fakes.ordering.tables.unavailable = 2  # the one-transaction attempt, then the contended one
    with pytest.raises(TemporarilyUnavailable):
        buy(fakes, sale, "c-1")
    assert fakes.on_shards(sale) == 3 and fakes.live_orders(sale) == [] and fakes.tables.bought == {}
    assert [claim.status for claim, _ in fakes.tables.claims.values()] == [ClaimStatus.VOID]


def test_a_slow_purchase_loses_its_units_to_the_reconciler_and_sells_nothing():
    fakes = flash_on_fakes(products=[TEA], settings=FlashSaleSettings(settle_s=0))
    sale = given_sale(fakes, quantity=1, peak=500)
    taken = fakes.flash.purchases._shards.take(sale.sale_id, 0, 1)
    fakes.flash.reconcile()
    fakes.clock.advance(0.001)
    assert fakes.flash.reconcile() == 1
    placement = fakes.flash.purchases._placement(sale, FlashOrder(1, HOME_DELIVERY))
    with pytest.raises(TemporarilyUnavailable):
        fakes.flash.purchases._write_order(sale, "slow", 1, placement, [taken], IdempotentRequest.of("s", None, {}))
    assert fakes.live_orders(sale) == [] and fakes.on_shards(sale) == 1 and fakes.tables.bought == {}
    assert fakes.tables.claim_of(sale.sale_id, taken) == UnitClaim(1, 1, ClaimStatus.VOID)


# -- unpaid orders -------------------------------------------------------------------------------
def test_cancel_and_expiry_give_units_and_counts_back_and_the_buyer_may_buy_again(fakes):
    sale = given_sale(fakes, quantity=3, payment_window_s=5)
    cancelled = buy(fakes, sale, "c-1").body["order_id"]
    buy(fakes, sale, "c-2")
    buy(fakes, sale, "c-3")
    fakes.lifecycle.cancel(cancelled, Principal("c-1", Role.CUSTOMER))
    fakes.clock.advance(6)
    assert fakes.lifecycle.expire_due() == 2
    assert fakes.on_shards(sale) == 3 and fakes.balanced(sale)
    assert sum(held.returned for held in fakes.tables.shards.values()) == 3
    buy(fakes, sale, "c-2")
    assert fakes.on_shards(sale) == 2 and fakes.balanced(sale)


# -- fulfilment ----------------------------------------------------------------------------------
def test_pickup_at_a_store_holds_the_sales_units_at_that_store_and_same_city_is_refused(fakes):
    sale = given_sale(fakes, quantity=3)
    order = buy(fakes, sale, "c-1", type=FulfilmentType.PICKUP, store_id="S001").body
    assert order["location"] == "S001" and order["shipping_fen"] == 0
    with pytest.raises(RuleViolation):
        buy(fakes, sale, "c-2", type=FulfilmentType.SAME_CITY)
    assert fakes.balanced(sale)


def test_without_a_fulfilment_the_order_goes_to_the_saved_address_or_is_refused():
    # Given a sale, one buyer with a saved default address (with coordinates) and one without
    saved = MemorySavedAddresses({"c-home": replace(HOME, lat=31.2, lng=121.4)})
    fakes = flash_on_fakes(products=[TEA], stores=[STORE], addresses=saved)
    sale = given_sale(fakes, quantity=3, per_user_limit=3)
    request = IdempotentRequest.of(f"flash:{sale.sale_id}:c-home", None, {"qty": 1})
    # When each buys without naming a fulfilment
    order = fakes.flash.purchase(sale.sale_id, "c-home", FlashOrder(1), request).body
    with pytest.raises(FulfilmentRequired) as refused:
        fakes.flash.purchase(sale.sale_id, "c-none", FlashOrder(1), IdempotentRequest.of("f:c-none", None, {}))
    # Then the first is a delivery from the warehouse to its saved address (no coordinates), and the
    # second is 422 FULFILMENT_REQUIRED with nothing sold
    assert order["fulfilment"] == {
        "type": "delivery",
        "address": {"recipient": "韩梅梅", "phone": "+86 137 0000 1234", "city": "上海", "detail": "徐汇区 3 号"},
    }
    assert order["location"] == "WH"
    assert refused.value.code == "FULFILMENT_REQUIRED" and isinstance(refused.value, RuleViolation)  # 422
    assert len(fakes.live_orders(sale)) == 1 and fakes.balanced(sale)


def test_without_a_fulfilment_or_an_address_store_nothing_is_a_delivery_to_nowhere(fakes):
    sale = given_sale(fakes, quantity=1)
    with pytest.raises(FulfilmentRequired):
        fakes.flash.purchase(sale.sale_id, "c-1", FlashOrder(1), IdempotentRequest.of("f:c-1", None, {}))
    assert fakes.live_orders(sale) == [] and fakes.on_shards(sale) == 1
