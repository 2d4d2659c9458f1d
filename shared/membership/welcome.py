"""The welcome pack of a paid membership (issue 14, item 3; docs/membership.md, "Paid membership:
welcome pack, rebate, refunds"): when a membership order is activated, each of the plan's welcome
coupon templates is issued to the member through the coupons' own claim path
(`shared.coupons.claims.claim`: the template's sharded total and the per-user limit are conditions
of the claim's transaction), under the idempotency key `membership:<order_id>:<template_id>`, so an
activation delivered again gets each first answer back and issues nothing twice. The coupons are in
the member's wallet (`GET /me/coupons`) like any claimed coupon; their
ids are derived from the keys (`welcome_coupon_ids`), so a refund finds and revokes the unused ones
from the order id and the plan's templates alone (`paid_refunds.revoke_unused`). The claim's coupon
carries its key, so "once" holds past the idempotency records' retention too."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.coupons import claims
from shared.coupons.model import coupon_id_for
from shared.coupons.ports import CouponPorts
from shared.kernel.errors import DomainError, TemporarilyUnavailable
from shared.kernel.idempotency import IdempotentRequest


def welcome_key(order_id: str, template_id: str) -> str:
    return f"membership:{order_id}:{template_id}"


def _request(order_id: str, template_id: str) -> IdempotentRequest:
    key = welcome_key(order_id, template_id)
    return IdempotentRequest.of(key, key, {"template_id": template_id, "order_id": order_id})


def welcome_coupon_ids(order_id: str, template_ids: Sequence[str], ports: CouponPorts) -> list[str]:
    """The ids the pack's coupons have (or would have): a claim's coupon id is derived from its
    scope and key (`coupon_id_for`), so a refund finds the pack from the order and the plan alone,
    with no list kept anywhere, and a coupon never issued is simply not found."""
    return [coupon_id_for(_request(order_id, t), ports.id_secret) for t in template_ids]


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
        try:
            answer = claims.claim(template_id, member_id, _request(order_id, template_id), ports)
        except TemporarilyUnavailable:
            raise
        except DomainError as refusal:
            refused.append((template_id, refusal.code))
            continue
        issued.append(str(answer.body["coupon_id"]))
    return WelcomePack(tuple(issued), tuple(refused))


def templates_of(payload: Mapping[str, Any]) -> tuple[str, ...]:
    """The welcome templates a membership order's event carries (its `membership` terms, copied
    from the plan when it was bought: a plan edited later does not change a pack); () otherwise."""
    terms = payload.get("membership") or {}
    return tuple(str(t) for t in terms.get("welcome_coupon_template_ids") or ())


def welcome_on_paid(payload: Mapping[str, Any], ports: CouponPorts) -> WelcomePack:
    """The welcome pack of the membership order an OrderPaid payload announces (none for an
    ordinary order): what the activation calls, redelivery included."""
    templates = templates_of(payload)
    if not templates:
        return WelcomePack((), ())
    return issue_welcome_pack(str(payload["order_id"]), str(payload["customer_id"]), templates, ports)
