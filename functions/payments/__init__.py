"""Payments: WeChat Pay v3's prepay for the mini-program and its callback (API.md, "Checkout and
orders"; docs/payments.md). The HMAC webhook of API.md stays in functions/checkout."""

from functions.payments.routes import bp

__all__ = ["bp"]
