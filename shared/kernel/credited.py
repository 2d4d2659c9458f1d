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
