"""Coupons (优惠券): templates for merchant admins, claims and the wallet, redemption in the store,
the coupons guides issue to their members, and the expiry reminder."""

from functions.coupons import guide_issues, reminders  # noqa: F401  (register their route and schedule on bp)
from functions.coupons.routes import bp

__all__ = ["bp"]
