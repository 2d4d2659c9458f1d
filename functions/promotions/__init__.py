"""Promotions (促销): merchant admins define them, everyone sees the running ones (docs/pricing.md)."""

from functions.promotions.routes import bp

__all__ = ["bp"]
