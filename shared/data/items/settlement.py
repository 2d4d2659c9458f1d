"""Settlement runs, their shards and statement rows (shared/data/stores/settlement.py;
docs/data-model.md, "Commission")."""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute

from shared.data.table import BaseItem


class SettlementRunItem(BaseItem, discriminator="SettlementRun"):
    """pk `SETTLEMENT#<run_id>`, sk `RUN`: one per period (the id is the period end). `shards_done`
    counts up once per shard; the last one sets `status` DONE in the same write."""

    run_id = UnicodeAttribute()
    period_end = NumberAttribute()  # epoch ms
    status = UnicodeAttribute()  # RUNNING | DONE | FAILED
    shards = NumberAttribute()
    shards_done = NumberAttribute()
    reason = UnicodeAttribute(null=True)

    @staticmethod
    def key(run_id: str) -> tuple[str, str]:
        return f"SETTLEMENT#{run_id}", "RUN"


class SettlementShardItem(BaseItem, discriminator="SettlementShard"):
    """pk `SETTLEMENT#<run_id>`, sk `SHARD#<nn>`: a shard's progress, moved in the transaction of
    every batch it settles (`processed`, `net_fen` by ADD); `counted` when it began."""

    status = UnicodeAttribute()  # RUNNING | DONE
    processed = NumberAttribute(null=True)
    counted = NumberAttribute(null=True)
    net_fen = NumberAttribute(null=True)

    @staticmethod
    def key(run_id: str, shard: int) -> tuple[str, str]:
        return f"SETTLEMENT#{run_id}", f"SHARD#{shard:02d}"


class StatementRowItem(BaseItem, discriminator="StatementRow"):
    """pk `SETTLEMENT#<run_id>`, sk `PAYEE#<kind>:<id>#<shard nn>`: what one shard of the run paid
    one payee (ADD per batch; only that shard's worker writes it). The statement sums a payee's
    rows, which sort together."""

    payee = UnicodeAttribute()
    gross_fen = NumberAttribute(null=True)
    clawbacks_fen = NumberAttribute(null=True)
    entries = NumberAttribute(null=True)

    @staticmethod
    def key(run_id: str, payee: str, shard: int) -> tuple[str, str]:
        return f"SETTLEMENT#{run_id}", f"PAYEE#{payee}#{shard:02d}"
