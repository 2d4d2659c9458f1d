"""Members bound to guides, share links, and the credit an order gets (docs/commission.md,
"Binding and credit").

Every change of a binding is one conditional write with its audit line: two scans at once, or a
scan racing an admin's reassignment, never both win; the loser reads again and decides again."""

from __future__ import annotations

from collections.abc import Callable

from shared.guides.model import (
    BindDecision,
    Binding,
    BindingChange,
    BindingPolicy,
    Guide,
    SelfBinding,
    Sharer,
    ShareVisit,
    Store,
    UnknownParty,
    credit,
    decide_bind,
    decide_reassign,
)
from shared.guides.ports import BindingStore, OrgDirectory
from shared.kernel.clock import Clock
from shared.kernel.credited import Credited
from shared.kernel.errors import ConcurrentUpdate, NotFound

ATTEMPTS = 4


class MemberBinding:
    def __init__(self, directory: OrgDirectory, bindings: BindingStore, policy: BindingPolicy, clock: Clock) -> None:
        self._directory = directory
        self._bindings = bindings
        self._policy = policy
        self._clock = clock

    def bind(self, guide_id: str, customer_id: str) -> Binding:
        """The member scanned the guide's code: bound to the guide, its store and dealer, unless
        bound to another guide under the merchant's policy (AlreadyBound, 409). Binding to the same
        guide again is a no-op (or a renewal under an expiring policy)."""
        guide, store = self._guide_and_store(guide_id, NotFound)
        return self._decide(
            customer_id, lambda current, now: decide_bind(current, guide, store, customer_id, now, self._policy)
        )

    def reassign(self, customer_id: str, guide_id: str, by: str, reason: str) -> Binding:
        """A merchant admin moves the member to another guide, whatever the policy; audited."""
        guide, store = self._guide_and_store(guide_id, UnknownParty)
        return self._decide(
            customer_id,
            lambda current, now: decide_reassign(current, guide, store, customer_id, by, reason, now, self._policy),
        )

    def binding_of(self, customer_id: str) -> tuple[Binding | None, list[BindingChange]]:
        return self._bindings.get(customer_id), self._bindings.history(customer_id, 100)

    def record_share(self, customer_id: str, sharer_id: str) -> ShareVisit:
        """The member opened a share link: the newest share replaces older ones."""
        if sharer_id == customer_id:
            raise SelfBinding("a member cannot share to themselves", sharer_id=sharer_id)
        sharer = self._sharer(sharer_id)
        if sharer is None:
            raise UnknownParty("no guide or distributor has this id", kind="sharer", sharer_id=sharer_id)
        visit = ShareVisit(customer_id, sharer_id, self._clock.now_ms(), sharer.contribution(customer_id))
        self._bindings.record_share(visit)
        return visit

    def credited_for(self, customer_id: str) -> Credited:
        """Who an order the member places now is credited to (frozen onto the order)."""
        binding, share = self._bindings.binding_and_share(customer_id)
        return credit(customer_id, binding, share, self._clock.now_ms())

    def _decide(self, customer_id: str, decide: Callable[[Binding | None, int], BindDecision]) -> Binding:
        for _ in range(ATTEMPTS):
            current = self._bindings.get(customer_id)
            decision = decide(current, self._clock.now_ms())
            if decision.change is None:
                return decision.binding
            try:
                self._bindings.save(current, decision.binding, decision.change)
                return decision.binding
            except ConcurrentUpdate:
                continue
        raise ConcurrentUpdate("the binding keeps changing; retry", customer_id=customer_id)

    def _guide_and_store(self, guide_id: str, missing: type[NotFound] | type[UnknownParty]) -> tuple[Guide, Store]:
        guide = self._directory.get_guide(guide_id)
        store = self._directory.get_store(guide.store_id) if guide is not None else None
        if guide is None or store is None:
            raise missing("no such guide", kind="guide", guide_id=guide_id)
        return guide, store

    def _sharer(self, sharer_id: str) -> Sharer | None:
        guide = self._directory.get_guide(sharer_id)
        if guide is not None:
            return Sharer(guide=guide, store=self._directory.get_store(guide.store_id))
        distributor = self._directory.get_distributor(sharer_id)
        return Sharer(distributor=distributor) if distributor is not None else None
