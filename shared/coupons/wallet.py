"""A customer's coupons (`GET /me/coupons`): by status, or the ones usable for a cart with what each
would save. The checkout's quote is what counts; this is the wallet page's advice."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.coupons.model import Channel, Coupon, Status, eligible_amount
from shared.coupons.ports import CouponPorts, Cursor

CART_SCAN_LIMIT = 200  # coupons looked at for a cart: a wallet holds far fewer usable ones


def my_coupons(
    customer_id: str, status: Status | None, limit: int, cursor: Cursor | None, ports: CouponPorts
) -> tuple[list[dict[str, Any]], Cursor | None]:
    """The customer's coupons, newest claim first, with the status the customer sees."""
    now = ports.clock.now_ms()
    found, next_cursor = ports.coupons.of_customer(customer_id, status, now, limit, cursor)
    return [coupon.view(now) for coupon in found], next_cursor


def usable_for_cart(customer_id: str, lines: Sequence[tuple[str, int]], ports: CouponPorts) -> list[dict[str, Any]]:
    """The customer's coupons usable online now for `lines` (sku, qty) at list price, best saving
    first, each with `saving_fen` and `eligible_fen`. Shipping coupons show a saving of 0 here
    (the shipping is known at the quote)."""
    now = ports.clock.now_ms()
    items = ports.prices.items(lines)
    coupons: list[Coupon] = []
    cursor: Cursor | None = None
    while len(coupons) < CART_SCAN_LIMIT:
        page, cursor = ports.coupons.of_customer(customer_id, Status.AVAILABLE, now, 100, cursor)
        coupons.extend(page)
        if cursor is None:
            break
    usable = []
    for coupon in coupons:
        if Channel.ONLINE not in coupon.terms.channels or now < coupon.use_window.starts_ms:
            continue
        eligible = eligible_amount(coupon.terms, items)
        if eligible <= 0 or eligible < coupon.terms.benefit.threshold_fen:
            continue
        usable.append(
            {**coupon.view(now), "eligible_fen": eligible, "saving_fen": coupon.terms.benefit.saving(eligible)}
        )
    return sorted(usable, key=lambda view: (-view["saving_fen"], view["coupon_id"]))
