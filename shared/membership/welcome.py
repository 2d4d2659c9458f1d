"""The welcome pack of a paid membership (issue 14, item 3; docs/membership.md, "Paid membership:
welcome pack, rebate, refunds"): when a membership order is activated, each of the plan's welcome
coupon templates is issued to the member through the coupons' own claim path
(`shared.coupons.claims.claim`: the template's sharded total and the per-user limit are conditions
of the claim's transaction), under the idempotency key `membership:<order_id>:<template_id>`, so an
activation delivered again gets each first answer back and issues nothing twice. The coupons are in
the member's wallet (`GET /me/coupons`) like any claimed coupon; their ids are returned so the
membership can keep them and a refund can revoke the unused ones (`paid_refunds.revoke_unused`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.coupons import claims
from shared.coupons.ports import CouponPorts
from shared.kernel.errors import DomainError, TemporarilyUnavailable
from shared.kernel.idempotency import IdempotentRequest


def welcome_key(order_id: str, template_id: str) -> str:
    return f"membership:{order_id}:{template_id}"


@dataclass(frozen=True)
class WelcomePack:
    coupon_ids: tuple[str, ...]  # one per template issued, in the plan's order
    refused: tuple[tuple[str, str], ...]  # (template_id, error code) of the templates that issued nothing


def issue_welcome_pack(order_id: str, member_id: str, template_ids: Sequence[str], ports: CouponPorts) -> WelcomePack:
    """Issue each template once for this order. A template that refuses (exhausted, ended, the
    member's limit reached) is reported, not raised: the membership is paid for and stays active;
    the others are still issued. TemporarilyUnavailable is raised (the caller's event is retried,
    and the keys make the retry issue only what is missing)."""
    issued: list[str] = []
    refused: list[tuple[str, str]] = []
    for template_id in template_ids:
        key = welcome_key(order_id, template_id)
        request = IdempotentRequest.of(key, key, {"template_id": template_id, "order_id": order_id})
        try:
            answer = claims.claim(template_id, member_id, request, ports)
        except TemporarilyUnavailable:
            raise
        except DomainError as refusal:
            refused.append((template_id, refusal.code))
            continue
        issued.append(str(answer.body["coupon_id"]))
    return WelcomePack(tuple(issued), tuple(refused))
