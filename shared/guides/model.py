"""The organisation that sells (dealers, stores, guides, distributors) and who a member is bound to.
Pure domain code; the rules are in docs/commission.md ("Organisation", "Binding and credit").

    dealer 1--* store (or a self-operated store, no dealer) 1--* guide
    distributor (a member who shares links) --parent--> distributor  (two levels are paid)
    member --binding--> guide (and so the guide's store and dealer)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from shared.kernel.credited import SHARE_WINDOW_MS, Credited, CreditFacts
from shared.kernel.errors import Conflict, RuleViolation

DAY_MS = 86_400_000


class AlreadyBound(Conflict):
    """The member is bound to another guide and the merchant's policy keeps the first binding."""

    code = "ALREADY_BOUND"


class SelfBinding(RuleViolation):
    """A guide or distributor would be bound to, or credited for, themselves."""

    code = "SELF_BINDING"


class DistributorCycle(RuleViolation):
    """The upline named would make a distributor its own ancestor."""

    code = "DISTRIBUTOR_CYCLE"


class UnknownParty(RuleViolation):
    """A dealer, store, guide or distributor named in the body does not exist (`details.kind`)."""

    code = "UNKNOWN_PARTY"


@dataclass(frozen=True)
class Dealer:
    dealer_id: str
    name: str
    payout_account: str | None = None

    def view(self) -> dict[str, object]:
        return {"dealer_id": self.dealer_id, "name": self.name, "payout_account": self.payout_account}


@dataclass(frozen=True)
class Store:
    """A store belongs to a dealer, or is self-operated (`dealer_id` None): then the merchant keeps
    the dealer's share."""

    store_id: str
    name: str
    dealer_id: str | None = None
    city: str | None = None
    payout_account: str | None = None

    @property
    def self_operated(self) -> bool:
        return self.dealer_id is None

    def view(self) -> dict[str, object]:
        return {
            "store_id": self.store_id,
            "name": self.name,
            "dealer_id": self.dealer_id,
            "self_operated": self.self_operated,
            "city": self.city,
            "payout_account": self.payout_account,
        }


@dataclass(frozen=True)
class Guide:
    """A store's guide (导购). `member_id`: the guide's own customer account, if any, which may not
    bind to the guide."""

    guide_id: str
    name: str
    store_id: str
    member_id: str | None = None
    payout_account: str | None = None

    def is_self(self, customer_id: str) -> bool:
        return customer_id in (self.guide_id, self.member_id)

    def view(self) -> dict[str, object]:
        return {
            "guide_id": self.guide_id,
            "name": self.name,
            "store_id": self.store_id,
            "member_id": self.member_id,
            "payout_account": self.payout_account,
        }


@dataclass(frozen=True)
class Distributor:
    """A member who shares links (分销员). `parent_id`: the distributor who recruited them, paid
    as level 2 on the orders this one brings. `version` guards the upline against races."""

    member_id: str
    name: str
    parent_id: str | None = None
    payout_account: str | None = None
    version: int = 1

    def view(self) -> dict[str, object]:
        return {
            "member_id": self.member_id,
            "name": self.name,
            "parent_id": self.parent_id,
            "payout_account": self.payout_account,
        }


def check_upline(member_id: str, ancestors: list[Distributor]) -> None:
    """`ancestors`: the proposed parent first, then its parent, and so on up. Refuses a member as
    its own parent, and any chain that comes back to the member (a cycle)."""
    if ancestors and ancestors[0].member_id == member_id:
        raise SelfBinding("a distributor cannot be its own upline", member_id=member_id)
    if any(a.member_id == member_id for a in ancestors):
        raise DistributorCycle(
            "the upline would make this distributor its own ancestor",
            member_id=member_id,
            chain=[a.member_id for a in ancestors],
        )


# -- binding -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BindingPolicy:
    """The merchant's one setting: 0 days, the first binding wins for good; N days, a binding
    lapses N days after it was made (or renewed by the same guide) and the member may bind again."""

    expire_after_days: int = 0

    def expires_at(self, now_ms: int) -> int | None:
        return now_ms + self.expire_after_days * DAY_MS if self.expire_after_days > 0 else None


class ChangeKind(StrEnum):
    BIND = "bind"  # a first binding, or one after the last lapsed
    RENEW = "renew"  # the same guide again, under an expiring policy
    REASSIGN = "reassign"  # a merchant admin moved the member


@dataclass(frozen=True)
class Binding:
    customer_id: str
    guide_id: str
    store_id: str
    dealer_id: str | None
    bound_at_ms: int
    expires_at_ms: int | None
    version: int = 1

    def active(self, now_ms: int) -> bool:
        return self.expires_at_ms is None or now_ms < self.expires_at_ms


@dataclass(frozen=True)
class BindingChange:
    """One line of a member's audit trail: who moved the binding from whom to whom, and why."""

    customer_id: str
    kind: ChangeKind
    to_guide_id: str
    from_guide_id: str | None
    by: str
    at_ms: int
    reason: str | None = None


@dataclass(frozen=True)
class BindDecision:
    binding: Binding
    change: BindingChange | None  # None: nothing to write (already bound to this guide)


def decide_bind(
    current: Binding | None, guide: Guide, store: Store, customer_id: str, now_ms: int, policy: BindingPolicy
) -> BindDecision:
    """A member scans a guide's code. First binding wins while it is active; the same guide again
    changes nothing (or renews an expiring binding); a lapsed binding may be replaced."""
    if guide.is_self(customer_id):
        raise SelfBinding("a guide cannot bind to themselves", guide_id=guide.guide_id)
    active = current is not None and current.active(now_ms)
    if current is not None and active and current.guide_id != guide.guide_id:
        raise AlreadyBound(
            "the member is bound to another guide",
            expires_at_ms=current.expires_at_ms,
        )
    if current is not None and active:
        if policy.expire_after_days <= 0:
            return BindDecision(current, None)
        renewed = replace(current, expires_at_ms=policy.expires_at(now_ms), version=current.version + 1)
        change = BindingChange(customer_id, ChangeKind.RENEW, guide.guide_id, guide.guide_id, customer_id, now_ms)
        return BindDecision(renewed, change)
    binding = Binding(
        customer_id=customer_id,
        guide_id=guide.guide_id,
        store_id=store.store_id,
        dealer_id=store.dealer_id,
        bound_at_ms=now_ms,
        expires_at_ms=policy.expires_at(now_ms),
        version=(current.version + 1) if current else 1,
    )
    change = BindingChange(
        customer_id, ChangeKind.BIND, guide.guide_id, current.guide_id if current else None, customer_id, now_ms
    )
    return BindDecision(binding, change)


def decide_reassign(
    current: Binding | None,
    guide: Guide,
    store: Store,
    customer_id: str,
    by: str,
    reason: str,
    now_ms: int,
    policy: BindingPolicy,
) -> BindDecision:
    """A merchant admin moves a member to another guide (whatever the policy), with a reason."""
    if guide.is_self(customer_id):
        raise SelfBinding("a guide cannot be bound to themselves", guide_id=guide.guide_id)
    binding = Binding(
        customer_id=customer_id,
        guide_id=guide.guide_id,
        store_id=store.store_id,
        dealer_id=store.dealer_id,
        bound_at_ms=now_ms,
        expires_at_ms=policy.expires_at(now_ms),
        version=(current.version + 1) if current else 1,
    )
    change = BindingChange(
        customer_id, ChangeKind.REASSIGN, guide.guide_id, current.guide_id if current else None, by, now_ms, reason
    )
    return BindDecision(binding, change)


# -- share links and credit ---------------------------------------------------------------------
@dataclass(frozen=True)
class Sharer:
    """Who a share id names: a guide (with its store) or a distributor."""

    guide: Guide | None = None
    store: Store | None = None
    distributor: Distributor | None = None

    def contribution(self, customer_id: str) -> Credited:
        """The parties a share by this sharer credits, resolved when the link is opened: a guide
        with its store and dealer; a distributor as level 1 with its upline as level 2. Nothing for
        a guide's own account."""
        if self.guide is not None:
            if self.guide.is_self(customer_id):
                return Credited()
            store = self.store
            return Credited(
                guide_id=self.guide.guide_id,
                store_id=store.store_id if store else None,
                dealer_id=store.dealer_id if store else None,
            )
        if self.distributor is not None:
            return Credited(distributor_1_id=self.distributor.member_id, distributor_2_id=self.distributor.parent_id)
        return Credited()


@dataclass(frozen=True)
class ShareVisit:
    """The last share link a member opened (`?share=<distributor or guide id>`), with what it credits."""

    customer_id: str
    sharer_id: str
    at_ms: int
    shared: Credited = field(default_factory=Credited)

    def fresh(self, now_ms: int) -> bool:
        return 0 <= now_ms - self.at_ms < SHARE_WINDOW_MS


def credit_facts(binding: Binding | None, share: ShareVisit | None) -> CreditFacts:
    return CreditFacts(
        bound=Credited(dealer_id=binding.dealer_id, store_id=binding.store_id, guide_id=binding.guide_id)
        if binding is not None
        else None,
        bound_until_ms=binding.expires_at_ms if binding is not None else None,
        sharer_id=share.sharer_id if share is not None else None,
        shared=share.shared if share is not None else None,
        shared_at_ms=share.at_ms if share is not None else None,
    )


def credit(customer_id: str, binding: Binding | None, share: ShareVisit | None, now_ms: int) -> Credited:
    """Who an order placed now is credited to (the rule: shared.kernel.credited.CreditFacts)."""
    return credit_facts(binding, share).credited(customer_id, now_ms)
