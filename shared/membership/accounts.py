"""A member's own view: `GET /me/member` and `GET /me/points` (docs/membership.md, "The member").

The storefront asks for `/me/member` when a customer signs in; the first ask enrols the customer
(as the first order's event does, whichever comes first: the put is conditional, so both are one)."""

from __future__ import annotations

from typing import Any

from shared.kernel.clock import Clock, iso
from shared.membership.model import Member, PointsBalance
from shared.membership.ports import Cursor, MemberStore, RulesStore


class MemberAccounts:
    def __init__(self, store: MemberStore, rules: RulesStore, clock: Clock) -> None:
        self._store = store
        self._rules = rules
        self._clock = clock

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
            # Paid membership (issue 14, item 3) is not built yet: never bought, so no end.
            "paid_membership": None,
            "paid_membership_ends_at": None,
            "points": balance.view(),
        }

    def points_ledger(self, customer_sub: str, limit: int, cursor: Cursor) -> tuple[list[dict[str, Any]], Cursor]:
        entries, next_cursor = self._store.ledger(customer_sub, limit, cursor)
        return [entry.view() for entry in entries], next_cursor
