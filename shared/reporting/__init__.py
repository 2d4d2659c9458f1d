"""Reconciliation and sales reports (docs/commission.md, "Reports")."""
