"""Who is credited for an order: the payees of its commission, frozen onto it when it is placed.

Three capabilities share this value (guides decide it, ordering carries it, commission splits by
it), so it lives in the kernel (docs/commission.md, "Binding and credit")."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class PayeeRole(StrEnum):
    DEALER = "dealer"
    STORE = "store"
    GUIDE = "guide"
    DISTRIBUTOR_1 = "distributor_1"
    DISTRIBUTOR_2 = "distributor_2"


# The kind of party each role is paid to: one distributor can be level 1 on one order and level 2
# on another, and is one payee (one ledger, one statement row).
PAYEE_KIND: dict[PayeeRole, str] = {
    PayeeRole.DEALER: "dealer",
    PayeeRole.STORE: "store",
    PayeeRole.GUIDE: "guide",
    PayeeRole.DISTRIBUTOR_1: "distributor",
    PayeeRole.DISTRIBUTOR_2: "distributor",
}

_FIELDS: dict[PayeeRole, str] = {
    PayeeRole.DEALER: "dealer_id",
    PayeeRole.STORE: "store_id",
    PayeeRole.GUIDE: "guide_id",
    PayeeRole.DISTRIBUTOR_1: "distributor_1_id",
    PayeeRole.DISTRIBUTOR_2: "distributor_2_id",
}


@dataclass(frozen=True)
class Credited:
    """Who is credited for an order, frozen onto it when it is placed (docs/commission.md, Binding)."""

    dealer_id: str | None = None
    store_id: str | None = None
    guide_id: str | None = None
    distributor_1_id: str | None = None
    distributor_2_id: str | None = None

    def payees(self) -> dict[PayeeRole, str]:
        ids = {role: getattr(self, name) for role, name in _FIELDS.items()}
        return {role: payee for role, payee in ids.items() if payee}

    @property
    def is_empty(self) -> bool:
        return not self.payees()

    def to_dict(self) -> dict[str, str]:
        """As an order and its events carry it: only the roles someone holds."""
        return {_FIELDS[role]: payee for role, payee in self.payees().items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Credited:
        data = data or {}
        return cls(**{name: str(data[name]) for name in _FIELDS.values() if data.get(name)})


def payee_key(role: PayeeRole, payee_id: str) -> str:
    """One payee across roles: `<kind>:<id>` (a distributor at level 1 or 2 is one payee)."""
    return f"{PAYEE_KIND[role]}:{payee_id}"


SHARE_WINDOW_MS = 86_400_000  # the last share within 24 hours credits the sharer


@dataclass(frozen=True)
class CreditFacts:
    """What an order's credit is decided from: the member's binding (its parties and until when it
    holds) and the last share link the member opened (the sharer's parties, resolved when it was
    opened: a guide with its store and dealer, or a distributor with its upline). Read together
    with the cart, so placing an order costs no extra round trip."""

    bound: Credited | None = None
    bound_until_ms: int | None = None
    sharer_id: str | None = None
    shared: Credited | None = None
    shared_at_ms: int | None = None

    def credited(self, customer_id: str, now_ms: int) -> Credited:
        """The binding decides the store and dealer (and the guide); a share within 24 hours
        credits its sharer: a guide as the order's guide (and, for a member bound to nobody, its
        store and dealer), a distributor as level 1 and its upline as level 2. Nobody is credited
        for their own order."""
        active = self.bound is not None and (self.bound_until_ms is None or now_ms < self.bound_until_ms)
        bound = self.bound if active and self.bound is not None else Credited()
        dealer, store, guide = bound.dealer_id, bound.store_id, bound.guide_id
        level_1 = level_2 = None
        shared = self.shared if self._fresh_share(customer_id, now_ms) else None
        if shared is not None and shared.guide_id:
            guide = shared.guide_id
            if not active:
                store, dealer = shared.store_id, shared.dealer_id
        elif shared is not None and shared.distributor_1_id:
            level_1 = shared.distributor_1_id
            level_2 = shared.distributor_2_id if shared.distributor_2_id != customer_id else None
        return Credited(
            dealer_id=dealer,
            store_id=store,
            guide_id=guide if guide != customer_id else None,
            distributor_1_id=level_1,
            distributor_2_id=level_2,
        )

    def _fresh_share(self, customer_id: str, now_ms: int) -> bool:
        if self.shared is None or self.shared_at_ms is None or self.sharer_id == customer_id:
            return False
        return 0 <= now_ms - self.shared_at_ms < SHARE_WINDOW_MS
