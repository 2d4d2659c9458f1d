"""Commission: who earns what of each order line, the ledger and its clawbacks (docs/commission.md)."""
