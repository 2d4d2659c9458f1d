"""Who is acting: the five roles of API.md and the dealer (docs/commission.md, "Organisation"), and
the principal a request carries. The web edge builds a
`Principal` from a token (shared/web/auth.py); use cases receive it and never see the token."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shared.kernel.errors import Forbidden


class Role(StrEnum):
    CUSTOMER = "customer"
    GUIDE = "guide"
    STORE_STAFF = "store_staff"
    MERCHANT_ADMIN = "merchant_admin"
    FINANCE = "finance"
    DEALER = "dealer"  # a dealer's own people: its commission ledger; beyond API.md's five


STORE_ROLES = frozenset({Role.GUIDE, Role.STORE_STAFF})
# The roles of API.md: "any role" there means these; the dealer is admitted by name where it is.
API_ROLES = (Role.CUSTOMER, Role.GUIDE, Role.STORE_STAFF, Role.MERCHANT_ADMIN, Role.FINANCE)


@dataclass(frozen=True)
class Principal:
    sub: str
    role: Role
    store_id: str | None = None
    dealer_id: str | None = None  # the dealer role's dealer

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            raise Forbidden(
                "this action needs another role",
                required=sorted(r.value for r in roles),
                role=self.role.value,
            )
