"""The paid-membership schedules (docs/membership.md, "Expiry and the reminder before it"): the
expiry of memberships whose end has passed, and the reminder N days before the end. Each walks
gsi2 `PAIDMEMBER#END` from its checkpoint; MembershipExpired and MembershipExpiring are derived
from the membership's change on the stream."""

from __future__ import annotations

from typing import Any

from chalice import Rate

from functions.membership.blueprint import bp
from shared.platform import bootstrap


# Every 5 minutes: checkout stops the paid benefits at `until` by itself (it reads it); the job
# makes the membership EXPIRED and announces it, a few minutes late at most.
@bp.schedule(Rate(5, unit=Rate.MINUTES), name="paid_membership_expiry")
def paid_membership_expiry(event: Any) -> dict[str, Any]:
    result = bootstrap.paid_expiry().expire_due()
    return {"expired": result.done, "read": result.read, "stopped": result.stopped}


# Hourly: a reminder N days ahead can be an hour late; each (member, end) is reminded once.
@bp.schedule(Rate(1, unit=Rate.HOURS), name="paid_membership_reminders")
def paid_membership_reminders(event: Any) -> dict[str, Any]:
    result = bootstrap.paid_expiry().remind_expiring()
    return {"reminded": result.done, "read": result.read, "stopped": result.stopped}
