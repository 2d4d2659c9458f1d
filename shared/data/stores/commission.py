"""Commission rules and the ledger in DynamoDB (docs/data-model.md, "Commission"): implements
shared.commission.ports.RulesStore, Ledger and Catalogue.

A ledger write is one TransactWriteItems: the book (conditional on its version, or new), new
entries (each `attribute_not_exists`), moved entries (each conditional on the state read), the
payees' totals (`ADD`), the CommissionRecorded it announces (outbox), and with a claim the
consumer's mark set DONE on its token. A write of more than a transaction holds (an order of many
lines) is split into parts in a fixed order, each checking the claim, the last carrying the book,
the announcement and the mark: a part written before and replayed fails on its own entries and is
skipped, so a retry completes the write without doubling it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.update import Action

from shared.commission.ledger_model import (
    BALANCE_SHARDS,
    Book,
    BookLine,
    Entry,
    EntryStatus,
    balance_shard,
    rules_from_dict,
    rules_to_dict,
)
from shared.commission.model import CommissionRules
from shared.commission.ports import AlreadyRecorded, ClaimLost, Cursor, LedgerChange
from shared.data import outbox
from shared.data.items.catalog import ProductItem
from shared.data.items.commission import (
    RULES_PARTITION,
    CommissionRulesItem,
    LedgerBookItem,
    LedgerEntryItem,
    PayeeTotalsItem,
)
from shared.data.stores.consumer_marks import done_in, still_claimed_in
from shared.data.transactions import Transaction, TransactionCancelled, translated
from shared.kernel.clock import iso
from shared.kernel.credited import Credited, PayeeRole
from shared.kernel.errors import ConcurrentUpdate
from shared.messaging.ports import HeldClaim

INDEXED = (EntryStatus.FROZEN, EntryStatus.SETTLEABLE)
TOTAL_ATTRIBUTE = {
    EntryStatus.PENDING: "pending_fen",
    EntryStatus.FROZEN: "frozen_fen",
    EntryStatus.SETTLEABLE: "settleable_fen",
    EntryStatus.SETTLED: "settled_fen",
}
# Entries per part of a split write: each brings at most one item, and its payees' totals add at
# most five (one order's payees); book, announced event, mark and totals fit in the rest of the 100.
ENTRIES_PER_PART = 80


class DynamoRules:
    def latest(self) -> tuple[CommissionRules, int] | None:
        with translated():
            try:
                item = CommissionRulesItem.get(*CommissionRulesItem.latest_key(), consistent_read=True)
            except CommissionRulesItem.DoesNotExist:
                return None
        return rules_from_dict(item.body), int(item.effective_at)

    def save(self, rules: CommissionRules, effective_at_ms: int) -> None:
        body = rules_to_dict(rules)
        latest_pk, latest_sk = CommissionRulesItem.latest_key()
        version_pk, version_sk = CommissionRulesItem.version_key(iso(effective_at_ms), rules.version)

        def item(pk: str, sk: str) -> CommissionRulesItem:
            return CommissionRulesItem(
                pk, sk, version=rules.version, effective_at=effective_at_ms, body=body, created_at=effective_at_ms
            )

        tx = Transaction()
        previous = (
            CommissionRulesItem.pk.does_not_exist()
            if rules.version == 1
            else CommissionRulesItem.version == rules.version - 1
        )
        tx.put(item(latest_pk, latest_sk), "latest", previous)
        tx.put(item(version_pk, version_sk), "version", CommissionRulesItem.pk.does_not_exist())
        try:
            tx.commit()
        except TransactionCancelled as exc:
            raise ConcurrentUpdate("the rules changed meanwhile", version=rules.version) from exc

    def in_force_at(self, at_ms: int) -> CommissionRules | None:
        bound = f"V#{iso(at_ms)}#~"
        with translated():
            found = CommissionRulesItem.query(
                RULES_PARTITION,
                CommissionRulesItem.sk.between("V#", bound),
                scan_index_forward=False,
                limit=1,
                consistent_read=True,
            )
            for item in found:
                return rules_from_dict(item.body)
        return None


class DynamoCatalogue:
    def categories(self, skus: Sequence[str]) -> dict[str, str | None]:
        found: dict[str, str | None] = dict.fromkeys(skus)
        with translated():
            for item in ProductItem.batch_get([ProductItem.key(sku) for sku in set(skus)]):
                found[item.sku] = item.category
        return found


@dataclass
class _Part:
    tx: Transaction = field(default_factory=Transaction)
    entry_labels: set[str] = field(default_factory=set)


class DynamoLedger:
    def book(self, order_id: str) -> Book | None:
        with translated():
            try:
                item = LedgerBookItem.get(*LedgerBookItem.key(order_id), consistent_read=True)
            except DoesNotExist:
                return None
        return _book_of(item.order_id, item.body, int(item.version))

    def entries(self, order_id: str) -> list[Entry]:
        pk, _ = LedgerBookItem.key(order_id)
        with translated():
            found = LedgerEntryItem.query(pk, LedgerEntryItem.sk.startswith("ENTRY#"), consistent_read=True)
            return [entry_of(i) for i in found if isinstance(i, LedgerEntryItem)]

    def write(self, change: LedgerChange, claim: HeldClaim | None = None) -> None:
        units: list[tuple[Entry | None, Entry]] = [(None, e) for e in change.new_entries] + list(change.moved)
        chunks = [units[i : i + ENTRIES_PER_PART] for i in range(0, len(units), ENTRIES_PER_PART)] or [[]]
        for n, chunk in enumerate(chunks):
            last = n == len(chunks) - 1
            part = _part(n, chunk)
            if last and change.book_after is not None:
                _put_book(part.tx, change.book_before, change.book_after)
            if last and change.announce is not None:
                outbox.emit(part.tx, change.announce)
            if claim is not None and last:
                done_in(part.tx, claim)
            elif claim is not None:
                still_claimed_in(part.tx, claim, "mark")
            try:
                part.tx.commit()
            except TransactionCancelled as exc:
                if last or not part.entry_labels & set(exc.failed) or "mark" in exc.failed:
                    raise _refusal(exc, change, part) from exc
                # else: this part was written before; the replay goes on with the next

    def due(self, status: EntryStatus, shard: int, until_ms: int, limit: int) -> list[Entry]:
        with translated():
            found = LedgerEntryItem.gsi2.query(
                _queue(status, shard), LedgerEntryItem.gsi2sk <= f"{iso(until_ms)}#~", limit=limit
            )
            return [entry_of(i) for i in found if isinstance(i, LedgerEntryItem)]

    def payee_entries(self, payee: str, limit: int, cursor: Cursor) -> tuple[list[Entry], Cursor]:
        with translated():
            result = LedgerEntryItem.gsi1.query(
                f"PAYEE#{payee}", scan_index_forward=False, limit=limit, last_evaluated_key=cursor
            )
            found = [entry_of(i) for i in result if isinstance(i, LedgerEntryItem)]
            return found, result.last_evaluated_key

    def totals(self, payee: str) -> dict[EntryStatus, int]:
        sums = dict.fromkeys(EntryStatus, 0)
        with translated():
            keys = [PayeeTotalsItem.key(payee, n) for n in range(BALANCE_SHARDS)]
            for item in PayeeTotalsItem.batch_get(keys):
                for status, name in TOTAL_ATTRIBUTE.items():
                    sums[status] += int(getattr(item, name) or 0)
        return sums


def _part(n: int, chunk: Sequence[tuple[Entry | None, Entry]]) -> _Part:
    part = _Part()
    for m, (before, after) in enumerate(chunk):
        label = f"entry {n}.{m}"
        if before is None:
            part.tx.put(entry_item(after), label, LedgerEntryItem.pk.does_not_exist())
            part.entry_labels.add(label)
        else:
            _move(part.tx, before, after, label)
    totals_parts(part.tx, chunk)
    return part


def _refusal(exc: TransactionCancelled, change: LedgerChange, part: _Part) -> Exception:
    """The domain error a refused part means (shared.commission.ports.Ledger.write)."""
    if "mark" in exc.failed:
        return ClaimLost("the claim on the event is not ours")
    if "book" in exc.failed and change.book_before is None:
        return AlreadyRecorded("the order's book exists")
    if part.entry_labels & set(exc.failed) or any(label.startswith("event:") for label in exc.failed):
        return AlreadyRecorded("an entry of this change exists", failed=exc.failed)
    return ConcurrentUpdate("the ledger changed meanwhile", failed=exc.failed)


def _queue(status: EntryStatus, shard: int) -> str:
    return f"COMMISSION#{status.value}#{shard}"


def _index_fields(entry: Entry) -> tuple[str | None, str | None]:
    if entry.status in INDEXED and entry.due_at_ms is not None:
        return _queue(entry.status, entry.shard), f"{iso(entry.due_at_ms)}#{entry.order_id}#{entry.entry_id}"
    return None, None


def entry_item(entry: Entry) -> LedgerEntryItem:
    """The item an entry is stored as, index fields included (also what bench/settlement.py seeds)."""
    pk, sk = LedgerEntryItem.key(entry.order_id, entry.entry_id)
    gsi2pk, gsi2sk = _index_fields(entry)
    return LedgerEntryItem(
        pk,
        sk,
        order_id=entry.order_id,
        entry_id=entry.entry_id,
        role=entry.role.value,
        payee_id=entry.payee_id,
        sku=entry.sku,
        amount_fen=entry.amount_fen,
        status=entry.status.value,
        due_at=entry.due_at_ms,
        rules_version=entry.rules_version,
        refund_id=entry.refund_id,
        run_id=entry.settlement_run_id,
        payout=entry.payout,
        gsi1pk=f"PAYEE#{entry.payee}",
        gsi1sk=f"{iso(entry.created_at_ms)}#{entry.order_id}#{entry.entry_id}",
        gsi2pk=gsi2pk,
        gsi2sk=gsi2sk,
        created_at=entry.created_at_ms,
    )


def _move(tx: Transaction, before: Entry, after: Entry, label: str) -> None:
    gsi2pk, gsi2sk = _index_fields(after)
    actions: list[Action] = [LedgerEntryItem.status.set(after.status.value)]
    if after.due_at_ms is not None:
        actions.append(LedgerEntryItem.due_at.set(after.due_at_ms))
    if after.settlement_run_id is not None:
        actions.append(LedgerEntryItem.run_id.set(after.settlement_run_id))
    if gsi2pk is not None and gsi2sk is not None:
        actions += [LedgerEntryItem.gsi2pk.set(gsi2pk), LedgerEntryItem.gsi2sk.set(gsi2sk)]
    else:
        actions += [LedgerEntryItem.gsi2pk.remove(), LedgerEntryItem.gsi2sk.remove()]
    key = LedgerEntryItem.key(before.order_id, before.entry_id)
    tx.update(LedgerEntryItem, key, actions, label, condition=LedgerEntryItem.status == before.status.value)


def totals_parts(tx: Transaction, units: Sequence[tuple[Entry | None, Entry]]) -> None:
    """The payees' totals moved by `units` (as read, after), one ADD per payee and shard."""
    deltas: dict[tuple[str, int], dict[EntryStatus, int]] = defaultdict(lambda: defaultdict(int))
    for before, after in units:
        shard = balance_shard(after.order_id)
        if before is not None:
            deltas[(before.payee, shard)][before.status] -= before.amount_fen
        deltas[(after.payee, shard)][after.status] += after.amount_fen
    for n, ((payee, shard), by_status) in enumerate(sorted(deltas.items())):
        actions = [
            getattr(PayeeTotalsItem, TOTAL_ATTRIBUTE[status]).add(amount)
            for status, amount in by_status.items()
            if amount != 0
        ]
        if actions:
            actions.append(PayeeTotalsItem.entity.set(PayeeTotalsItem))  # the item is created by the first write
            tx.update(PayeeTotalsItem, PayeeTotalsItem.key(payee, shard), actions, f"totals {n}")


def _put_book(tx: Transaction, before: Book | None, after: Book) -> None:
    pk, sk = LedgerBookItem.key(after.order_id)
    item = LedgerBookItem(
        pk, sk, order_id=after.order_id, version=after.version, body=_book_body(after), created_at=after.paid_at_ms
    )
    unchanged = LedgerBookItem.pk.does_not_exist() if before is None else LedgerBookItem.version == before.version
    tx.put(item, "book", unchanged)


def _book_body(book: Book) -> dict[str, Any]:
    return {
        "credited": book.credited.to_dict(),
        "rules_version": book.rules_version,
        "paid_at_ms": book.paid_at_ms,
        "completed_at_ms": book.completed_at_ms,
        "due_at_ms": book.due_at_ms,
        "refunds": list(book.refunds),
        "lines": [
            {
                "sku": line.sku,
                "qty": line.qty,
                "base_fen": line.base_fen,
                "category": line.category,
                "earned": line.earned,
                "payees": line.payees,
                "refunded_fen": line.refunded_fen,
            }
            for line in book.lines
        ],
    }


def _book_of(order_id: str, body: dict[str, Any], version: int) -> Book:
    return Book(
        order_id=order_id,
        credited=Credited.from_dict(body["credited"]),
        rules_version=body["rules_version"],
        lines=tuple(
            BookLine(
                sku=line["sku"],
                qty=int(line["qty"]),
                base_fen=int(line["base_fen"]),
                category=line["category"],
                earned={k: int(v) for k, v in line["earned"].items()},
                payees=dict(line["payees"]),
                refunded_fen=int(line["refunded_fen"]),
            )
            for line in body["lines"]
        ),
        paid_at_ms=int(body["paid_at_ms"]),
        version=version,
        completed_at_ms=body["completed_at_ms"],
        due_at_ms=body["due_at_ms"],
        refunds=tuple(body["refunds"]),
    )


def entry_of(item: LedgerEntryItem) -> Entry:
    return Entry(
        entry_id=item.entry_id,
        order_id=item.order_id,
        role=PayeeRole(item.role),
        payee_id=item.payee_id,
        sku=item.sku,
        amount_fen=int(item.amount_fen),
        status=EntryStatus(item.status),
        created_at_ms=int(item.created_at or 0),
        due_at_ms=int(item.due_at) if item.due_at is not None else None,
        rules_version=int(item.rules_version) if item.rules_version is not None else None,
        refund_id=item.refund_id,
        settlement_run_id=item.run_id,
        payout=item.payout,
    )
