"""Finance reports (API.md, "Commission and settlement"; docs/commission.md, "Reports"): the
reconciliation up to a period end and the sales reports, and the consumer that keeps their books."""

from functions.reporting import handlers, routes  # noqa: F401  (register their handlers on bp)
from functions.reporting.blueprint import bp

__all__ = ["bp"]
