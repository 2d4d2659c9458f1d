"""Coupons (优惠券): templates for merchant admins, claims and the wallet, redemption in the store."""

from functions.coupons.routes import bp

__all__ = ["bp"]
