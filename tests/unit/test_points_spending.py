"""Spending points at checkout (docs/membership.md, "Spending at checkout"; docs/pricing.md): the
deduction priced last, capped and allocated to the lines; the order's transaction taking the points
or refusing the whole order; the membership consumer giving them back once on cancel or expiry and
pro rata on refunds; and a hypothesis property over random sequences of orders, cancels, refunds,
expiries and redeliveries: the ledger sums to the balance, nothing is below 0, no point is spent
twice and nothing comes back more than was spent."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.catalog.model import Product
from shared.inventory.locations import Location
from shared.kernel.clock import iso
from shared.kernel.errors import InsufficientPoints, RuleViolation
from shared.kernel.events import DomainEvent, EventType
from shared.kernel.idempotency import IdempotentRequest
from shared.membership.model import EntryKind, Level, MembershipRules, PointsBalance
from shared.ordering.checkout import Cart, Checkout
from shared.ordering.fulfilment import Address, Fulfilment, FulfilmentType
from shared.ordering.placement import OrderPlacement
from shared.ordering.pricing import CartLine, PointsOffer, PricingRules, points_spent, price_cart
from tests.fakes.membership import MemoryOrderPoints
from tests.fakes.ordering import ordering_on_fakes
from tests.unit.test_membership import Kit

TEA = Product(sku="TEA-1", name="龙井", price_fen=10_000)
CUP = Product(sku="CUP-1", name="杯子", price_fen=3_333)
PEN = Product(sku="PEN-1", name="笔", price_fen=101)
PRODUCTS = {p.sku: p for p in (TEA, CUP, PEN)}
HOME = Address("Li Lei", "13700000000", "Shanghai", "1 Road")
RULES = PricingRules()


def priced(lines: dict[str, int], offer: PointsOffer | None, **kw):
    return price_cart(
        [CartLine(s, q) for s, q in lines.items()],
        PRODUCTS,
        is_member=False,
        fulfilment_type="delivery",
        rules=RULES,
        points=offer,
        **kw,
    )


def check_sums(quote) -> None:
    for line in quote.lines:
        assert line.payable_fen == line.unit_price_fen * line.qty - line.discount_fen >= 0
    assert sum(line.payable_fen for line in quote.lines) + quote.shipping_fen == quote.total_fen
    assert sum(a.amount_fen for a in quote.applied if a.kind != "shipping_coupon") == quote.discount_fen


# -- pricing: the deduction -------------------------------------------------------------------------
def test_points_take_off_at_the_rate_allocated_to_lines_by_largest_remainder():
    # Given 100 points = 1 yuan, a cap of 50% of the merchandise, and 2,500 points named
    offer = PointsOffer(2_500, per_yuan=100, cap_bp=5_000, available=10_000)
    quote = priced({"TEA-1": 1, "CUP-1": 3}, offer)
    # Then 25 yuan come off, spread over the lines in proportion to what they pay, to the fen
    assert [a.to_dict() for a in quote.applied] == [{"kind": "points", "id": "2500", "amount_fen": 2_500}]
    assert points_spent(quote) == 2_500
    assert [line.discount_fen for line in quote.lines] == [1_250, 1_250]  # 10,000 : 9,999 -> 1,250.06 / 1,249.94
    check_sums(quote)
    # And shipping is priced before the points: 199.99 yuan of merchandise ships free, so spending
    # points never costs free shipping
    assert quote.shipping_fen == 0 and quote.total_fen == 19_999 - 2_500


def test_the_cap_in_basis_points_and_in_fen_and_the_payable_bound_the_deduction():
    # 10% of 133.33 yuan is 13.33 yuan: 1,333 fen, 1,333 points of the 5,000 named
    quote = priced({"TEA-1": 1, "CUP-1": 1}, PointsOffer(5_000, per_yuan=100, cap_bp=1_000, available=5_000))
    assert points_spent(quote) == 1_333 and quote.discount_fen == 1_333
    # an absolute cap of 5 yuan is lower still
    capped = priced(
        {"TEA-1": 1, "CUP-1": 1}, PointsOffer(5_000, per_yuan=100, cap_bp=1_000, cap_fen=500, available=5_000)
    )
    assert points_spent(capped) == 500 and capped.discount_fen == 500
    # and no rule makes a line's payable negative: at most 99% of the merchandise, whatever the cap
    everything = priced({"PEN-1": 1}, PointsOffer(100_000, per_yuan=100, cap_bp=10_000, available=100_000))
    assert everything.lines[0].payable_fen == 2 and points_spent(everything) == 99
    # shipping stays what it was (101 fen of merchandise pays 10 yuan of freight, points none of it)
    assert everything.shipping_fen == 1_000 and everything.total_fen == 2 + 1_000
    for q in (quote, capped, everything):
        check_sums(q)


def test_a_rate_that_is_not_a_whole_number_of_points_per_fen_spends_the_fewest_points_that_buy_the_fen():
    # 150 points = 1 yuan: 1.5 points a fen. 1,001 points buy 667 fen (1,000.5 points), so 1,001 are spent
    quote = priced({"TEA-1": 1}, PointsOffer(1_001, per_yuan=150, cap_bp=5_000, available=2_000))
    assert quote.discount_fen == 667 and points_spent(quote) == 1_001
    # 1,000 points buy 666 fen for 999 points: the 1,000th buys nothing and is not spent
    quote = priced({"TEA-1": 1}, PointsOffer(1_000, per_yuan=150, cap_bp=5_000, available=2_000))
    assert quote.discount_fen == 666 and points_spent(quote) == 999


def test_points_past_the_balance_read_are_refused_and_a_merchant_that_takes_none_refuses_them():
    with pytest.raises(InsufficientPoints) as refused:
        priced({"TEA-1": 1}, PointsOffer(500, per_yuan=100, cap_bp=5_000, available=499))
    assert refused.value.code == "INSUFFICIENT_POINTS" and refused.value.details["available"] == 499
    with pytest.raises(RuleViolation) as off:
        priced({"TEA-1": 1}, PointsOffer(500, per_yuan=0, cap_bp=0, available=10_000))
    assert off.value.details["reason"] == "points_not_accepted"
    # and no points named is no deduction at all
    assert priced({"TEA-1": 1}, PointsOffer(0, per_yuan=100, cap_bp=5_000, available=0)).applied == ()


def test_flash_priced_lines_take_no_points():
    quote = priced(
        {"TEA-1": 1, "CUP-1": 1},
        PointsOffer(10_000, per_yuan=100, cap_bp=5_000, available=10_000),
        unit_price_override={"TEA-1": 5_000},
    )
    tea, cup = quote.lines
    assert tea.discount_fen == 0 and cup.discount_fen == 3_333 // 2 and points_spent(quote) == 3_333 // 2
    check_sums(quote)


@settings(max_examples=200)
@given(
    st.dictionaries(st.sampled_from(sorted(PRODUCTS)), st.integers(1, 9), min_size=1),
    st.integers(1, 200_000),
    st.integers(1, 100_000),
    st.integers(1, 9_900),
    st.integers(0, 50_000),
)
def test_property_the_deduction_is_capped_exact_and_buys_no_more_than_the_points_named(
    lines, points, per_yuan, cap_bp, cap_fen
):
    quote = priced(lines, PointsOffer(points, per_yuan, cap_bp, cap_fen, available=None))
    check_sums(quote)
    merchandise = sum(PRODUCTS[s].price_fen * q for s, q in lines.items())
    off, spent = quote.discount_fen, points_spent(quote)
    assert off <= merchandise * cap_bp // 10_000 and (cap_fen == 0 or off <= cap_fen)
    assert spent <= points and spent * 100 // per_yuan >= off  # the points spent buy the fen taken off
    assert off == 0 or (spent - 1) * 100 // per_yuan < off  # and no fewer would
    assert all(line.payable_fen > 0 for line in quote.lines)


# -- rules ---------------------------------------------------------------------------------------------
def test_the_spending_rule_is_validated():
    levels = (Level(0, "会员", 0),)
    ok = MembershipRules.of(
        {"levels": [lv.view() for lv in levels], "redeem_points_per_yuan": 100, "redeem_cap_bp": 3_000}
    )
    assert ok.view()["redeem_points_per_yuan"] == 100 and ok.view()["redeem_cap_fen"] == 0
    for bad in (
        {"redeem_points_per_yuan": -1, "redeem_cap_bp": 3_000},
        {"redeem_points_per_yuan": 100, "redeem_cap_bp": 0},  # spending on, no cap
        {"redeem_points_per_yuan": 100, "redeem_cap_bp": 10_000},  # above 99%
        {"redeem_points_per_yuan": 100, "redeem_cap_bp": 3_000, "redeem_cap_fen": -5},
    ):
        with pytest.raises(RuleViolation):
            MembershipRules.of({"levels": [lv.view() for lv in levels], **bad})


# -- the order's transaction ---------------------------------------------------------------------------
SPENDING = MembershipRules((Level(0, "会员", 0),), points_per_yuan=1, redeem_points_per_yuan=100, redeem_cap_bp=5_000)


@dataclass
class Shop:
    kit: Kit
    points: MemoryOrderPoints
    fakes: object
    placement: OrderPlacement

    def place(self, points: int, key: str, customer: str = "c-1", lines: dict[str, int] | None = None):
        lines = lines or {"TEA-1": 1, "CUP-1": 1}
        cart = Cart(
            tuple(CartLine(s, q) for s, q in lines.items()),
            (),
            Fulfilment(FulfilmentType.DELIVERY, address=HOME),
            points,
        )
        request = IdempotentRequest.of(f"orders:{customer}", key, {"lines": lines, "points": points})
        return self.placement.place_order(cart, customer, request)


@pytest.fixture
def shop() -> Shop:
    kit = Kit(SPENDING)
    fakes = ordering_on_fakes(
        products=[TEA, CUP],
        stock={("TEA-1", "WH"): 50, ("CUP-1", "WH"): 50},
        locations=[Location("WH", "warehouse", "仓")],
    )
    points = MemoryOrderPoints(kit.store, kit.rules)
    checkout = Checkout(read=fakes.checkout_reads, rules=RULES, payment_window_s=900, points=points)
    placement = OrderPlacement(fakes.units, fakes.reads, checkout, fakes.clock, points=points)
    kit.store.balances["c-1"] = PointsBalance("c-1", available=3_000, released_total=3_000, version=1)
    return Shop(kit, points, fakes, placement)


def test_an_order_spends_its_points_in_its_own_transaction_and_the_ledger_says_so(shop: Shop):
    stored = shop.place(2_000, "k-1")
    assert stored.status == 201
    body = stored.body
    assert {"kind": "points", "id": "2000", "amount_fen": 2_000} in body["applied"]
    assert sum(line["payable_fen"] for line in body["lines"]) == 13_333 - 2_000
    assert shop.kit.points() == {"available": 1_000, "frozen": 0, "reserved": 0, "debt": 0}
    [entry] = shop.kit.ledger()
    assert entry["kind"] == "spent" and entry["points"] == -2_000 and entry["order_id"] == body["order_id"]
    # A replay of the request spends nothing more
    again = shop.place(2_000, "k-1")
    assert again.replayed and again.body == body and shop.kit.points()["available"] == 1_000


def test_an_order_past_the_balance_is_refused_and_nothing_of_it_is_written(shop: Shop):
    shop.place(2_000, "k-1")
    commits = shop.fakes.tables.commits
    # The checkout's read sees 1,000: refused before any write
    with pytest.raises(InsufficientPoints):
        shop.place(1_500, "k-2")
    # A read that was stale (another order spent meanwhile): the transaction's own condition refuses
    shop.kit.store.balances["c-1"] = PointsBalance("c-1", available=5_000, released_total=3_000, version=9)
    stale = shop.placement._checkout.prepare_placement(  # priced against 5,000 available
        Cart((CartLine("TEA-1", 1),), (), Fulfilment(FulfilmentType.DELIVERY, address=HOME), 3_000), "c-1"
    )
    shop.kit.store.balances["c-1"] = PointsBalance("c-1", available=1_000, released_total=3_000, version=10)
    with pytest.raises(InsufficientPoints):
        shop.placement.place(stale, "c-1", IdempotentRequest.of("orders:c-1", "k-3", {"x": 1}))
    assert shop.fakes.tables.commits == commits
    assert len(shop.fakes.tables.orders) == 1 and shop.fakes.tables.stock_of("TEA-1", "WH") == (50, 1, 49)
    assert shop.kit.points()["available"] == 1_000


# -- what comes back: the membership consumer ----------------------------------------------------------
def cancelled(kit: Kit, order_id: str, kind: EventType = EventType.ORDER_CANCELLED) -> DomainEvent:
    body = {"order_id": order_id, "customer_id": "c-1", "lines": []}
    return DomainEvent(kind, order_id, body, occurred_at=iso(kit.clock.now_ms()))


def refund_event(kit: Kit, order_id: str, refund_id: str, amount: int) -> DomainEvent:
    body = {"order_id": order_id, "customer_id": "c-1", "refund_id": refund_id, "amount_fen": amount, "lines": []}
    return DomainEvent(EventType.REFUND_ISSUED, order_id, body, occurred_at=iso(kit.clock.now_ms()))


def test_a_cancelled_or_expired_unpaid_order_gives_its_points_back_once(shop: Shop):
    first = shop.place(2_000, "k-1").body["order_id"]
    event = cancelled(shop.kit, first)
    assert shop.kit.deliver(event, event) == {"batchItemFailures": []}
    assert shop.kit.points()["available"] == 3_000
    shop.kit.deliver(cancelled(shop.kit, first, EventType.ORDER_EXPIRED))  # another event, same order
    assert shop.kit.points()["available"] == 3_000
    assert [e["kind"] for e in shop.kit.ledger()].count("spend_returned") == 1
    # An expiry gives back too, and pays a debt first
    second = shop.place(1_000, "k-2").body["order_id"]
    balance = shop.kit.store.balances["c-1"]
    shop.kit.store.balances["c-1"] = PointsBalance("c-1", available=0, debt=300, version=balance.version + 1)
    shop.kit.store.entries.clear()  # (the balance was set by hand: the ledger starts again here)
    shop.kit.deliver(cancelled(shop.kit, second, EventType.ORDER_EXPIRED))
    assert shop.kit.points() == {"available": 700, "frozen": 0, "reserved": 0, "debt": 0}


def test_refunds_give_back_the_spent_points_pro_rata_and_all_of_them_once_everything_is_refunded(shop: Shop):
    body = shop.place(2_000, "k-1").body
    order_id, paid = body["order_id"], sum(line["payable_fen"] for line in body["lines"])  # 11,333
    # Three refunds of a third each (the last takes the odd fen), one delivered twice
    parts = [paid // 3, paid // 3, paid - 2 * (paid // 3)]
    backs = []
    for n, amount in enumerate(parts):
        before = shop.kit.points()["available"]
        event = refund_event(shop.kit, order_id, f"r-{n}", amount)
        shop.kit.deliver(event, event)
        backs.append(shop.kit.points()["available"] - before)
    assert backs == [666, 667, 667] and sum(backs) == 2_000  # floor of the running share: 666.6.., 1,333.3.., 2,000
    assert shop.kit.points()["available"] == 3_000
    kinds = [e["kind"] for e in shop.kit.ledger()]
    assert kinds.count("spend_refunded") == 3
    # A cancel heard after the refunds (it cannot happen to a paid order) gives back nothing more
    shop.kit.deliver(cancelled(shop.kit, order_id))
    assert shop.kit.points()["available"] == 3_000


# -- the property ------------------------------------------------------------------------------------------
@dataclass
class Sequence_:
    """Orders spending points, cancels, expiries, refunds, days passing and redeliveries."""

    shop: Shop
    orders: dict[str, tuple[int, int]] = field(default_factory=dict)  # order -> (points spent, paid fen)
    open: set[str] = field(default_factory=set)  # unpaid
    refunded: dict[str, int] = field(default_factory=dict)
    ended: set[str] = field(default_factory=set)
    delivered: list[DomainEvent] = field(default_factory=list)
    earned_orders: int = 0

    @property
    def kit(self) -> Kit:
        return self.shop.kit

    def earn(self, paid_fen: int) -> None:
        self.earned_orders += 1
        self._deliver(self.kit.completed(f"earn-{self.earned_orders}", paid_fen))
        self.kit.after_window()

    def order(self, points: int, cups: int) -> None:
        key = f"k-{len(self.orders) + len(self.ended) + self.earned_orders}-{points}-{cups}"
        try:
            body = self.shop.place(points, key, lines={"CUP-1": cups}).body
        except InsufficientPoints:
            return
        spent = sum(int(a["id"]) for a in body["applied"] if a["kind"] == "points")
        self.orders[body["order_id"]] = (spent, sum(line["payable_fen"] for line in body["lines"]))
        self.open.add(body["order_id"])

    def cancel(self, pick: int, expire: bool) -> None:
        if self.open:
            order_id = sorted(self.open)[pick % len(self.open)]
            self.open.discard(order_id)
            self.ended.add(order_id)
            self._deliver(
                cancelled(self.kit, order_id, EventType.ORDER_EXPIRED if expire else EventType.ORDER_CANCELLED)
            )

    def refund(self, pick: int, amount: int) -> None:
        paid = sorted(o for o in self.orders if o not in self.ended)
        if not paid:
            return
        order_id = paid[pick % len(paid)]
        self.open.discard(order_id)  # paid, then refunded
        left = self.orders[order_id][1] - self.refunded.get(order_id, 0)
        amount = min(left, amount)
        if amount > 0:
            self.refunded[order_id] = self.refunded.get(order_id, 0) + amount
            self._deliver(refund_event(self.kit, order_id, f"r-{len(self.delivered)}", amount))

    def days(self, days: int) -> None:
        self.kit.clock.advance(days * 86_400)
        self.kit.release.release_due()
        self.kit.expiry.expire_due()

    def redeliver(self, pick: int) -> None:
        if self.delivered:
            self.kit.deliver(self.delivered[pick % len(self.delivered)])

    def _deliver(self, event: DomainEvent) -> None:
        self.delivered.append(event)
        assert self.kit.deliver(event) == {"batchItemFailures": []}


steps = st.lists(
    st.one_of(
        st.tuples(st.just("earn"), st.integers(1_000, 300_000)),
        st.tuples(st.just("order"), st.integers(1, 3_000), st.integers(1, 5)),
        st.tuples(st.just("cancel"), st.integers(0, 20), st.booleans()),
        st.tuples(st.just("refund"), st.integers(0, 20), st.integers(1, 20_000)),
        st.tuples(st.just("days"), st.integers(1, 20)),
        st.tuples(st.just("redeliver"), st.integers(0, 40)),
    ),
    max_size=30,
)


@settings(max_examples=120, deadline=None)
@given(steps)
def test_property_ledger_sums_to_balance_never_negative_no_point_spent_twice(ops):
    kit = Kit(
        MembershipRules(
            (Level(0, "会员", 0),),
            points_per_yuan=1,
            points_expire_after_days=15,
            redeem_points_per_yuan=100,
            redeem_cap_bp=5_000,
        )
    )
    fakes = ordering_on_fakes(
        products=[CUP], stock={("CUP-1", "WH"): 10_000}, locations=[Location("WH", "warehouse", "仓")]
    )
    points = MemoryOrderPoints(kit.store, kit.rules)
    checkout = Checkout(read=fakes.checkout_reads, rules=RULES, payment_window_s=900, points=points)
    seen = Sequence_(
        Shop(kit, points, fakes, OrderPlacement(fakes.units, fakes.reads, checkout, fakes.clock, points=points))
    )
    for name, *args in ops:
        getattr(seen, name)(*args)
        check(seen)


def check(seen: Sequence_) -> None:
    kit = seen.kit
    balance = kit.store.balances.get("c-1")
    entries = [e for (sub, _), e in kit.store.entries.items() if sub == "c-1"]
    if balance is None:
        assert entries == []
        return
    sums = {name: sum(getattr(e, name) for e in entries) for name in ("available", "frozen", "reserved", "debt")}
    # The ledger explains the balance, and nothing is below 0; a debt means nothing is available
    assert sums == balance.view()
    assert min(sums.values()) >= 0 and (balance.debt == 0 or balance.available == 0)
    # No point is spent twice: one spend per order, exactly what the order says it spent
    spent = [e for e in entries if e.kind is EntryKind.SPENT]
    assert len({e.order_id for e in spent}) == len(spent)
    assert {e.order_id: -e.available for e in spent} == {o: p for o, (p, _) in seen.orders.items()}
    # What came back of each order (to available or paying debt): all of it once cancelled, its
    # running pro-rata share once refunded, never more than it spent
    back: dict[str, int] = {}
    for e in entries:
        if e.kind in (EntryKind.SPEND_RETURNED, EntryKind.SPEND_REFUNDED):
            back[e.order_id] = back.get(e.order_id, 0) + e.available - e.debt
    for order_id, (points, paid) in seen.orders.items():
        expected = points if order_id in seen.ended else points * seen.refunded.get(order_id, 0) // paid
        assert back.get(order_id, 0) == expected <= points
    # Every point is somewhere: earned = the member's own + spent net of what came back + expired + taken back
    earned = sum(e.frozen for e in entries if e.kind is EntryKind.EARNED)
    expired = -sum(e.available for e in entries if e.kind is EntryKind.EXPIRED)
    taken = sum(-e.frozen - e.available + e.debt for e in entries if e.kind is EntryKind.REFUND_RETURNED)
    net_spent = sum(p for p, _ in seen.orders.values()) - sum(back.values())
    own = balance.available + balance.frozen - balance.debt
    assert earned == own + net_spent + expired + taken
