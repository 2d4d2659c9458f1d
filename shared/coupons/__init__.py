"""Coupons (优惠券): templates, claims, the wallet, redemption in the store (docs/coupons.md)."""
