"""Everything checkout reads before it prices, in one BatchGetItem when the location is known:
the products, their stock items at that location, the customer's member item (paid membership),
the membership rules and the customer's member profile (its level's benefits: member prices and a
discount, the best of the two applies, docs/pricing.md "Member benefits"), and the location
item itself (so an unknown store is caught without another call); the gifts of the running
promotions (cached per process, `shared.data.stores.promotions`) are products of that read too.
Same-city reads the cached store list (`locations_store`) and then stock at every store in the
same BatchGetItem.

Reads are eventually consistent: they price and advise; the order's conditional reservation is
the check that counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from shared.coupons.checkout import CouponAtCheckout
from shared.coupons.model import Status
from shared.data.batch_get import Key, get_items
from shared.data.item_mapping import location_of, product_of
from shared.data.items import CouponItem, LocationItem, MemberItem, ProductItem, StockItem
from shared.data.items.guides import BindingItem, ShareVisitItem
from shared.data.items.membership import MemberProfileItem, MembershipRulesItem
from shared.data.stores.coupons import DynamoCoupons, coupon_at_checkout
from shared.data.stores.locations import DynamoLocations
from shared.data.stores.promotions import DynamoPromotions
from shared.inventory.locations import Location
from shared.kernel.clock import SYSTEM
from shared.kernel.credited import Credited, CreditFacts
from shared.membership.model import DEFAULT_RULES, Benefits, MembershipRules, checkout_benefits
from shared.membership.paid_terms import benefit_at, schedule_of
from shared.ordering.model import OrderCoupon
from shared.ordering.ports import CheckoutData

WALLET_LIMIT = 200  # coupons the quote looks at: a wallet holds far fewer available ones


def load_for_checkout(
    skus: Sequence[str], customer_sub: str, locations: Sequence[str] | None = None, *, coupon_ids: Sequence[str] = ()
) -> CheckoutData:
    """`locations`: the location ids that may serve the order; None for every store (same-city).
    `coupon_ids`: the customer's coupons named in the cart, in the same BatchGetItem."""
    # The promotions come from the per-process cache (no round trip when warm), so their gifts'
    # products and stock join this one BatchGetItem (docs/pricing.md).
    promotions = DynamoPromotions().current(SYSTEM.now_ms())
    gift_skus = sorted({sku for p in promotions for sku in p.gift_skus})
    skus = list(dict.fromkeys([*skus, *gift_skus]))
    known: dict[str, Location] = {}
    keys: list[Key] = [ProductItem.key(sku) for sku in skus] + [MemberItem.key(customer_sub)]
    keys += [CouponItem.key(coupon_id) for coupon_id in dict.fromkeys(coupon_ids)]
    keys += [BindingItem.key(customer_sub), ShareVisitItem.key(customer_sub)]  # who an order credits
    keys += [MembershipRulesItem.key(), MemberProfileItem.key(customer_sub)]  # the level's benefits
    if locations is None:
        known = {place.location_id: place for place in DynamoLocations().list() if place.is_store}
        location_ids = list(known)
    else:
        location_ids = list(dict.fromkeys(locations))
        keys += [LocationItem.key(location) for location in location_ids]
    keys += [StockItem.key(sku, location) for sku in skus for location in location_ids]

    products = {}
    availability: dict[tuple[str, str], int] = {}
    coupons: dict[str, OrderCoupon] = {}
    credit = CreditFacts()
    found = get_items(keys).values()
    benefits = _member_benefits(found, SYSTEM.now_ms())
    for item in found:
        if isinstance(item, ProductItem):
            products[item.sku] = product_of(item)
        elif isinstance(item, StockItem):
            availability[(item.sku, item.location)] = int(item.available)
        elif isinstance(item, LocationItem):
            known[item.location_id] = location_of(item)
        elif isinstance(item, CouponItem) and item.customer_id == customer_sub:  # another's is not there
            coupons[item.coupon_id] = coupon_at_checkout(item)
        elif isinstance(item, BindingItem):
            bound = Credited(dealer_id=item.dealer_id, store_id=item.store_id, guide_id=item.guide_id)
            until = int(item.expires_at) if item.expires_at is not None else None
            credit = replace(credit, bound=bound, bound_until_ms=until)
        elif isinstance(item, ShareVisitItem):
            shared = Credited.from_dict(item.credit)
            credit = replace(credit, sharer_id=item.sharer_id, shared=shared, shared_at_ms=int(item.at))
    return CheckoutData(
        products=products,
        is_member=benefits.member_price,
        member_discount_bp=benefits.discount_bp,
        availability=availability,
        locations=known,
        coupons=coupons,
        credit=credit,
        promotions=promotions,
    )


def _member_benefits(found: Iterable[object], now_ms: int) -> Benefits:
    """The best of the member's level (its profile under the rules; none: level 0) and its paid
    membership (the `MEMBER` item, unless `until` has passed: its schedule's segment covering now,
    none: no paid benefit), as checkout applies them."""
    paid: Benefits | None = None
    rules, level = DEFAULT_RULES, 0
    for item in found:
        if isinstance(item, MemberItem) and (item.until is None or now_ms < int(item.until)):
            schedule = schedule_of(item.schedule)
            if schedule is None:  # seed data, or written before schedules: one tier to `until`
                paid = Benefits(member_price=item.member_price is not False, discount_bp=int(item.discount_bp or 0))
            elif (running := benefit_at(schedule, now_ms)) is not None:
                paid = Benefits(member_price=running.member_price, discount_bp=running.discount_bp)
        elif isinstance(item, MembershipRulesItem):
            rules = MembershipRules.of(item.body, int(item.version))
        elif isinstance(item, MemberProfileItem):
            level = int(item.level)
    return checkout_benefits(rules.level(level), paid)


def customer_coupons(customer_sub: str, now_ms: int) -> dict[str, OrderCoupon]:
    """The customer's coupons AVAILABLE at `now_ms` (newest claim first, at most WALLET_LIMIT): one
    query of gsi1 `CUSTCOUPONS#<sub>` (more pages only past 100), for the quote's suggestions. Not
    part of placing an order, which reads only the coupons it names, in its one BatchGetItem."""
    found: dict[str, OrderCoupon] = {}
    cursor = None
    store = DynamoCoupons()
    while len(found) < WALLET_LIMIT:
        page, cursor = store.of_customer(customer_sub, Status.AVAILABLE, now_ms, 100, cursor)
        found.update((coupon.coupon_id, CouponAtCheckout(coupon)) for coupon in page)
        if cursor is None:
            break
    return found
