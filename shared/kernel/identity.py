"""Who is acting: the five roles of API.md and the principal a request carries. The web edge builds a
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


STORE_ROLES = frozenset({Role.GUIDE, Role.STORE_STAFF})


@dataclass(frozen=True)
class Principal:
    sub: str
    role: Role
    store_id: str | None = None

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            raise Forbidden(
                "this action needs another role",
                required=sorted(r.value for r in roles),
                role=self.role.value,
            )
