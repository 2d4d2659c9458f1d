"""Payments: WeChat Pay v3's prepay for the mini-program and its callback (API.md, "Checkout and
orders"; docs/payments.md), and money paid back (refunds, closes, finance's routes). The HMAC webhook of
API.md stays in functions/checkout."""

from functions.payments import profit_sharing_routes, refund_routes  # noqa: F401  (register on bp)
from functions.payments.routes import bp

__all__ = ["bp"]
