"""Merchant admins set the commission rules; every save is a new version (docs/commission.md,
"Rules"). An order is split by the version in force when it was paid, so a change never rewrites
what was earned."""

from __future__ import annotations

from typing import Any

from shared.commission.ledger_model import rules_from_dict, rules_to_dict
from shared.commission.ports import RulesStore
from shared.kernel.clock import Clock, iso
from shared.kernel.errors import ConcurrentUpdate, NotFound

ATTEMPTS = 4


class CommissionRulesAdmin:
    def __init__(self, store: RulesStore, cap_bp: int, clock: Clock) -> None:
        self._store = store
        self._cap_bp = cap_bp
        self._clock = clock

    def put(self, draft: dict[str, Any]) -> dict[str, Any]:
        """Save `draft` ({"rates_bp", "fixed_fen"?, "overrides"?}) as the next version, in force
        from now. Refused (422) when the rates of any line could sum past the cap, in any
        combination of overrides. Two admins saving at once get two versions, one after the other."""
        for _ in range(ATTEMPTS):
            latest = self._store.latest()
            version = latest[0].version + 1 if latest else 1
            rules = rules_from_dict({**draft, "version": version, "cap_bp": self._cap_bp})
            now = self._clock.now_ms()
            try:
                self._store.save(rules, now)
            except ConcurrentUpdate:
                continue
            return {**rules_to_dict(rules), "effective_at": iso(now)}
        raise ConcurrentUpdate("the rules keep changing; retry")

    def current(self) -> dict[str, Any]:
        latest = self._store.latest()
        if latest is None:
            raise NotFound("no commission rules yet")
        rules, effective_at = latest
        return {**rules_to_dict(rules), "effective_at": iso(effective_at)}
