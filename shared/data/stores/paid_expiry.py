"""DynamoDB side of the paid-membership jobs (shared/membership/paid_expiry.py): the memberships by
their end (gsi2 `PAIDMEMBER#END`, p1's `PaidMemberItem`), the jobs' conditional writes on them, and
the jobs' checkpoints. docs/data-model.md, "Paid membership"."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import UpdateError

from shared.data.checkpoints import advance_checkpoint
from shared.data.items.paid_expiry import PaidExpiryCheckpointItem
from shared.data.items.paid_membership import MEMBERS_ENDING, PaidMemberItem
from shared.data.transactions import condition_failed, translated
from shared.kernel.errors import ConcurrentUpdate
from shared.membership.paid_end import ACTIVE, EXPIRED, AlreadyReminded, Ending
from shared.membership.paid_terms import schedule_of


def ending_of(item: PaidMemberItem) -> Ending:
    """`tier`: the one that runs last (its schedule's last segment; the reminder and the expiry
    name the tier that ends, not a higher one that ran before it)."""
    schedule = schedule_of(item.schedule)
    last = max(schedule, key=lambda b: b.end_ms) if schedule else None
    return Ending(
        customer_id=item.customer_sub,
        tier=item.tier if last is None else last.tier,
        until_ms=int(item.until_ms),
        status=item.status,
        version=int(item.version),
        store_id=item.store_id,
        guide_id=item.guide_id,
        reminded_for_ms=None if item.reminded_for_ms is None else int(item.reminded_for_ms),
        expired_for_ms=None if item.expired_for_ms is None else int(item.expired_for_ms),
    )


def ending_of_image(image: dict[str, Any]) -> Ending:
    """The membership in a stream record's image (DynamoDB JSON), as the store reads it."""
    return ending_of(PaidMemberItem.from_raw_data(image))


class DynamoEndingMembers:
    def page(self, low: str, high: str, limit: int) -> tuple[list[Ending], bool]:
        with translated():
            # BETWEEN is inclusive: the membership at `low` itself was handled by the page before, so
            # one more is asked for (a page of `limit` new ones, never an empty page that says "more").
            result = PaidMemberItem.gsi2.query(
                MEMBERS_ENDING, PaidMemberItem.gsi2sk.between(low, high), limit=limit + 1
            )
            items = [item for item in result if isinstance(item, PaidMemberItem) and item.gsi2sk != low]
            more = result.last_evaluated_key is not None or len(items) > limit
        return [ending_of(item) for item in items[:limit]], more

    def get(self, customer_id: str) -> Ending | None:
        with translated():
            try:
                item = PaidMemberItem.get(*PaidMemberItem.key(customer_id), consistent_read=True)
            except PaidMemberItem.DoesNotExist:
                return None
        return ending_of(item)

    def expire(self, ending: Ending) -> None:
        item = PaidMemberItem(*PaidMemberItem.key(ending.customer_id))
        condition = (PaidMemberItem.version == ending.version) & (PaidMemberItem.status == ACTIVE)
        actions = [
            PaidMemberItem.status.set(EXPIRED),
            PaidMemberItem.expired_for_ms.set(ending.until_ms),
            PaidMemberItem.version.set(ending.version + 1),
        ]
        self._update(item, actions, condition, ConcurrentUpdate("the membership changed since it was read"))

    def remind(self, ending: Ending) -> None:
        item = PaidMemberItem(*PaidMemberItem.key(ending.customer_id))
        condition = (
            (PaidMemberItem.until_ms == ending.until_ms)
            & (PaidMemberItem.status == ACTIVE)
            & (PaidMemberItem.reminded_for_ms.does_not_exist() | (PaidMemberItem.reminded_for_ms != ending.until_ms))
        )
        actions = [PaidMemberItem.reminded_for_ms.set(ending.until_ms)]
        self._update(item, actions, condition, AlreadyReminded("reminded for this end, or the end moved"))

    @staticmethod
    def _update(item: PaidMemberItem, actions: list[Any], condition: Any, refused: Exception) -> None:
        try:
            with translated():
                item.update(actions=actions, condition=condition)
        except UpdateError as exc:
            if condition_failed(exc):
                raise refused from exc
            raise


class DynamoJobCheckpoints:
    def through(self, job: str) -> str | None:
        with translated():
            try:
                item = PaidExpiryCheckpointItem.get(*PaidExpiryCheckpointItem.key(job), consistent_read=True)
            except PaidExpiryCheckpointItem.DoesNotExist:
                return None
        return str(item.through)

    def advance(self, job: str, through: str) -> None:
        advance_checkpoint(PaidExpiryCheckpointItem, PaidExpiryCheckpointItem.key(job), through)
