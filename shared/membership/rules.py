"""The merchant's level table and points rule (`PUT /admin/membership-rules`; docs/membership.md,
"Levels"). Each save is the next version, conditional on the one read: two admins saving at once
cannot both win."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from shared.membership.model import MembershipRules
from shared.membership.ports import RulesStore


class MembershipRulesAdmin:
    def __init__(self, rules: RulesStore) -> None:
        self._rules = rules

    def show(self) -> dict[str, Any]:
        return self._rules.current().view()

    def save(self, proposed: MembershipRules) -> dict[str, Any]:
        """Store `proposed` as the version after the current one (ConcurrentUpdate, 409, if another
        save came first). Levels apply to members as their growth next moves."""
        saved = replace(proposed, version=self._rules.current().version + 1)
        self._rules.save(saved)
        return saved.view()
