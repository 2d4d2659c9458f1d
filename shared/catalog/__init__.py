"""The catalogue: products and their prices (docs/checkout.md)."""
