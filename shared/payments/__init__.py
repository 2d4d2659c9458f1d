"""Payment providers behind one interface (docs/orders.md, Payment)."""
