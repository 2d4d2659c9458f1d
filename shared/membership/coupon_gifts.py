"""Coupons membership gives (a segment's, a birthday's) through the coupons' own claim path
(`shared.coupons.claims.claim`): one transaction per coupon with the template's sharded total and
the per-user limit as conditions, idempotent by a key of ours, so a gift never oversells and a
gift asked again gets its first answer back (within the idempotency retention, 24 h)."""

from __future__ import annotations

from shared.coupons import claims
from shared.coupons.model import GuideOnly, MemberLevelRequired
from shared.coupons.ports import CouponPorts
from shared.kernel.errors import (
    CouponExhausted,
    DomainError,
    Ended,
    LimitReached,
    NotFound,
    NotStarted,
    RuleViolation,
    TemporarilyUnavailable,
)
from shared.kernel.idempotency import IdempotentRequest
from shared.membership.segments import Issued, Outcome


class ClaimedGifts:
    """shared.membership.segments.CouponIssue on the coupons' claim path."""

    def __init__(self, ports: CouponPorts) -> None:
        self._ports = ports

    def check(self, template_id: str) -> None:
        template = self._ports.templates.get(template_id)
        if template is None:
            raise NotFound("no such coupon template", template_id=template_id)
        if template.guide_only:
            raise RuleViolation("a guide-only template is issued by guides, not to a segment", template_id=template_id)

    def issue(self, template_id: str, member_id: str, key: str) -> Issued:
        request = IdempotentRequest.of(f"membership-gifts:{template_id}:{member_id}", key, {"template_id": template_id})
        try:
            answer = claims.claim(template_id, member_id, request, self._ports)
        except LimitReached:
            return Issued(Outcome.SKIPPED, "limit_reached")
        except MemberLevelRequired:
            return Issued(Outcome.SKIPPED, "member_level")
        except CouponExhausted:
            return Issued(Outcome.STOP, "exhausted")
        except (NotStarted, Ended, GuideOnly, NotFound) as refused:
            return Issued(Outcome.STOP, refused.code.lower())
        except TemporarilyUnavailable:
            return Issued(Outcome.RETRY, "busy")
        except DomainError as refused:  # any other refusal holds for every member: stop, saying why
            return Issued(Outcome.STOP, refused.code.lower())
        return Issued(Outcome.ISSUED, name=str(answer.body.get("name") or ""))
