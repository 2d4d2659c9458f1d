"""Settlement runs for finance (API.md, "Commission and settlement"; docs/commission.md): start a
period's run, follow it, download its statements; and the worker that settles one shard."""

from functions.settlement import handlers, routes  # noqa: F401  (register their handlers on bp)
from functions.settlement.blueprint import bp

__all__ = ["bp"]
