"""What every capability may import: errors, value types, money, events, identity, clock (docs/architecture.md)."""
