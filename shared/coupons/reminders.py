"""The expiry reminder: a CouponExpiring event, once per coupon, when a claimed coupon's use window
ends within a day; the notifications consumer tells the customer (docs/coupons.md, "Expiry
reminder"; docs/notifications.md).

The job walks the expiry queue (the index of AVAILABLE coupons by the end of their window, never a
Scan) from where it stopped: each partition has a checkpoint, moved forward after each page, so a
run goes through every coupon once and an interrupted run resumes at its last page. What makes it
once per coupon is not the checkpoint but the reminder's own item, written with the event in one
transaction only if it does not exist: a run that repeats a page (after an interruption), or runs
beside another, finds the coupons already reminded and sends nothing twice.
"""

from __future__ import annotations

from shared.coupons.model import DAY_MS, Coupon, Status
from shared.coupons.ports import AlreadyReminded, CouponPorts
from shared.kernel.clock import iso
from shared.kernel.events import DomainEvent, EventType

REMIND_BEFORE_MS = DAY_MS
# The expiry queue is an index, which DynamoDB fills a moment after the write (well under a second
# in practice). The job looks no closer than this to the day's edge, so a coupon claimed just
# before a run cannot fall behind a checkpoint before the index shows it.
INDEX_SETTLE_MS = 60_000
PAGE = 200


def remind_expiring(ports: CouponPorts, page_size: int = PAGE) -> int:
    """CouponExpiring for every AVAILABLE coupon whose use window ends within a day, unless it was
    reminded before or its whole window from the claim was a day or less (it was claimed knowing);
    returns how many were reminded. Idempotent, resumable, safe beside another run."""
    now = ports.clock.now_ms()
    until = now + REMIND_BEFORE_MS - INDEX_SETTLE_MS
    queue = ports.reminders
    checkpoints = queue.checkpoints()
    reminded = 0
    for partition in range(queue.partitions):
        after = checkpoints.get(partition)
        more = True
        while more:
            page = queue.page(partition, after, now, until, page_size)
            reminded += sum(_remind(coupon, now, ports) for coupon in page.coupons)
            if page.coupons or page.more:
                # An empty range is not written: the next run starts at its own `now` anyway.
                queue.advance(partition, page.through)
            after, more = page.through, page.more
    return reminded


def _remind(coupon: Coupon, now_ms: int, ports: CouponPorts) -> int:
    ends = coupon.use_window.ends_ms
    if coupon.status is not Status.AVAILABLE or not now_ms < ends <= now_ms + REMIND_BEFORE_MS:
        return 0
    if ends - coupon.claimed_at_ms <= REMIND_BEFORE_MS:
        return 0
    uow = ports.unit_of_work()
    uow.mark_reminded(coupon, now_ms)
    uow.emit(expiring_event(coupon))
    try:
        uow.commit()
    except AlreadyReminded:
        return 0
    return 1


def expiring_event(coupon: Coupon) -> DomainEvent:
    """Its id is the coupon's, so even a second event for one coupon would be the same notice
    (the notifications consumer keys every message by it)."""
    return DomainEvent(
        EventType.COUPON_EXPIRING,
        coupon.coupon_id,
        {
            "coupon_id": coupon.coupon_id,
            "template_id": coupon.template_id,
            "customer_id": coupon.customer_id,
            "coupon_name": coupon.name,
            "valid_to": iso(coupon.use_window.ends_ms),
        },
        event_id=f"coupon-expiring-{coupon.coupon_id}",
    )
