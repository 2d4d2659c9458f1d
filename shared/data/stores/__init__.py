"""Per-capability DynamoDB stores: each implements its capability's ports (docs/data-model.md)."""
