"""Events that announce no write of their own (LowStock, derived by the relay from the stream):
written alone through the outbox, under an id fixed by what they were derived from."""

from __future__ import annotations

from shared.data import outbox
from shared.data.transactions import Transaction, TransactionCancelled
from shared.kernel.events import DomainEvent


def emit_once(event: DomainEvent) -> bool:
    """Write the event item; False if an event with this id exists already (a redelivered record),
    so deriving the same event twice announces it once."""
    tx = Transaction()
    outbox.emit(tx, event)
    try:
        tx.commit()
    except TransactionCancelled as cancelled:
        if cancelled.failed:
            return False
        raise
    return True
