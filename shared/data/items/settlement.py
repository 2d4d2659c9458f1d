"""Settlement runs, their shards and statement rows (shared/data/stores/settlement.py;
docs/data-model.md, "Commission")."""

from __future__ import annotations

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute

from shared.data.table import BaseItem


class SettlementRunItem(BaseItem, discriminator="SettlementRun"):
    """pk `SETTLEMENT#<run_id>`, sk `RUN`: one per period (the id is the period end). `shards_done`
    counts up once per shard; the last one sets `status` DONE in the same write. That is the only
    write to this partition while the run settles (once per shard, not per batch): the batches
    write their shard's own partition, `SETTLEMENT#<run_id>#<nn>`. `keyed_per_shard` is absent on
    runs started before that, whose shard items and rows are in this partition (`legacy_key`)."""

    run_id = UnicodeAttribute()
    period_end = NumberAttribute()  # epoch ms
    status = UnicodeAttribute()  # RUNNING | DONE | FAILED
    shards = NumberAttribute()
    shards_done = NumberAttribute()
    reason = UnicodeAttribute(null=True)
    keyed_per_shard = BooleanAttribute(null=True)

    @staticmethod
    def key(run_id: str) -> tuple[str, str]:
        return f"SETTLEMENT#{run_id}", "RUN"


def shard_partition(run_id: str, shard: int) -> str:
    """One partition per shard of a run: its progress and its statement rows, written by every
    batch the shard settles, so the shards settling in parallel never share a partition's write
    ceiling (about 1,000 WCU/s)."""
    return f"SETTLEMENT#{run_id}#{shard:02d}"


class SettlementShardItem(BaseItem, discriminator="SettlementShard"):
    """pk `SETTLEMENT#<run_id>#<nn>`, sk `SHARD`: a shard's progress, moved in the transaction of
    every batch it settles (`processed`, `net_fen` by ADD); `counted` when it began."""

    status = UnicodeAttribute()  # RUNNING | DONE
    processed = NumberAttribute(null=True)
    counted = NumberAttribute(null=True)
    net_fen = NumberAttribute(null=True)
    shared_fen = NumberAttribute(null=True)  # left out: paid by profit sharing (absent on older runs)
    shared_entries = NumberAttribute(null=True)

    @staticmethod
    def key(run_id: str, shard: int) -> tuple[str, str]:
        return shard_partition(run_id, shard), "SHARD"

    @staticmethod
    def legacy_key(run_id: str, shard: int) -> tuple[str, str]:
        """Runs started before the per-shard partitions: in the run's partition."""
        return f"SETTLEMENT#{run_id}", f"SHARD#{shard:02d}"


class StatementRowItem(BaseItem, discriminator="StatementRow"):
    """pk `SETTLEMENT#<run_id>#<nn>`, sk `PAYEE#<kind>:<id>`: what shard nn of the run paid one
    payee (ADD per batch; only that shard's worker writes it). A shard's rows sort by payee, so the
    statement is a k-way merge of the shards' Queries, summed per payee."""

    payee = UnicodeAttribute()
    gross_fen = NumberAttribute(null=True)
    clawbacks_fen = NumberAttribute(null=True)
    entries = NumberAttribute(null=True)
    shared_fen = NumberAttribute(null=True)  # left out: paid by profit sharing (absent on older runs)
    shared_entries = NumberAttribute(null=True)

    @staticmethod
    def key(run_id: str, payee: str, shard: int) -> tuple[str, str]:
        return shard_partition(run_id, shard), f"PAYEE#{payee}"

    @staticmethod
    def legacy_key(run_id: str, payee: str, shard: int) -> tuple[str, str]:
        """Runs started before the per-shard partitions: in the run's partition, a payee's rows
        together (`#` sorts before the letters, digits, `-`, `_` and `:` of payee ids, so
        they also sort by payee)."""
        return f"SETTLEMENT#{run_id}", f"PAYEE#{payee}#{shard:02d}"
