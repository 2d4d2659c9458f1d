"""Checkout: quotes, orders and their state machine, payments."""

from functions.checkout import address_routes, order_routes, quote_routes  # noqa: F401  (register their routes on bp)
from functions.checkout.blueprint import bp

__all__ = ["bp"]
