"""The birthday coupon (docs/membership.md, "Birthdays"): the birthday greeting
(shared.notifications.delivery) asks for it first, so the greeting can say it is in the wallet.

The template is named in the membership rules (`birthday_coupon_template_id`; none: no coupon).
Once a year: the gift's key holds the year (`birthday:<year>`), and the claim path's idempotency
record gives a second ask the same coupon back; the greeter asks again only on the same day (its
hourly runs, a retry), well inside the record's retention.
"""

from __future__ import annotations

from shared.kernel.errors import TemporarilyUnavailable
from shared.membership.ports import RulesStore
from shared.membership.segments import CouponIssue, Outcome
from shared.platform.observability import count, logger


class BirthdayCoupons:
    def __init__(self, rules: RulesStore, coupons: CouponIssue) -> None:
        self._rules = rules
        self._coupons = coupons

    def __call__(self, member_id: str, year: int) -> str | None:
        """The name of the birthday coupon the member now holds for `year`, or None (no template
        named, or the claim refused: the greeting goes out without it). TemporarilyUnavailable
        when the database was busy: the greeter tries again in its next run."""
        template_id = self._rules.current().birthday_coupon_template_id
        if template_id is None:
            return None
        result = self._coupons.issue(template_id, member_id, f"birthday:{year}")
        if result.outcome is Outcome.RETRY:
            raise TemporarilyUnavailable("the birthday coupon could not be issued yet", member_id=member_id)
        if result.outcome is not Outcome.ISSUED:
            logger.warning(
                "birthday coupon not issued",
                extra={"member_id": member_id, "outcome": str(result.outcome), "reason": result.reason},
            )
            count("BirthdayCouponsRefused", reason=result.reason)
            return None
        count("BirthdayCouponsIssued")
        return result.name or template_id
