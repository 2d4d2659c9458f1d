"""Checkout: quotes, orders and their state machine, payments."""

from functions.checkout import quote_routes  # noqa: F401  (registers its routes on bp)
from functions.checkout.blueprint import bp

__all__ = ["bp"]
