"""Commission (API.md, "Commission and settlement"; docs/commission.md): the rules for merchant
admins, the ledger's consumer and release schedule, and a payee's own ledger."""

from functions.commission import handlers, routes  # noqa: F401  (register their handlers on bp)
from functions.commission.blueprint import bp

__all__ = ["bp"]
