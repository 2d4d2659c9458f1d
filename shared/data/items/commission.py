"""Commission rules, the ledger and payees' totals (shared/data/stores/commission.py;
docs/data-model.md, "Commission")."""

from __future__ import annotations

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute

from shared.data.table import BaseItem

RULES_PARTITION = "COMMISSION_RULES"


class CommissionRulesItem(BaseItem, discriminator="CommissionRules"):
    """pk `COMMISSION_RULES`; sk `V#<effective iso>#<version, zero-padded>` for each version (the
    one in force at a time is the last sk at or before it) and `LATEST`, the newest, whose
    `version` every save is conditional on."""

    version = NumberAttribute()
    effective_at = NumberAttribute()  # epoch ms
    body = JSONAttribute()  # shared.commission.ledger_model.rules_to_dict

    @staticmethod
    def version_key(effective_iso: str, version: int) -> tuple[str, str]:
        return RULES_PARTITION, f"V#{effective_iso}#{version:010d}"

    @staticmethod
    def latest_key() -> tuple[str, str]:
        return RULES_PARTITION, "LATEST"


class LedgerBookItem(BaseItem, discriminator="LedgerBook"):
    """pk `LEDGER#<order_id>`, sk `BOOK`: what commission knows of the order (credited parties,
    rules version, lines with what each earned and what was refunded, refunds applied, the window).
    Written conditional on `version`."""

    order_id = UnicodeAttribute()
    version = NumberAttribute()
    body = JSONAttribute()

    @staticmethod
    def key(order_id: str) -> tuple[str, str]:
        return f"LEDGER#{order_id}", "BOOK"


class LedgerEntryItem(BaseItem, discriminator="LedgerEntry"):
    """pk `LEDGER#<order_id>`, sk `ENTRY#<entry_id>`: one payee's amount on one line.
    gsi1 `PAYEE#<kind>:<id>` / `<created iso>#<order_id>#<entry_id>`: a payee's entries, newest first.
    gsi2 `COMMISSION#<status>#<shard>` / `<due iso>#<order_id>#<entry_id>`, only while FROZEN or
    SETTLEABLE: the work queues of the release schedule and of settlement runs (sparse)."""

    order_id = UnicodeAttribute()
    entry_id = UnicodeAttribute()
    role = UnicodeAttribute()
    payee_id = UnicodeAttribute()
    sku = UnicodeAttribute()
    amount_fen = NumberAttribute()
    status = UnicodeAttribute()
    due_at = NumberAttribute(null=True)  # epoch ms
    rules_version = NumberAttribute(null=True)
    refund_id = UnicodeAttribute(null=True)
    run_id = UnicodeAttribute(null=True)
    # The payout channel that claimed it: `settlement#<run>` or `profit_sharing#<out_order_no>`, set
    # only while absent (docs/commission.md, "Two payout channels"); absent on entries paid before.
    payout = UnicodeAttribute(null=True)

    @staticmethod
    def key(order_id: str, entry_id: str) -> tuple[str, str]:
        return f"LEDGER#{order_id}", f"ENTRY#{entry_id}"


class PayeeTotalsItem(BaseItem, discriminator="PayeeTotals"):
    """pk `PAYEE#<kind>:<id>`, sk `TOTALS#<n>`: a share of the payee's running totals per state,
    moved by `ADD` in every ledger write (n: the order's balance shard, so one dealer's concurrent
    orders spread over a few items)."""

    pending_fen = NumberAttribute(null=True)
    frozen_fen = NumberAttribute(null=True)
    settleable_fen = NumberAttribute(null=True)
    settled_fen = NumberAttribute(null=True)

    @staticmethod
    def key(payee: str, shard: int) -> tuple[str, str]:
        return f"PAYEE#{payee}", f"TOTALS#{shard}"
