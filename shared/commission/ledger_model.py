"""The commission ledger as data: entries, their states, and an order's book. Pure (kernel and
shared.commission.model only); docs/commission.md ("The ledger") has the rules and the keys.

    PENDING --order completed--> FROZEN(due = completed + after-sale window) --due--> SETTLEABLE --run--> SETTLED

An earning is written PENDING when the order is paid. A refund writes a negative entry (a
clawback) per payee for the refunded line: in the state its earning is in while that one is
PENDING or FROZEN (so both settle together), and SETTLEABLE at once (due now) when the earning is
already SETTLEABLE or SETTLED: it is then carried into the payee's next statement, and the
payee's balance may go negative. Nothing is ever capped at a balance.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from shared.commission.model import (
    CommissionLine,
    CommissionRules,
    Earning,
    Override,
    Share,
    clawback_fen,
    split_line,
)
from shared.kernel.credited import Credited, PayeeRole, payee_key
from shared.kernel.errors import InvalidTransition, ValidationFailed

# Entries are spread over this many index partitions (by order), each settled by its own worker.
ENTRY_SHARDS = 16
# A payee's running totals are spread over as many items, one per entry shard: concurrent orders
# crediting one dealer do not all write one item, and the workers settling different shards of a
# run never write the same one.
BALANCE_SHARDS = ENTRY_SHARDS


class EntryStatus(StrEnum):
    PENDING = "PENDING"
    FROZEN = "FROZEN"
    SETTLEABLE = "SETTLEABLE"
    SETTLED = "SETTLED"


NEXT: dict[EntryStatus, EntryStatus] = {
    EntryStatus.PENDING: EntryStatus.FROZEN,
    EntryStatus.FROZEN: EntryStatus.SETTLEABLE,
    EntryStatus.SETTLEABLE: EntryStatus.SETTLED,
}


# The prefix of the payout claim a settlement run writes on the entries it pays.
SETTLEMENT_PAYOUT = "settlement#"


def entry_shard(order_id: str) -> int:
    return zlib.crc32(order_id.encode()) % ENTRY_SHARDS


def balance_shard(order_id: str) -> int:
    return entry_shard(order_id)


@dataclass(frozen=True)
class Entry:
    """One payee's amount on one line of one order: an earning (> 0) or a clawback (< 0)."""

    entry_id: str  # "P#<sku>#<role>" for the earning, "R#<refund_id>#<sku>#<role>" for a clawback
    order_id: str
    role: PayeeRole
    payee_id: str
    sku: str
    amount_fen: int
    status: EntryStatus
    created_at_ms: int
    due_at_ms: int | None = None  # when it becomes (or became) settleable
    rules_version: int | None = None
    refund_id: str | None = None
    settlement_run_id: str | None = None
    # The payout channel that claimed the entry (docs/commission.md, "Two payout channels"):
    # `settlement#<run_id>` or `profit_sharing#<out_order_no>`, set once by a conditional write
    # (only while it is absent), so an entry is paid by one channel once. None: not claimed yet.
    payout: str | None = None

    @property
    def payee(self) -> str:
        return payee_key(self.role, self.payee_id)

    @property
    def shard(self) -> int:
        return entry_shard(self.order_id)

    @property
    def is_clawback(self) -> bool:
        return self.refund_id is not None

    @property
    def paid_elsewhere(self) -> bool:
        """Claimed by another payout channel than settlement runs (profit sharing): a run leaves it out."""
        return self.payout is not None and not self.payout.startswith(SETTLEMENT_PAYOUT)

    def moved(self, to: EntryStatus, due_at_ms: int | None = None, run_id: str | None = None) -> Entry:
        if NEXT.get(self.status) is not to:
            raise InvalidTransition(f"an entry {self.status} cannot become {to}", entry_id=self.entry_id)
        return replace(
            self,
            status=to,
            due_at_ms=due_at_ms if due_at_ms is not None else self.due_at_ms,
            settlement_run_id=run_id or self.settlement_run_id,
            payout=self.payout or (SETTLEMENT_PAYOUT + run_id if run_id else None),
        )

    def view(self) -> dict[str, Any]:
        return {
            "entry_id": f"{self.order_id}/{self.entry_id}",
            "order_id": self.order_id,
            "sku": self.sku,
            "role": self.role.value,
            "amount_fen": self.amount_fen,
            "status": self.status.value,
            "kind": "clawback" if self.is_clawback else "earning",
            "refund_id": self.refund_id,
            "rules_version": self.rules_version,
        }


@dataclass(frozen=True)
class Move:
    """An amount moving between states in a payee's totals (None: appearing or leaving)."""

    payee: str
    shard: int
    amount_fen: int
    from_status: EntryStatus | None
    to_status: EntryStatus


@dataclass(frozen=True)
class BookLine:
    sku: str
    qty: int
    base_fen: int
    category: str | None
    earned: dict[str, int]  # role -> amount earned on the line
    payees: dict[str, str]  # role -> payee id
    refunded_fen: int = 0


@dataclass(frozen=True)
class Book:
    """What commission knows of one order: who was credited, by which rules, what each line
    earned and how much of it was refunded, and when the after-sale window closes."""

    order_id: str
    credited: Credited
    rules_version: int | None
    lines: tuple[BookLine, ...]
    paid_at_ms: int
    version: int = 1
    completed_at_ms: int | None = None
    due_at_ms: int | None = None
    refunds: tuple[str, ...] = field(default=())

    def line(self, sku: str) -> BookLine | None:
        return next((line for line in self.lines if line.sku == sku), None)


@dataclass(frozen=True)
class PaidLine:
    """A line of OrderPaid: its paid amount after every discount (freight is never on a line)."""

    sku: str
    qty: int
    payable_fen: int
    category: str | None = None
    # A paid membership's line (docs/membership.md, "Referral rebate"): the plan's fixed rebate for
    # the guide credited on the order, instead of the rules' split. None: an ordinary line.
    rebate_fen: int | None = None


def _rebate_split(line: PaidLine, credited: Credited) -> tuple[Earning, ...]:
    if not line.rebate_fen or line.rebate_fen <= 0 or not credited.guide_id:
        return ()
    return (Earning(PayeeRole.GUIDE, credited.guide_id, min(line.rebate_fen, line.payable_fen)),)


def book_paid_order(
    order_id: str,
    lines: list[PaidLine],
    credited: Credited,
    rules: CommissionRules | None,
    paid_at_ms: int,
) -> tuple[Book, list[Entry]]:
    """The book of a paid order and one PENDING entry per payee per line, split by the rules in
    force when it was paid (none: nobody earns, and the book still records the lines)."""
    book_lines: list[BookLine] = []
    entries: list[Entry] = []
    for line in lines:
        split = (
            split_line(CommissionLine(line.sku, line.qty, line.payable_fen, line.category), rules, credited)
            if rules is not None and line.rebate_fen is None
            else None
        )
        earnings = split.earnings if split is not None else _rebate_split(line, credited)
        book_lines.append(
            BookLine(
                sku=line.sku,
                qty=line.qty,
                base_fen=line.payable_fen,
                category=line.category,
                earned={e.role.value: e.amount_fen for e in earnings},
                payees={e.role.value: e.payee_id for e in earnings},
            )
        )
        for earning in earnings:
            entries.append(
                Entry(
                    entry_id=f"P#{line.sku}#{earning.role.value}",
                    order_id=order_id,
                    role=earning.role,
                    payee_id=earning.payee_id,
                    sku=line.sku,
                    amount_fen=earning.amount_fen,
                    status=EntryStatus.PENDING,
                    created_at_ms=paid_at_ms,
                    rules_version=rules.version if rules is not None else None,
                )
            )
    book = Book(
        order_id=order_id,
        credited=credited,
        rules_version=rules.version if rules is not None else None,
        lines=tuple(book_lines),
        paid_at_ms=paid_at_ms,
    )
    return book, entries


def complete_book(book: Book, pending: list[Entry], completed_at_ms: int, window_ms: int) -> tuple[Book, list[Entry]]:
    """The order completed: its after-sale window closes `window_ms` later; every PENDING entry
    (earnings and any clawback of a refund before completion) is FROZEN until then."""
    due = completed_at_ms + window_ms
    after = replace(book, completed_at_ms=completed_at_ms, due_at_ms=due, version=book.version + 1)
    return after, [e.moved(EntryStatus.FROZEN, due_at_ms=due) for e in pending if e.status is EntryStatus.PENDING]


def claw_back(
    book: Book, refund_id: str, refunded: list[tuple[str, int]], current: dict[str, Entry], now_ms: int
) -> tuple[Book, list[Entry]]:
    """A refund of `refunded` [(sku, amount_fen)]: per line and per payee, pro rata to the amount
    on the line's running total (clawback_fen), so a line refunded in full in any number of parts
    takes back exactly what it earned. `current`: the order's entries by entry id, to give each
    clawback the state of the earning it reverses."""
    lines = {line.sku: line for line in book.lines}
    entries: list[Entry] = []
    for sku, amount in refunded:
        line = lines.get(sku)
        if line is None or amount <= 0:
            continue
        for role, earned in line.earned.items():
            back = clawback_fen(earned, line.base_fen, line.refunded_fen, amount)
            if back == 0:
                continue
            earning = current.get(f"P#{sku}#{role}")
            status, due = _clawback_state(earning, now_ms)
            entries.append(
                Entry(
                    entry_id=f"R#{refund_id}#{sku}#{role}",
                    order_id=book.order_id,
                    role=PayeeRole(role),
                    payee_id=line.payees[role],
                    sku=sku,
                    amount_fen=-back,
                    status=status,
                    created_at_ms=now_ms,
                    due_at_ms=due,
                    rules_version=book.rules_version,
                    refund_id=refund_id,
                )
            )
        lines[sku] = replace(line, refunded_fen=line.refunded_fen + amount)
    after = replace(
        book,
        lines=tuple(lines[line.sku] for line in book.lines),
        refunds=(*book.refunds, refund_id),
        version=book.version + 1,
    )
    return after, entries


def _clawback_state(earning: Entry | None, now_ms: int) -> tuple[EntryStatus, int | None]:
    if earning is None or earning.status is EntryStatus.PENDING:
        return EntryStatus.PENDING, None
    if earning.status is EntryStatus.FROZEN:
        return EntryStatus.FROZEN, earning.due_at_ms
    return EntryStatus.SETTLEABLE, now_ms  # after the window or after settlement: the next statement


def moves_of(before: Entry | None, after: Entry, balance_shard_of: int) -> Move:
    return Move(after.payee, balance_shard_of, after.amount_fen, before.status if before else None, after.status)


# -- rules as stored and shown ----------------------------------------------------------------------
def rules_from_dict(data: dict[str, Any]) -> CommissionRules:
    """The stored (and API) form: {"version", "cap_bp", "rates_bp": {role: bp}, "fixed_fen":
    {role: fen}, "overrides": [{"sku" | "category" | "guide_id", "rates_bp"?, "fixed_fen"?}]}."""
    return CommissionRules(
        version=int(data["version"]),
        shares=_shares(data.get("rates_bp"), data.get("fixed_fen")),
        overrides=tuple(
            Override(
                shares=_shares(o.get("rates_bp"), o.get("fixed_fen")),
                sku=o.get("sku"),
                category=o.get("category"),
                guide_id=o.get("guide_id"),
            )
            for o in data.get("overrides") or []
        ),
        cap_bp=int(data["cap_bp"]),
    )


def rules_to_dict(rules: CommissionRules) -> dict[str, Any]:
    def split(shares: Any) -> tuple[dict[str, int], dict[str, int]]:
        rates = {r.value: s.rate_bp for r, s in shares.items() if s.rate_bp is not None}
        fixed = {r.value: s.fixed_fen for r, s in shares.items() if s.fixed_fen is not None}
        return rates, fixed

    rates, fixed = split(rules.shares)
    overrides = []
    for o in rules.overrides:
        o_rates, o_fixed = split(o.shares)
        target = {k: v for k, v in (("sku", o.sku), ("category", o.category), ("guide_id", o.guide_id)) if v}
        overrides.append(
            {**target, **({"rates_bp": o_rates} if o_rates else {}), **({"fixed_fen": o_fixed} if o_fixed else {})}
        )
    return {
        "version": rules.version,
        "cap_bp": rules.cap_bp,
        "rates_bp": rates,
        "fixed_fen": fixed,
        "overrides": overrides,
    }


def _shares(rates: dict[str, int] | None, fixed: dict[str, int] | None) -> dict[PayeeRole, Share]:
    rates, fixed = rates or {}, fixed or {}
    both = set(rates) & set(fixed)
    if both:
        raise ValidationFailed("a role has a rate or a fixed amount, not both", roles=sorted(both))
    shares = {PayeeRole(role): Share(rate_bp=int(bp)) for role, bp in rates.items()}
    shares.update({PayeeRole(role): Share(fixed_fen=int(fen)) for role, fen in fixed.items()})
    return shares
