"""Paid-membership plans in DynamoDB (docs/data-model.md, "Paid membership"): implements
shared.membership.paid.PlanStore. A save is a Put conditional on the version read (or on the plan
not existing); the list is one Query of the plans' partition, never a Scan."""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist, PutError

from shared.data.items.membership_plans import PLANS_PARTITION, MembershipPlanItem
from shared.data.transactions import condition_failed, translated
from shared.kernel.errors import ConcurrentUpdate
from shared.membership.paid import Plan


class DynamoMembershipPlans:
    def get(self, plan_id: str) -> Plan | None:
        with translated():
            try:
                item = MembershipPlanItem.get(*MembershipPlanItem.key(plan_id), consistent_read=True)
            except DoesNotExist:
                return None
        return Plan.of(item.plan_id, item.body, int(item.version))

    def list(self) -> list[Plan]:
        with translated():
            items = MembershipPlanItem.query(
                PLANS_PARTITION, MembershipPlanItem.sk.startswith("PLAN#"), consistent_read=True
            )
            return [Plan.of(item.plan_id, item.body, int(item.version)) for item in items]

    def save(self, plan: Plan) -> None:
        pk, sk = MembershipPlanItem.key(plan.plan_id)
        previous = (
            MembershipPlanItem.pk.does_not_exist()
            if plan.version == 1
            else MembershipPlanItem.version == plan.version - 1
        )
        item = MembershipPlanItem(pk, sk, plan_id=plan.plan_id, version=plan.version, body=plan.body())
        with translated():
            try:
                item.save(condition=previous)
            except PutError as exc:
                if condition_failed(exc):
                    raise ConcurrentUpdate(
                        "the membership plan changed meanwhile", plan_id=plan.plan_id, version=plan.version
                    ) from exc
                raise
