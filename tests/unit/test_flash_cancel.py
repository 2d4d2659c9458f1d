"""Cancelling a flash sale (issue 10, finding 5: "units unsold when the sale ends (or when it is
cancelled) return to the location"; docs/flash-sales.md, "Cancelling a sale"), on the in-memory
stores: purchases refused at once, even by a process that still has the sale cached; the unsold
units back at the sale's location on the reconciler's next run; orders placed before untouched."""

from __future__ import annotations

import pytest

from shared.flash_sales.commands import FlashOrder
from shared.flash_sales.model import SaleStatus
from shared.kernel.errors import Ended, NotFound, SaleCancelled
from shared.kernel.idempotency import IdempotentRequest
from shared.kernel.identity import Principal, Role
from shared.ordering.model import Status
from tests.fakes.flash_sales import FlashOnFakes, MemorySales, flash_on_fakes
from tests.unit.test_flash_stock import HOME, PICKUP, STORE, TEA, balanced, buy, end, given_sale, pay


@pytest.fixture
def fakes() -> FlashOnFakes:
    return flash_on_fakes(products=[TEA], stores=[STORE], stock={("TEA-1", "WH"): 20, ("TEA-1", "S001"): 20})


def attempt(fakes: FlashOnFakes, sale_id: str, customer: str) -> None:
    request = IdempotentRequest.of(f"flash:{sale_id}:{customer}", None, {"qty": 1})
    fakes.flash.purchase(sale_id, customer, FlashOrder(1, HOME), request)


def test_cancel_refuses_purchases_and_the_reconciler_returns_every_unsold_unit(fakes):
    sale = given_sale(fakes, quantity=6, location="S001")
    paid, unpaid = buy(fakes, sale, "c-1", fulfilment=PICKUP), buy(fakes, sale, "c-2")
    pay(fakes, paid)
    assert fakes.stock("TEA-1", "S001") == (19, 5, 14)

    answer = fakes.flash.cancel(sale.sale_id)
    assert answer["status"] == "CANCELLED" and answer["cancelled_at"]
    assert fakes.stock("TEA-1", "S001") == (19, 5, 14)  # nothing moves until the reconciler runs
    with pytest.raises(SaleCancelled):
        attempt(fakes, sale.sale_id, "c-3")
    assert fakes.flash.view(sale.sale_id)["status"] == SaleStatus.CANCELLED

    fakes.flash.reconcile()  # due at once, although the sale's end is 10 minutes away
    assert fakes.stock("TEA-1", "S001") == (19, 1, 18)  # the 4 unsold back; the unpaid order's unit held
    assert fakes.lifecycle.load(paid).status is Status.PAID
    # The unpaid order may still be paid ... or cancelled, its unit back on the next run
    fakes.lifecycle.cancel(unpaid, Principal("c-2", Role.CUSTOMER))
    fakes.flash.reconcile()
    assert fakes.stock("TEA-1", "S001") == (19, 0, 19)
    assert fakes.stock("TEA-1", "WH") == (20, 0, 20)
    assert fakes.balanced(sale)
    balanced(fakes)


def test_a_process_that_still_has_the_sale_cached_sells_nothing_after_the_cancel(fakes):
    sale = given_sale(fakes, quantity=4)
    buy(fakes, sale, "c-1")  # this process has read the sale now
    MemorySales(fakes.tables).cancel(sale, fakes.clock.now_ms())  # another process cancels it
    assert fakes.flash.sale(sale.sale_id).cancelled_at_ms is None  # still cached here
    with pytest.raises(SaleCancelled):
        attempt(fakes, sale.sale_id, "c-2")  # the one-transaction path meets the closed shard
    assert fakes.flash.sale(sale.sale_id).cancelled_at_ms is not None  # and reads the sale again
    fakes.flash.contention.note_conflict(sale.sale_id)
    fakes.flash.purchases.hints.note_empty(sale.sale_id, 0)
    with pytest.raises(SaleCancelled):
        fakes.flash.purchases.take_units(sale, "c-3", 1)  # the contended path: closed shards too
    assert fakes.on_shards(sale) == 3 and fakes.balanced(sale)


def test_cancelling_again_answers_the_same_and_writes_nothing(fakes):
    sale = given_sale(fakes, quantity=3)
    first = fakes.flash.cancel(sale.sale_id)
    fakes.clock.advance(5)
    fakes.tables.calls.clear()
    assert fakes.flash.cancel(sale.sale_id) == first
    assert "cancel" not in fakes.tables.calls
    # Two cancels racing: the second one's write finds the first's and answers with it
    stale = sale  # read before either cancel
    first_at = fakes.flash.sale(sale.sale_id).cancelled_at_ms
    assert first_at is not None
    assert MemorySales(fakes.tables).cancel(stale, fakes.clock.now_ms()).cancelled_at_ms == first_at


def test_an_ended_or_unknown_sale_cannot_be_cancelled(fakes):
    sale = given_sale(fakes, quantity=3)
    with pytest.raises(NotFound):
        fakes.flash.cancel("fs" + "0" * 24)
    end(fakes, sale)
    with pytest.raises(Ended):
        fakes.flash.cancel(sale.sale_id)
    assert fakes.tables.sales[sale.sale_id].cancelled_at_ms is None
