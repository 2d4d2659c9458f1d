"""The pure parts of flash sales: how many shards, how units are split and numbered, the sale's
status, and which unit numbers no claim covers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.catalog.model import Product
from shared.flash_sales.model import (
    ClaimStatus,
    ContendedSales,
    FlashSale,
    NewFlashSale,
    SaleDefaults,
    SaleStatus,
    Take,
    UnitClaim,
    unclaimed,
)
from shared.kernel.clock import FakeClock
from shared.kernel.errors import Ended, LimitReached, NotStarted, ValidationFailed
from shared.kernel.shards import shard_order, shards_for_peak, split

PRODUCT = Product(sku="TEA-1", name="龙井", price_fen=10000)


@pytest.mark.parametrize(
    ("peak", "quantity", "shards"),
    [(20_000, 100_000, 40), (2_000, 1_000, 4), (1, 1_000, 1), (500, 1_000, 1), (501, 1_000, 2), (20_000, 3, 3)],
)
def test_shards_follow_the_peak_and_never_outnumber_the_units(peak, quantity, shards):
    assert shards_for_peak(peak, quantity) == shards


def test_shards_are_capped_for_a_sale_created_in_one_transaction():
    assert shards_for_peak(10**6, 10**6) == 64


@given(st.integers(1, 10**6), st.integers(1, 64))
def test_a_split_keeps_every_unit_and_is_as_even_as_it_goes(quantity, shards):
    parts = split(quantity, shards)
    assert sum(parts) == quantity and len(parts) == shards
    assert max(parts) - min(parts) <= 1


@given(st.text(min_size=1, max_size=20), st.integers(1, 64))
def test_a_buyer_visits_every_shard_once_starting_at_its_own(customer, shards):
    order = shard_order(customer, shards)
    assert sorted(order) == list(range(shards))
    assert order == shard_order(customer, shards)


def sale(now_ms=0, **changes):
    args = {
        "sku": PRODUCT.sku,
        "price_fen": 5000,
        "quantity": 100,
        "per_user_limit": 2,
        "starts_at_ms": 1_000,
        "ends_at_ms": 2_000,
        "payment_window_s": 300,
        "expected_peak_per_s": 2_000,
    }
    return FlashSale.plan("fs1", PRODUCT, NewFlashSale(**{**args, **changes}), SaleDefaults(), now_ms)


def test_what_the_creator_leaves_out_comes_from_the_settings():
    wanted = NewFlashSale(PRODUCT.sku, 5000, 100, 2, 1_000, 2_000)
    planned = FlashSale.plan("fs1", PRODUCT, wanted, SaleDefaults(payment_window_s=120, peak_per_s=20_000), 0)
    assert (planned.payment_window_s, planned.shards) == (120, 40)
    assert (planned.product_name, planned.list_price_fen) == (PRODUCT.name, PRODUCT.price_fen)


def test_status_follows_the_window_and_the_units():
    planned = sale()
    assert planned.status(999, 100) is SaleStatus.NOT_STARTED
    assert planned.status(1_000, 1) is SaleStatus.ACTIVE
    assert planned.status(1_500, 0) is SaleStatus.SOLD_OUT
    assert planned.status(2_000, 5) is SaleStatus.ENDED


def test_what_can_be_refused_without_the_database():
    planned = sale()
    with pytest.raises(NotStarted):
        planned.check_purchase(1, 999)
    with pytest.raises(Ended):
        planned.check_purchase(1, 2_000)
    with pytest.raises(LimitReached):
        planned.check_purchase(3, 1_500)
    planned.check_purchase(2, 1_500)


@pytest.mark.parametrize(
    "changes",
    [{"price_fen": 10_001}, {"quantity": 0}, {"per_user_limit": 21}, {"ends_at_ms": 1_000}, {"payment_window_s": 0}],
)
def test_a_sale_that_makes_no_sense_is_refused(changes):
    with pytest.raises(ValidationFailed):
        sale(**changes)


def test_a_take_owns_the_units_that_end_at_the_shards_count():
    assert Take(shard=3, last_unit=10, qty=3).first_unit == 8


def test_units_no_claim_covers_are_found():
    claims = [UnitClaim(first_unit=1, qty=2, status=ClaimStatus.ORDER), UnitClaim(5, 1, ClaimStatus.VOID)]
    assert unclaimed(claims, checked=0, through=6) == [3, 4, 6]
    assert unclaimed(claims, checked=4, through=5) == []


def test_a_sale_is_contended_from_a_conflict_until_its_mark_lapses():
    clock = FakeClock()
    marks = ContendedSales(lifetime_s=0.05, clock=clock)
    assert not marks.contended("fs-1")
    marks.note_conflict("fs-1")
    assert marks.contended("fs-1") and not marks.contended("fs-2")
    clock.advance(0.06)
    assert not marks.contended("fs-1")
    marks.note_conflict("fs-1")
    marks.clear("fs-1")
    assert not marks.contended("fs-1")
