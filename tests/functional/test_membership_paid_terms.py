"""The paid terms and paid member on moto (shared/data/stores/paid_membership.py): one
transaction per change, conditional on the versions read; the indexes the expiry job and the
reports read; checkout's MEMBER item set in the same write."""

from __future__ import annotations

import pytest

from shared.data.items import MemberItem, PaidMemberItem, PaidTermItem
from shared.data.stores.paid_membership import DynamoPaidTerms
from shared.kernel.clock import iso
from shared.kernel.errors import ConcurrentUpdate
from shared.membership.paid import DAY_MS, Term, TermKind
from shared.membership.paid_terms import MemberStatus, StoredTerm, TermStatus, purchased, refunded

NOW = 1_767_225_600_000


def bought(order_id: str, rank: int = 1, days: int = 30) -> StoredTerm:
    term = Term(order_id, "silver", "银卡", rank, days, NOW, TermKind.NEW, (), discount_bp=300, store_id="S1")
    return StoredTerm("c1", term, paid_fen=9_900, refund_full_within_days=7)


def test_terms_and_member_are_written_once_and_conditionally(table: dict):
    store = DynamoPaidTerms()
    read = store.read("c1")
    first = purchased(read, bought("o1"), NOW)
    store.write(read, first)
    with pytest.raises(ConcurrentUpdate):  # the same purchase written again from the same read
        store.write(read, first)
    stored = store.read("c1")
    assert stored.member is not None and stored.member.version == 1 and stored.member.until_ms == NOW + 30 * DAY_MS
    (term,) = stored.terms
    assert term.version == 1 and term.term == first.terms[0].term and term.paid_fen == 9_900

    item = PaidTermItem.get(*PaidTermItem.key("c1", "o1"))
    assert (item.gsi2pk, item.gsi2sk) == ("PAIDTERM#BOUGHT", f"{iso(NOW)}#o1")
    assert (item.gsi1pk, item.gsi1sk) == ("PAIDTERM#END", f"{iso(NOW + 30 * DAY_MS)}#o1")
    member = PaidMemberItem.get(*PaidMemberItem.key("c1"))
    assert (member.gsi2pk, member.gsi2sk) == ("PAIDMEMBER#END", f"{iso(NOW + 30 * DAY_MS)}#c1")
    checkout = MemberItem.get(*MemberItem.key("c1"))
    assert int(checkout.until) == NOW + 30 * DAY_MS and int(checkout.discount_bp) == 300

    # The expiry job's mark survives a later write of ours (an Update of our attributes only).
    PaidMemberItem(*PaidMemberItem.key("c1")).update(
        actions=[PaidMemberItem.reminded_for_ms.set(123), PaidMemberItem.version.set(2)],
        condition=PaidMemberItem.version == 1,
    )
    read = store.read("c1")
    at = NOW + 2 * DAY_MS
    after = refunded(read, "o1", at)
    store.write(read, after)
    member = PaidMemberItem.get(*PaidMemberItem.key("c1"))
    assert int(member.reminded_for_ms) == 123 and int(member.version) == 3
    assert member.status == MemberStatus.EXPIRED and int(member.until_ms) == at and int(member.expired_for_ms) == at
    assert member.gsi2sk == f"{iso(at)}#c1"
    item = PaidTermItem.get(*PaidTermItem.key("c1", "o1"))
    assert item.status == TermStatus.REFUNDED and item.gsi1sk == f"{iso(at)}#o1" and int(item.version) == 2
    assert int(MemberItem.get(*MemberItem.key("c1")).until) == at
    with pytest.raises(ConcurrentUpdate):  # a write from a stale read is refused whole
        store.write(read, after)
