"""The catalogue API: products for storefronts, product admin for merchant admins."""

from functions.catalog.routes import bp

__all__ = ["bp"]
