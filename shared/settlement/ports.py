"""What settlement runs need from outside: the runs and their shards, and one batch's write.
`shared.data.stores.settlement` implements them on DynamoDB; `tests/fakes/settlement.py` in memory."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from shared.commission.ledger_model import Entry
from shared.kernel.events import DomainEvent
from shared.settlement.model import Run, ShardProgress, StatementRow


class SettlementStore(Protocol):
    def start(self, run: Run, messages: Sequence[DomainEvent]) -> bool:
        """Create the run, its shards and their first messages (outbox events) in one transaction;
        False (and nothing written) if the run exists."""
        ...

    def resume(self, run: Run, messages: Sequence[DomainEvent]) -> bool:
        """A FAILED run RUNNING again, with these messages (outbox events), in one transaction
        conditional on it still being FAILED; False (and nothing written) otherwise."""
        ...

    def get(self, run_id: str) -> Run | None: ...

    def shards(self, run: Run) -> list[ShardProgress]: ...

    def count_due(self, shard: int, until_ms: int) -> int:
        """How many entries of the shard are SETTLEABLE and due by `until_ms` (a count, no items)."""
        ...

    def count(self, run: Run, shard: int, counted: int) -> None:
        """Record how many entries the shard found when it began (progress' total)."""
        ...

    def settle(self, run: Run, shard: int, entries: Sequence[Entry], then: DomainEvent | None) -> None:
        """In ONE transaction: each entry SETTLEABLE -> SETTLED by this run, its payee's totals, the
        run's statement rows and the shard's progress; and `then`, the message that continues the
        shard. An entry with no payout claim is paid (claimed `settlement#<run>`, conditional on it
        still being SETTLEABLE and unclaimed); one that profit sharing claimed (`paid_elsewhere`) is
        left out (conditional on that claim), counted in the row's `shared_*`, never in its gross.
        ConcurrentUpdate if an entry moved or was claimed meanwhile."""
        ...

    def finish_shard(self, run: Run, shard: int) -> bool:
        """The shard DONE and the run's count of done shards up, once (conditional on the shard
        still RUNNING); the run DONE with its last shard. False if it was done before."""
        ...

    def fail(self, run_id: str, reason: str) -> None: ...

    def statement(self, run: Run) -> Iterator[StatementRow]:
        """The run's rows, one per payee (summed over the shards that paid it), in payee order;
        streamed (`shared.settlement.model.summed_by_payee` over each shard's rows)."""
        ...

    def payee_entries(self, run_id: str, payee: str) -> Iterator[Entry]:
        """The entries this run settled for one payee."""
        ...


# The payee's name and bank or WeChat account reference, for the statement ("<kind>:<id>" -> both).
PayeeDirectory = Callable[[str], tuple[str | None, str | None]]
