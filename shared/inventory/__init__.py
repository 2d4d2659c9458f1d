"""Stock per SKU and location, and the locations that hold it (docs/checkout.md)."""
