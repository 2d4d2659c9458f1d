"""DynamoDB reads of the paid-membership report (shared/membership/paid_reports.py): the terms by
their end (gsi1 `PAIDTERM#END`) and a guide's bound customers (gsi1 `GUIDE_MEMBERS#<guide>`), each a
range Query a page at a time, never a Scan."""

from __future__ import annotations

from shared.data.items.guides import BindingItem
from shared.data.items.paid_membership import TERMS_ENDING, PaidTermItem
from shared.data.stores.paid_membership import term_of
from shared.data.transactions import translated
from shared.kernel.clock import iso
from shared.membership.paid_terms import StoredTerm
from shared.membership.ports import Cursor


class DynamoTermsEnding:
    def page(self, from_ms: int, limit: int, cursor: Cursor) -> tuple[list[StoredTerm], Cursor]:
        with translated():
            result = PaidTermItem.gsi1.query(
                TERMS_ENDING, PaidTermItem.gsi1sk >= iso(from_ms), limit=limit, last_evaluated_key=cursor
            )
            found = [term_of(item) for item in result if isinstance(item, PaidTermItem)]
            return found, result.last_evaluated_key


class DynamoGuideRoster:
    def bound(self, guide_id: str, at_ms: int, limit: int, cursor: Cursor) -> tuple[list[str], Cursor]:
        """Bound at `at_ms`: bound before it and not expired by then (the index holds the current binding)."""
        with translated():
            result = BindingItem.gsi1.query(
                f"GUIDE_MEMBERS#{guide_id}", BindingItem.gsi1sk < iso(at_ms), limit=limit, last_evaluated_key=cursor
            )
            found = [
                str(item.customer_id)
                for item in result
                if isinstance(item, BindingItem) and (item.expires_at is None or int(item.expires_at) > at_ms)
            ]
            return found, result.last_evaluated_key
