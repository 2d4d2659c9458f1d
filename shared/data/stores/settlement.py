"""Settlement runs in DynamoDB (docs/data-model.md, "Commission"): implements
shared.settlement.ports.SettlementStore.

A batch is one TransactWriteItems: each entry SETTLEABLE -> SETTLED (conditional on its state; it
leaves the SETTLEABLE queue of gsi2 for `RUN#<run_id>#<payee>`, the run's per-payee list), the
payees' totals, the run's statement rows, the shard's progress, and the message that continues
the shard (outbox). The index is the checkpoint: nothing outside the transaction says how far a
shard got, so a crash anywhere leaves either all of a batch or none of it.

A shard's progress and statement rows live in the shard's own partition (`SETTLEMENT#<run>#<nn>`):
the batches of parallel shards never meet on one partition key. The statement is therefore a k-way
merge of one Query per shard, each in payee order, a page at a time. Runs started before that
layout (no `keyed_per_shard` on the run item) are read and finished in theirs, the run's partition.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

from pynamodb.exceptions import PutError, UpdateError
from pynamodb.expressions.update import Action

from shared.commission.ledger_model import Entry, EntryStatus
from shared.data import outbox
from shared.data.batch_get import get_items
from shared.data.items.commission import LedgerEntryItem
from shared.data.items.settlement import (
    SettlementRunItem,
    SettlementShardItem,
    StatementRowItem,
    shard_partition,
)
from shared.data.stores.commission import entry_of, totals_parts
from shared.data.transactions import Transaction, TransactionCancelled, condition_failed, translated
from shared.kernel.clock import iso
from shared.kernel.errors import ConcurrentUpdate
from shared.kernel.events import DomainEvent
from shared.settlement.model import Run, RunStatus, ShardProgress, StatementRow, summed_by_payee

# Rows per Query page of the statement: with one page held per shard (16) this bounds what a
# statement read holds to about 16,000 rows, whatever the number of payees.
STATEMENT_PAGE = 1_000


def _committed_with(tx: Transaction, messages: Sequence[DomainEvent]) -> bool:
    """Commit `tx` with these outbox messages; False if its part labelled "run" was refused."""
    for message in messages:
        outbox.emit(tx, message)
    try:
        tx.commit()
    except TransactionCancelled as exc:
        if "run" in exc.failed:
            return False
        raise
    return True


def _shard_key(run: Run, shard: int) -> tuple[str, str]:
    return (SettlementShardItem.key if run.keyed_per_shard else SettlementShardItem.legacy_key)(run.run_id, shard)


def _row_key(run: Run, payee: str, shard: int) -> tuple[str, str]:
    return (StatementRowItem.key if run.keyed_per_shard else StatementRowItem.legacy_key)(run.run_id, payee, shard)


def _progress(item: SettlementShardItem, shard: int) -> ShardProgress:
    return ShardProgress(
        shard=shard,
        done=item.status == RunStatus.DONE.value,
        processed=int(item.processed or 0),
        counted=int(item.counted or 0),
        net_fen=int(item.net_fen or 0),
        shared_fen=int(item.shared_fen or 0),
        shared_entries=int(item.shared_entries or 0),
    )


class DynamoSettlements:
    def __init__(self, statement_page: int = STATEMENT_PAGE) -> None:
        self._statement_page = statement_page

    def start(self, run: Run, messages: Sequence[DomainEvent]) -> bool:
        pk, sk = SettlementRunItem.key(run.run_id)
        tx = Transaction()
        item = SettlementRunItem(
            pk,
            sk,
            run_id=run.run_id,
            period_end=run.period_end_ms,
            status=run.status.value,
            shards=run.shards,
            shards_done=0,
            created_at=run.created_at_ms,
            keyed_per_shard=run.keyed_per_shard,
        )
        tx.put(item, "run", SettlementRunItem.pk.does_not_exist())
        for shard in range(run.shards):
            shard_pk, shard_sk = _shard_key(run, shard)
            shard_item = SettlementShardItem(
                shard_pk, shard_sk, status=RunStatus.RUNNING.value, processed=0, net_fen=0, created_at=run.created_at_ms
            )
            tx.put(shard_item, f"shard {shard}")
        return _committed_with(tx, messages)

    def resume(self, run: Run, messages: Sequence[DomainEvent]) -> bool:
        tx = Transaction()
        tx.update(
            SettlementRunItem,
            SettlementRunItem.key(run.run_id),
            [SettlementRunItem.status.set(RunStatus.RUNNING.value), SettlementRunItem.reason.remove()],
            "run",
            condition=SettlementRunItem.status == RunStatus.FAILED.value,
        )
        return _committed_with(tx, messages)

    def get(self, run_id: str) -> Run | None:
        with translated():
            try:
                item = SettlementRunItem.get(*SettlementRunItem.key(run_id), consistent_read=True)
            except SettlementRunItem.DoesNotExist:
                return None
        return Run(
            run_id=item.run_id,
            period_end_ms=int(item.period_end),
            status=RunStatus(item.status),
            shards=int(item.shards),
            shards_done=int(item.shards_done),
            created_at_ms=int(item.created_at or 0),
            keyed_per_shard=bool(item.keyed_per_shard),
        )

    def shards(self, run: Run) -> list[ShardProgress]:
        """One consistent BatchGetItem of the run's shard items (one per partition)."""
        keys = {_shard_key(run, shard): shard for shard in range(run.shards)}
        found = get_items(list(keys), consistent=True)
        return [
            _progress(item, keys[key])
            for key, item in sorted(found.items(), key=lambda kv: keys[kv[0]])
            if isinstance(item, SettlementShardItem)
        ]

    def count_due(self, shard: int, until_ms: int) -> int:
        with translated():
            return LedgerEntryItem.gsi2.count(
                f"COMMISSION#{EntryStatus.SETTLEABLE.value}#{shard}", LedgerEntryItem.gsi2sk <= f"{iso(until_ms)}#~"
            )

    def count(self, run: Run, shard: int, counted: int) -> None:
        with translated():
            SettlementShardItem(*_shard_key(run, shard)).update(actions=[SettlementShardItem.counted.set(counted)])

    def settle(self, run: Run, shard: int, entries: Sequence[Entry], then: DomainEvent | None) -> None:
        tx = Transaction()
        units: list[tuple[Entry | None, Entry]] = []
        # payee -> gross, clawbacks, entries, shared entries, shared fen
        rows: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
        for n, entry in enumerate(entries):
            settled = entry.moved(EntryStatus.SETTLED, run_id=run.run_id)
            unclaimed = LedgerEntryItem.status == EntryStatus.SETTLEABLE.value
            if entry.paid_elsewhere:  # profit sharing paid it: left out, on the condition of its claim
                unclaimed &= LedgerEntryItem.payout == entry.payout
            else:  # paid here, only if nobody claimed it meanwhile
                unclaimed &= LedgerEntryItem.payout.does_not_exist()
            tx.update(
                LedgerEntryItem,
                LedgerEntryItem.key(entry.order_id, entry.entry_id),
                [
                    LedgerEntryItem.status.set(EntryStatus.SETTLED.value),
                    LedgerEntryItem.run_id.set(run.run_id),
                    LedgerEntryItem.payout.set(settled.payout or f"settlement#{run.run_id}"),
                    LedgerEntryItem.gsi2pk.set(f"RUN#{run.run_id}#{entry.payee}"),
                    LedgerEntryItem.gsi2sk.set(f"{entry.order_id}#{entry.entry_id}"),
                ],
                f"entry {n}",
                condition=unclaimed,
            )
            units.append((entry, settled))
            row = rows[entry.payee]
            if entry.paid_elsewhere:
                row[3] += 1
                row[4] += entry.amount_fen
            else:
                row[0 if entry.amount_fen >= 0 else 1] += abs(entry.amount_fen)
                row[2] += 1
        totals_parts(tx, units)
        for n, (payee, (gross, clawbacks, count, shared_count, shared)) in enumerate(sorted(rows.items())):
            actions: list[Action] = [
                StatementRowItem.entity.set(StatementRowItem),
                StatementRowItem.payee.set(payee),
                StatementRowItem.gross_fen.add(gross),
                StatementRowItem.clawbacks_fen.add(clawbacks),
                StatementRowItem.entries.add(count),
            ]
            if shared_count:  # only then: a row of a run with profit sharing off is written as before
                actions += [StatementRowItem.shared_entries.add(shared_count), StatementRowItem.shared_fen.add(shared)]
            tx.update(StatementRowItem, _row_key(run, payee, shard), actions, f"row {n}")
        paid = [e for e in entries if not e.paid_elsewhere]
        progress: list[Action] = [
            SettlementShardItem.processed.add(len(entries)),
            SettlementShardItem.net_fen.add(sum(e.amount_fen for e in paid)),
        ]
        if len(paid) < len(entries):
            shared_entries = [e for e in entries if e.paid_elsewhere]
            progress += [
                SettlementShardItem.shared_entries.add(len(shared_entries)),
                SettlementShardItem.shared_fen.add(sum(e.amount_fen for e in shared_entries)),
            ]
        tx.update(
            SettlementShardItem,
            _shard_key(run, shard),
            progress,
            "shard",
            condition=SettlementShardItem.status == RunStatus.RUNNING.value,
        )
        if then is not None:
            outbox.emit(tx, then)
        try:
            tx.commit()
        except TransactionCancelled as exc:
            raise ConcurrentUpdate("an entry or the shard changed meanwhile", failed=exc.failed) from exc

    def finish_shard(self, run: Run, shard: int) -> bool:
        """The shard DONE and the run's count up, in one transaction; the shard that completes the
        count also makes the run DONE in it (whichever of two at once is last, once)."""
        for _ in range(8):
            held = self.get(run.run_id)
            if held is None or held.status is not RunStatus.RUNNING:
                return False
            last = held.shards_done + 1 >= held.shards
            actions: list[Action] = [SettlementRunItem.shards_done.add(1)]
            if last:
                actions.append(SettlementRunItem.status.set(RunStatus.DONE.value))
            tx = Transaction()
            tx.update(
                SettlementShardItem,
                _shard_key(run, shard),
                [SettlementShardItem.status.set(RunStatus.DONE.value)],
                "shard",
                condition=SettlementShardItem.status == RunStatus.RUNNING.value,
            )
            tx.update(
                SettlementRunItem,
                SettlementRunItem.key(run.run_id),
                actions,
                "run",
                condition=SettlementRunItem.shards_done == held.shards_done,
            )
            try:
                tx.commit()
                return True
            except TransactionCancelled as exc:
                if "shard" in exc.failed:
                    return False  # done before (a duplicate message)
                continue  # another shard finished meanwhile: count again
        raise ConcurrentUpdate("the run's shards keep finishing; retry", run_id=run.run_id)

    def fail(self, run_id: str, reason: str) -> None:
        with translated():
            try:
                SettlementRunItem(*SettlementRunItem.key(run_id)).update(
                    actions=[
                        SettlementRunItem.status.set(RunStatus.FAILED.value),
                        SettlementRunItem.reason.set(reason[:500]),
                    ],
                    condition=SettlementRunItem.status == RunStatus.RUNNING.value,
                )
            except (UpdateError, PutError) as exc:
                if not condition_failed(exc):
                    raise

    def statement(self, run: Run) -> Iterator[StatementRow]:
        if run.keyed_per_shard:
            sources = [self._rows(shard_partition(run.run_id, shard)) for shard in range(run.shards)]
        else:  # one Query: a payee's rows of every shard sort together there
            sources = [self._rows(SettlementRunItem.key(run.run_id)[0])]
        yield from summed_by_payee(sources)

    def _rows(self, pk: str) -> Iterator[StatementRow]:
        """One partition's statement rows in payee order, a page of `statement_page` rows at a
        time, the next page fetched only when the merge has used up this one."""
        begins = StatementRowItem.sk.startswith("PAYEE#")
        with translated():
            found = StatementRowItem.query(pk, begins, consistent_read=True, page_size=self._statement_page)
            for item in found:
                if isinstance(item, StatementRowItem):
                    yield StatementRow(
                        item.payee,
                        int(item.gross_fen or 0),
                        int(item.clawbacks_fen or 0),
                        int(item.entries or 0),
                        int(item.shared_entries or 0),
                        int(item.shared_fen or 0),
                    )

    def payee_entries(self, run_id: str, payee: str) -> Iterator[Entry]:
        with translated():
            for item in LedgerEntryItem.gsi2.query(f"RUN#{run_id}#{payee}"):
                if isinstance(item, LedgerEntryItem):
                    yield entry_of(item)
