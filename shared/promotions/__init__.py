"""Promotions (促销): threshold discounts, limited-time prices and gifts (docs/pricing.md)."""
