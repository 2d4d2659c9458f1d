from __future__ import annotations

from pynamodb.attributes import UnicodeAttribute

from shared.data.table import BaseItem


class MemberItem(BaseItem, discriminator="Member"):
    """pk `MEMBER#<customer sub>`, sk `MEMBER`. The customer is a member (member prices apply)
    while this item exists; checkout reads it by key in the same BatchGetItem as the cart."""

    customer_sub = UnicodeAttribute()
    tier = UnicodeAttribute(null=True)

    @staticmethod
    def key(customer_sub: str) -> tuple[str, str]:
        return f"MEMBER#{customer_sub}", "MEMBER"
