"""Quotes, orders, payment, fulfilment and refunds (docs/orders.md)."""
