"""A payee's own ledger (`GET /me/commissions`): running totals per state and the entries,
newest first. The totals are kept with every ledger write (docs/commission.md), never summed
from the entries at read time."""

from __future__ import annotations

from typing import Any

from shared.commission.ledger_model import EntryStatus
from shared.commission.ports import Cursor, Ledger


def my_commissions(ledger: Ledger, payee: str, limit: int, cursor: Cursor) -> tuple[dict[str, Any], Cursor]:
    totals = ledger.totals(payee)
    entries, next_cursor = ledger.payee_entries(payee, limit, cursor)
    body = {
        "summary": {
            "pending_fen": totals.get(EntryStatus.PENDING, 0),
            "frozen_fen": totals.get(EntryStatus.FROZEN, 0),
            "settleable_fen": totals.get(EntryStatus.SETTLEABLE, 0),
            "settled_fen": totals.get(EntryStatus.SETTLED, 0),
        },
        "items": [e.view() for e in entries],
    }
    return body, next_cursor
