"""Claiming a coupon (领券): ONE transaction per claim, on a template that may be as hot as a flash sale.

The template's remaining quantity is a sharded counter (`shared.data.shard_counter`,
docs/coupons.md "Claims"): a claimant starts at the shard its id names and moves on when a shard
is empty. One transaction holds every part of the claim, so a coupon exists exactly when its unit
left a shard and the claimant's count went up:

- a unit off the shard, if it has one (no coupon beyond the total, whatever the concurrency);
- the claimant's count, if it stays within the per-user limit (a conditional item, not a read);
- the coupon and its offline code (the code's own item: unique by its key).

The coupon carries the claim's idempotency (docs/coupons.md, "Idempotency"): its id is derived
from the caller's scope and the Idempotency-Key (`coupon_id_for`), it is put only if it does not
exist, and it keeps the request's fingerprint, so a replay finds the coupon and is answered it as
claimed, and no idempotency record is written. CouponClaimed is derived from the coupon's INSERT
on the table's stream (`claimed_event`, shared/data/stream.py), not written to the outbox.

EXHAUSTED only when every shard is empty. The template is read once per process and kept for
`template_cache_s` (a claim is then one round trip); an edit or a stop reaches every process
within that time, and never changes how many coupons there are.

A guide-only template is never claimed by customers: its guides issue it to their own members
(`issue_by_guide`), in the same one transaction with two parts more, the guide's count within
the template's quota and a check that the member is still bound to that guide (docs/coupons.md,
"Guides").

A template that names member levels admits only members at one of them: one part more, a check of
the member record's level inside the same transaction (no read before it), against the level
numbers its names have in the merchant's level table, which is kept like the template
(docs/coupons.md, "Member levels"). A template without levels has no such part and reads no table.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from shared.coupons.model import (
    Coupon,
    GuideOnly,
    LevelRule,
    NotGuideTemplate,
    NotYourMember,
    Template,
    coupon_id_for,
)
from shared.coupons.ports import BindingChanged, CodeTaken, CouponPorts, GuideOfMember, ShardEmpty
from shared.kernel.clock import iso
from shared.kernel.errors import CouponExhausted, DomainError, NotFound, TemporarilyUnavailable
from shared.kernel.events import DomainEvent, EventType
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.kernel.shards import shard_order

TEMPLATES_KEPT = 512
CODE_DRAWS = 3
BINDING_READS = 3


@dataclass(frozen=True)
class Issuer:
    """The guide issuing a coupon, and the member's binding to it as read."""

    guide_id: str
    binding: GuideOfMember


@dataclass
class _Kept:
    value: Template | tuple[str, ...]
    until: float  # monotonic seconds


class ClaimMemory:
    """Per process: templates read a moment ago, the merchant's member level names read a moment
    ago for a template that names levels (kept beside it, read again with it), and templates found used up a moment
    ago (whose claims first read the shards, one consistent BatchGetItem, instead of trying every
    shard)."""

    def __init__(self) -> None:
        self._kept: dict[str, _Kept] = {}
        self._exhausted: dict[str, float] = {}
        self._refreshing: set[str] = set()
        self._lock = threading.Lock()

    def template(self, template_id: str, ports: CouponPorts) -> Template:
        found = self._fresh(template_id, lambda: ports.templates.get(template_id), ports)
        if not isinstance(found, Template):
            raise NotFound("no such coupon template", template_id=template_id)
        return found

    def level_names(self, template_id: str, ports: CouponPorts) -> tuple[str, ...]:
        names = self._fresh(_levels_key(template_id), ports.levels.names, ports)
        assert isinstance(names, tuple)
        return names

    def _fresh(
        self, key: str, read: Callable[[], Template | tuple[str, ...] | None], ports: CouponPorts
    ) -> Template | tuple[str, ...] | None:
        """What `read` gave for `key` within `template_cache_s`, else `read` again (not kept: None)."""
        now = ports.clock.monotonic()
        kept = self._kept.get(key)
        if kept is not None and kept.until > now:
            return kept.value
        if kept is not None:
            with self._lock:
                if key in self._refreshing:
                    # Another thread is reading it now: claim under the one read a moment ago rather
                    # than every thread paying a read when the time runs out (one refresh per process).
                    return kept.value
                self._refreshing.add(key)
        try:
            found = read()
        finally:
            with self._lock:
                self._refreshing.discard(key)
        if found is not None:
            with self._lock:
                if len(self._kept) >= TEMPLATES_KEPT:
                    self._kept.clear()
                self._kept[key] = _Kept(found, now + ports.policy.template_cache_s)
        return found

    def forget(self, template_id: str) -> None:
        with self._lock:
            self._kept.pop(template_id, None)
            self._kept.pop(_levels_key(template_id), None)

    def note_exhausted(self, template_id: str, ports: CouponPorts) -> None:
        with self._lock:
            if len(self._exhausted) >= TEMPLATES_KEPT:
                self._exhausted.clear()
            self._exhausted[template_id] = ports.clock.monotonic() + ports.policy.exhausted_hint_s

    def seems_exhausted(self, template_id: str, ports: CouponPorts) -> bool:
        until = self._exhausted.get(template_id)
        return until is not None and until > ports.clock.monotonic()

    def note_stocked(self, template_id: str) -> None:
        with self._lock:
            self._exhausted.pop(template_id, None)


def _levels_key(template_id: str) -> str:
    return f"{template_id}#member-levels"  # a template id never holds '#'


memory = ClaimMemory()


def claim(template_id: str, customer_id: str, request: IdempotentRequest, ports: CouponPorts) -> StoredResponse:
    """201 and the coupon (`coupon_id`, `code`, `qr_payload`, its terms and use window), or:
    NotStarted / Ended (409: the claim window, or issuing stopped), LimitReached (429),
    CouponExhausted (409 EXHAUSTED, every shard empty), TemporarilyUnavailable (503, nothing
    claimed: retry with the same Idempotency-Key). A replayed key gets its first answer back,
    even after the template ran out."""
    try:
        template = memory.template(template_id, ports)
        if template.guide_only:
            raise GuideOnly("this coupon is issued by guides to their members", template_id=template_id)
        template.check_claim(ports.clock.now_ms())
        return _claim_from_shards(template, customer_id, request, ports, levels=_level_rule(template, ports))
    except DomainError as refused:
        return _replayed(request, ports, refused)


def issue_by_guide(
    template_id: str, guide_id: str, member_id: str, request: IdempotentRequest, ports: CouponPorts
) -> StoredResponse:
    """201 and the coupon issued to `member_id` by `guide_id` (recorded on the coupon; the answer
    leaves out the offline code), or: NotGuideTemplate (422, customers claim it themselves),
    NotYourMember (403, the member is not bound to this guide now), NotStarted / Ended (409),
    GuideQuotaReached (409, the guide issued its quota), LimitReached (429, the member holds the
    per-user limit), CouponExhausted (409), TemporarilyUnavailable (503, nothing issued). The
    template's total, the member's limit and the guide's quota hold under any concurrency: each is
    a conditional part of the one transaction. A replayed key gets its first answer back."""
    try:
        template = memory.template(template_id, ports)
        if not template.guide_only:
            raise NotGuideTemplate("customers claim this coupon themselves", template_id=template_id)
        template.check_claim(ports.clock.now_ms())
        levels = _level_rule(template, ports)
        for _ in range(BINDING_READS):
            bound = ports.guides.guide_of(member_id, ports.clock.now_ms())
            if bound is None or bound.guide_id != guide_id:
                raise NotYourMember("the member is not bound to you", member_id=member_id)
            try:
                return _claim_from_shards(template, member_id, request, ports, Issuer(guide_id, bound), levels)
            except BindingChanged:
                continue  # renewed or moved meanwhile: read it again and decide again
        raise TemporarilyUnavailable("the member's binding keeps changing; retry")
    except DomainError as refused:
        return _replayed(request, ports, refused)


def _level_rule(template: Template, ports: CouponPorts) -> LevelRule | None:
    """The levels `template` admits, or None when it names none (then no table is read and the
    transaction has no level part). A rule whose names match no level of the table admits nobody:
    refused here, before any write."""
    if template.member_levels is None:
        return None
    rule = LevelRule.of(template, memory.level_names(template.template_id, ports))
    if not rule.numbers:
        raise rule.refusal()
    return rule


def _replayed(request: IdempotentRequest, ports: CouponPorts, refused: DomainError) -> StoredResponse:
    """The first answer to a replayed key (even after the template ran out), or `refused`."""
    stored = ports.replay(request) if request.client_supplied else None
    if stored is not None:
        return stored
    raise refused


def _claim_from_shards(
    template: Template,
    customer_id: str,
    request: IdempotentRequest,
    ports: CouponPorts,
    issuer: Issuer | None = None,
    levels: LevelRule | None = None,
) -> StoredResponse:
    if memory.seems_exhausted(template.template_id, ports):
        _confirm_exhausted(template, ports)
    busy: TemporarilyUnavailable | None = None
    for shard in shard_order(customer_id, template.shards):
        try:
            return _claim_on(template, shard, customer_id, request, ports, issuer, levels)
        except ShardEmpty:
            continue
        except TemporarilyUnavailable as exc:
            busy = exc  # held by another transaction or throttled: the next shard may not be
    if busy is not None:
        raise busy
    memory.note_exhausted(template.template_id, ports)
    raise CouponExhausted("every coupon of this template has been claimed", template_id=template.template_id)


def _confirm_exhausted(template: Template, ports: CouponPorts) -> None:
    """A template seen used up a moment ago: one consistent read of its shards says whether a
    unit came back (none can today: coupons are never returned to the template, but an admin's
    future top-up would) before EXHAUSTED goes out without a write."""
    if any(left > 0 for left in ports.templates.remaining(template)):
        memory.note_stocked(template.template_id)
        return
    raise CouponExhausted("every coupon of this template has been claimed", template_id=template.template_id)


def _claim_on(
    template: Template,
    shard: int,
    customer_id: str,
    request: IdempotentRequest,
    ports: CouponPorts,
    issuer: Issuer | None,
    levels: LevelRule | None,
) -> StoredResponse:
    for _ in range(CODE_DRAWS):
        now = ports.clock.now_ms()
        issued_by = None if issuer is None else issuer.guide_id
        coupon_id = coupon_id_for(request, ports.id_secret)
        coupon = Coupon.claimed(template, customer_id, coupon_id, shard, now, issued_by=issued_by).carrying(request)
        uow = ports.unit_of_work(retry_conflicts=False)
        uow.take_one(template, shard)
        uow.count_claim(template, customer_id)
        if issuer is not None:
            uow.count_guide_issue(template, issuer.guide_id)
            uow.check_bound(customer_id, issuer.binding)
        if levels is not None:
            uow.check_level(customer_id, levels)  # the level as stored when the claim is written
        uow.add_coupon(coupon)  # CouponClaimed follows from its INSERT on the stream
        try:
            return uow.commit_once(request, coupon.first_answer())
        except CodeTaken:
            continue
    raise TemporarilyUnavailable("could not draw a free coupon code; retry")


# CouponClaimed's id: uuid5 over the coupon's key, so a redelivered INSERT announces the same event.
CLAIMED_NAMESPACE = uuid.UUID("9b2e4f71-6c3d-4a8e-b1f5-2d7c0e9a4b63")


def claimed_event(coupon: Coupon) -> DomainEvent:
    """The CouponClaimed a new coupon announces (derived from its INSERT on the stream): its id and
    time fixed by the coupon, so every delivery of the record names the same event."""
    return DomainEvent(
        EventType.COUPON_CLAIMED,
        coupon.coupon_id,
        {
            "coupon_id": coupon.coupon_id,
            "template_id": coupon.template_id,
            "customer_id": coupon.customer_id,
            "name": coupon.name,
            "kind": str(coupon.terms.benefit.kind),
            # Never the offline code: it redeems the coupon, and events reach other systems.
            "valid_from": iso(coupon.use_window.starts_ms),
            "valid_to": iso(coupon.use_window.ends_ms),
            "issued_by": coupon.issued_by,
        },
        event_id=str(uuid.uuid5(CLAIMED_NAMESPACE, f"COUPON#{coupon.coupon_id}|{EventType.COUPON_CLAIMED}")),
        occurred_at=iso(coupon.claimed_at_ms),
    )
