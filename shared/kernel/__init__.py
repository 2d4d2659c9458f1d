"""Errors, annotated value types, money, events, idempotency, identity and the clock: what every capability may import (docs/architecture.md)."""
