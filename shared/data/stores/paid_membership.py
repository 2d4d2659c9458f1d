"""A member's paid terms and paid membership in DynamoDB (docs/data-model.md, "Paid membership"):
implements shared.membership.paid_terms.PaidTermsStore.

Read: the `PAIDMEMBER` item (consistent Get) and the terms (consistent Query `begins_with PTERM#`
of the member's partition; a member buys a handful). Write: ONE transaction of the terms added or
changed (Put if `attribute_not_exists(pk)` / `version = :read`), the paid member (Put if new, else
an Update of its own attributes conditional on `version = :read`, so the expiry job's marks stay)
and checkout's `MEMBER` item (`tier`, `discount_bp`, `until`; guarded by the paid member's
condition in the same transaction)."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.update import Action

from shared.data.items.member import MemberItem
from shared.data.items.paid_membership import (
    MEMBERS_ENDING,
    TERMS_BOUGHT,
    TERMS_ENDING,
    PaidMemberItem,
    PaidTermItem,
)
from shared.data.transactions import Transaction, TransactionCancelled, translated
from shared.kernel.clock import iso
from shared.kernel.errors import ConcurrentUpdate
from shared.membership.paid import Term, TermKind
from shared.membership.paid_terms import (
    MemberStatus,
    PaidMember,
    PaidState,
    StoredTerm,
    TermStatus,
    changed_terms,
    schedule_of,
)


def term_item(term: StoredTerm, version: int) -> PaidTermItem:
    t = term.term
    pk, sk = PaidTermItem.key(term.customer_id, t.order_id)
    return PaidTermItem(
        pk,
        sk,
        customer_sub=term.customer_id,
        order_id=t.order_id,
        plan_id=t.plan_id,
        tier=t.tier,
        rank=t.rank,
        days=t.days,
        kind=t.kind.value,
        store_id=t.store_id,
        guide_id=t.guide_id,
        paid_fen=term.paid_fen,
        bought_at_ms=t.bought_at_ms,
        segments=[list(s) for s in t.segments],
        status=term.status.value,
        refunded_at_ms=term.refunded_at_ms,
        discount_bp=t.discount_bp,
        member_price=t.member_price,
        refund_full_within_days=term.refund_full_within_days,
        version=version,
        gsi2pk=TERMS_BOUGHT,
        gsi2sk=f"{iso(t.bought_at_ms)}#{t.order_id}",
        gsi1pk=TERMS_ENDING,
        gsi1sk=f"{iso(t.end_ms)}#{t.order_id}",
        created_at=t.bought_at_ms,
    )


def term_of(item: PaidTermItem) -> StoredTerm:
    term = Term(
        order_id=item.order_id,
        plan_id=item.plan_id,
        tier=item.tier,
        rank=int(item.rank),
        days=int(item.days),
        bought_at_ms=int(item.bought_at_ms),
        kind=TermKind(item.kind),
        segments=tuple((int(s), int(e)) for s, e in item.segments),
        discount_bp=int(item.discount_bp),
        member_price=bool(item.member_price),
        store_id=item.store_id,
        guide_id=item.guide_id,
        revoked_at_ms=int(item.refunded_at_ms) if item.refunded_at_ms is not None else None,
    )
    return StoredTerm(
        customer_id=item.customer_sub,
        term=term,
        paid_fen=int(item.paid_fen),
        refund_full_within_days=int(item.refund_full_within_days),
        status=TermStatus(item.status),
        refunded_at_ms=int(item.refunded_at_ms) if item.refunded_at_ms is not None else None,
        version=int(item.version),
    )


def member_of(item: PaidMemberItem) -> PaidMember:
    return PaidMember(
        customer_id=item.customer_sub,
        tier=item.tier,
        rank=int(item.rank),
        discount_bp=int(item.discount_bp),
        member_price=bool(item.member_price),
        until_ms=int(item.until_ms),
        store_id=item.store_id,
        guide_id=item.guide_id,
        status=MemberStatus(item.status),
        expired_for_ms=int(item.expired_for_ms) if item.expired_for_ms is not None else None,
        version=int(item.version),
        schedule=schedule_of(item.schedule) or (),
    )


def _member_values(member: PaidMember) -> dict[str, Any]:
    values: dict[str, Any] = {
        "tier": member.tier,
        "rank": member.rank,
        "discount_bp": member.discount_bp,
        "member_price": member.member_price,
        "until_ms": member.until_ms,
        "store_id": member.store_id,
        "guide_id": member.guide_id,
        "status": member.status.value,
        "schedule": [b.row() for b in member.schedule],
        "gsi2pk": MEMBERS_ENDING,
        "gsi2sk": f"{iso(member.until_ms)}#{member.customer_id}",
    }
    if member.expired_for_ms is not None:
        values["expired_for_ms"] = member.expired_for_ms
    return values


class DynamoPaidTerms:
    def read(self, customer_id: str) -> PaidState:
        pk, _ = PaidTermItem.key(customer_id, "")
        with translated():
            try:
                member: PaidMember | None = member_of(
                    PaidMemberItem.get(*PaidMemberItem.key(customer_id), consistent_read=True)
                )
            except DoesNotExist:
                member = None
            found = PaidTermItem.query(pk, PaidTermItem.sk.startswith("PTERM#"), consistent_read=True)
            terms = tuple(term_of(i) for i in found if isinstance(i, PaidTermItem))
        return PaidState(customer_id, terms, member)

    def write(self, before: PaidState, after: PaidState) -> None:
        tx = Transaction()
        for read, written in changed_terms(before, after):
            if read is None or written.version == 0:  # a new term: never over a stored one
                tx.put(term_item(written, 1), f"term {written.order_id}", PaidTermItem.pk.does_not_exist())
            else:
                condition = PaidTermItem.version == read.version
                tx.put(term_item(written, read.version + 1), f"term {written.order_id}", condition)
        member = after.member
        if member is not None and member != before.member:
            self._member_parts(tx, before.member, member)
        if not len(tx):
            return
        try:
            tx.commit()
        except TransactionCancelled as exc:
            raise ConcurrentUpdate("the paid membership changed meanwhile", failed=exc.failed) from exc

    @staticmethod
    def _member_parts(tx: Transaction, read: PaidMember | None, member: PaidMember) -> None:
        values = _member_values(member)
        if read is None:
            pk, sk = PaidMemberItem.key(member.customer_id)
            item = PaidMemberItem(pk, sk, customer_sub=member.customer_id, version=1, **values)
            tx.put(item, "paid member", PaidMemberItem.pk.does_not_exist())
        else:
            actions = [getattr(PaidMemberItem, name).set(value) for name, value in values.items()]
            if member.status is MemberStatus.EXPIRED and member.expired_for_ms is None:
                actions.append(PaidMemberItem.expired_for_ms.remove())  # expired late: to announce
            actions += [PaidMemberItem.version.set(read.version + 1)]
            condition = PaidMemberItem.version == read.version
            tx.update(PaidMemberItem, PaidMemberItem.key(member.customer_id), actions, "paid member", condition)
        # Checkout's item: member prices (unless the plan gives only its discount) and the discount
        # of the schedule's segment covering now, while `until` has not passed.
        member_actions: list[Action] = [
            MemberItem.customer_sub.set(member.customer_id),
            MemberItem.tier.set(member.tier),
            MemberItem.until.set(member.until_ms),
            MemberItem.discount_bp.set(member.discount_bp),
            MemberItem.member_price.set(member.member_price),
            MemberItem.schedule.set([b.row() for b in member.schedule]),
            MemberItem.entity.set(MemberItem),  # the discriminator serializes the class
        ]
        tx.update(MemberItem, MemberItem.key(member.customer_id), member_actions, "member item")
