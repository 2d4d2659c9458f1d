"""The coupon sweeper: AVAILABLE coupons whose use window has passed become EXPIRED, so a
template's books say how many expired unused. Customers never wait for it: a coupon past its
window is shown EXPIRED and refused at once (`Coupon.shown_status`, `check_usable`)."""

from __future__ import annotations

from shared.coupons.model import Action, Status
from shared.coupons.ports import CouponPorts
from shared.kernel.errors import ConcurrentUpdate


def expire_lapsed(ports: CouponPorts, limit: int = 500) -> int:
    """Expire up to `limit` due coupons, each in a transaction conditional on the coupon read
    (one that was locked or redeemed meanwhile is left alone). Safe to run concurrently."""
    now = ports.clock.now_ms()
    expired = 0
    for coupon in ports.coupons.due(now, limit):
        if coupon.status is not Status.AVAILABLE or now < coupon.use_window.ends_ms:
            continue
        uow = ports.unit_of_work()
        uow.move(coupon, coupon.moved(Action.EXPIRE, now))
        try:
            uow.commit()
        except ConcurrentUpdate:
            continue
        expired += 1
    return expired
