"""Checkout: quotes, orders and their state machine, payments."""

from functions.checkout.blueprint import bp

__all__ = ["bp"]
