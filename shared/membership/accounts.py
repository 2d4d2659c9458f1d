"""A member's own view: `GET /me/member` and `GET /me/points` (docs/membership.md, "The member").

The storefront asks for `/me/member` when a customer signs in; the first ask enrols the customer
(as the first order's event does, whichever comes first: the put is conditional, so both are one)."""

from __future__ import annotations

from typing import Any

from shared.kernel.clock import Clock, iso
from shared.membership.model import Member, PointsBalance
from shared.membership.paid_terms import PaidMember, PaidTermsStore
from shared.membership.ports import Cursor, MemberStore, RulesStore


class MemberAccounts:
    def __init__(self, store: MemberStore, rules: RulesStore, clock: Clock, paid: PaidTermsStore | None = None) -> None:
        self._store = store
        self._rules = rules
        self._clock = clock
        self._paid = paid

    def me(self, customer_sub: str) -> dict[str, Any]:
        member = self._store.state(customer_sub, None)
        found = member.member or self._store.enrol(Member(customer_sub, self._clock.now_ms()))
        balance = member.balance or PointsBalance(customer_sub)
        rules = self._rules.current()
        level = rules.level(found.level)
        upcoming = rules.next_level(level.level)
        return {
            "customer_id": customer_sub,
            "member_since": iso(found.created_at_ms),
            "level": level.view(),
            "growth_fen": found.growth_fen,
            "next_level": None if upcoming is None else upcoming.view(),
            **self._paid_view(customer_sub),
            "points": balance.view(),
        }

    def _paid_view(self, customer_sub: str) -> dict[str, Any]:
        """The paid membership running now (docs/membership.md, "Paid membership"): null when none
        was bought, it has ended or was refunded."""
        paid: PaidMember | None = self._paid.read(customer_sub).member if self._paid is not None else None
        running = paid.benefit_at(self._clock.now_ms()) if paid is not None else None
        if paid is None or running is None:
            return {"paid_membership": None, "paid_membership_ends_at": None}
        view = {
            "tier": running.tier,
            "rank": running.rank,
            "member_price": running.member_price,
            "discount_bp": running.discount_bp,
        }
        return {"paid_membership": view, "paid_membership_ends_at": iso(paid.until_ms)}

    def points_ledger(self, customer_sub: str, limit: int, cursor: Cursor) -> tuple[list[dict[str, Any]], Cursor]:
        entries, next_cursor = self._store.ledger(customer_sub, limit, cursor)
        return [entry.view() for entry in entries], next_cursor
