"""Members (API.md, "Members"; docs/membership.md): the member's level, growth and points, the
points ledger, the merchant's membership rules, the consumer that keeps growth and points, and the
schedules that release and expire points, and the paid membership's expiry and reminder."""

from functions.membership import handlers, paid_schedules, routes  # noqa: F401  (register their handlers on bp)
from functions.membership.blueprint import bp

__all__ = ["bp"]
