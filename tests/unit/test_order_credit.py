"""The credited parties frozen onto an order when it is placed (docs/commission.md, "Binding and
credit"): the checkout's read brings the binding and the last share (CreditFacts), the placement
decides who the order credits at its own time and writes it on the order and its events."""

from __future__ import annotations

from shared.catalog.model import Product
from shared.inventory.locations import Location
from shared.kernel.credited import Credited, CreditFacts
from shared.kernel.idempotency import IdempotentRequest
from shared.ordering.model import Placement
from shared.ordering.pricing import CartLine, PricingRules, price_cart
from tests.fakes.ordering import ordering_on_fakes

TEA = Product(sku="TEA-1", name="龙井", price_fen=10000)
BOUND = Credited(dealer_id="D001", store_id="S001", guide_id="G001")
DAY_MS = 86_400_000


def shop():
    return ordering_on_fakes(products=[TEA], stock={("TEA-1", "WH"): 10}, locations=[Location("WH", "warehouse", "仓")])


def priced(credit: CreditFacts | None, flash_sale_id: str | None = None) -> Placement:
    quote = price_cart(
        [CartLine("TEA-1", 1)], {"TEA-1": TEA}, is_member=False, fulfilment_type="delivery", rules=PricingRules()
    )
    return Placement(
        quote=quote,
        location="WH",
        fulfilment={"type": "delivery"},
        payment_window_s=60,
        flash_sale_id=flash_sale_id,
        credit=credit,
    )


def placed(credit: CreditFacts | None, flash_sale_id: str | None = None):
    fakes = shop()
    stored = fakes.placement.place(priced(credit, flash_sale_id), "c-1", IdempotentRequest.of("orders:c-1", None, {}))
    return fakes, fakes.reads.get(stored.body["order_id"])


def test_the_order_and_its_events_carry_who_was_credited_when_it_was_placed():
    _, order = placed(CreditFacts(bound=BOUND))
    assert order is not None and order.credited == BOUND.to_dict()
    assert order.event_payload()["credited"] == {"dealer_id": "D001", "store_id": "S001", "guide_id": "G001"}


def test_a_lapsed_binding_and_a_stale_share_credit_nobody_and_the_order_says_so():
    fakes = shop()
    now = fakes.clock.now_ms()
    facts = CreditFacts(
        bound=BOUND,
        bound_until_ms=now,
        sharer_id="m-1",
        shared=Credited(distributor_1_id="m-1"),
        shared_at_ms=now - DAY_MS,
    )
    stored = fakes.placement.place(priced(facts), "c-1", IdempotentRequest.of("orders:c-1", None, {}))
    order = fakes.reads.get(stored.body["order_id"])
    assert order is not None and order.event_payload()["credited"] == {}


def test_a_fresh_share_credits_the_distributor_and_its_upline_besides_the_binding():
    fakes = shop()
    now = fakes.clock.now_ms()
    facts = CreditFacts(
        bound=BOUND,
        sharer_id="m-1",
        shared=Credited(distributor_1_id="m-1", distributor_2_id="m-0"),
        shared_at_ms=now - DAY_MS + 1,
    )
    stored = fakes.placement.place(priced(facts), "c-1", IdempotentRequest.of("orders:c-1", None, {}))
    order = fakes.reads.get(stored.body["order_id"])
    assert order is not None
    assert Credited.from_dict(order.credited) == Credited(
        dealer_id="D001", store_id="S001", guide_id="G001", distributor_1_id="m-1", distributor_2_id="m-0"
    )


def test_a_flash_purchase_keeps_its_one_round_trip_and_is_credited_at_payment():
    _, order = placed(None, "fs-1")
    assert order is not None and order.credited is None
    assert "credited" not in order.event_payload()
