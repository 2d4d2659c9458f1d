"""The merchant's paid-membership plans (shared/data/stores/membership_plans.py; docs/data-model.md,
"Paid membership"). One partition for all plans: a merchant sells a handful, and the list is one Query."""

from __future__ import annotations

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute

from shared.data.table import BaseItem

PLANS_PARTITION = "MEMBERSHIP_PLANS"


class MembershipPlanItem(BaseItem, discriminator="MembershipPlan"):
    """pk `MEMBERSHIP_PLANS`, sk `PLAN#<plan_id>`: a plan's terms, saved conditional on `version`."""

    plan_id = UnicodeAttribute()
    version = NumberAttribute()
    body = JSONAttribute()

    @staticmethod
    def key(plan_id: str) -> tuple[str, str]:
        return PLANS_PARTITION, f"PLAN#{plan_id}"
