"""Coupons in DynamoDB: the ports of `shared.coupons.ports` (keys on the item classes in
items/coupons.py; every access pattern in docs/data-model.md, "Coupons").

`DynamoCouponUnitOfWork` is ONE TransactWriteItems: each method adds a labelled conditional part
and a refused part comes back as the error the port names. A template's remaining quantity is a
`ShardedCounter` (shared/data/shard_counter.py), the same module as any other hot counter's.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action as UpdateAction

from shared.coupons.checkout import CouponAtCheckout
from shared.coupons.model import (
    Action,
    CartItem,
    Coupon,
    GuideQuotaReached,
    LevelRule,
    Redemption,
    Status,
    Tally,
    Template,
    Terms,
    Validity,
    Window,
    coupon_id_for,
    tally_moves,
)
from shared.coupons.ports import (
    AlreadyReminded,
    BindingChanged,
    CodeTaken,
    Cursor,
    GuideOfMember,
    ReminderPage,
    ShardEmpty,
    TooManyWrongCodes,
)
from shared.coupons.wrong_codes import WrongCodeCounter
from shared.data import outbox
from shared.data.batch_get import get_items
from shared.data.checkpoints import advance_checkpoint
from shared.data.item_mapping import product_of
from shared.data.items.catalog import ProductItem
from shared.data.items.coupons import (
    DUE_SHARDS,
    TEMPLATES_PARTITION,
    CouponClaimantItem,
    CouponCodeItem,
    CouponGuideIssuesItem,
    CouponItem,
    CouponRedemptionItem,
    CouponReminderCheckpointItem,
    CouponReminderItem,
    CouponShardItem,
    CouponTallyItem,
    CouponTemplateItem,
    CouponWrongCodesItem,
)
from shared.data.items.guides import BindingItem
from shared.data.items.membership import MemberProfileItem
from shared.data.shard_counter import ShardedCounter
from shared.data.stores import idempotency as idempotency_store
from shared.data.stores.guides import DynamoBindings
from shared.data.stores.locations import DynamoLocations
from shared.data.stores.membership import DynamoMembershipRules
from shared.data.stores.ordering_uow import DynamoOrderingUnitOfWork
from shared.data.stores.orders import carried_answer, short_fingerprint
from shared.data.transactions import Transaction, TransactionCancelled, translated
from shared.kernel.errors import AlreadyReversed, ConcurrentUpdate, CouponInUse, LimitReached
from shared.kernel.events import DomainEvent, EventType
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.ordering.model import Order, OrderCoupon
from shared.ordering.ports import OrderingUnitOfWork

TEMPLATE_LABEL = "coupon-template"
CLAIMANT_LABEL = "coupon-claimant"
GUIDE_ISSUES_LABEL = "coupon-guide-issues"
BINDING_LABEL = "coupon-member-binding"
LEVEL_LABEL = "coupon-member-level"
SHARD_LABEL = "coupon-shard"
WRONG_CODES_LABEL = "coupon-wrong-codes"
TALLY_FIELDS = {
    Status.LOCKED: "locked",
    Status.USED: "used",
    Status.REDEEMED_OFFLINE: "redeemed_offline",
    Status.EXPIRED: "expired",
}


def counter(template: Template) -> ShardedCounter:
    return ShardedCounter(CouponShardItem, template.template_id, template.shards, SHARD_LABEL)


# -- mapping -----------------------------------------------------------------------------------
def _template_of(item: CouponTemplateItem) -> Template:
    return Template(
        template_id=item.template_id,
        name=item.name,
        description=item.description or "",
        terms=Terms.of(item.terms),
        total=int(item.total),
        per_user_limit=int(item.per_user_limit),
        claim_window=Window(int(item.claim_from), int(item.claim_to)),
        validity=Validity(
            int(item.valid_from), int(item.valid_to), None if item.valid_days is None else int(item.valid_days)
        ),
        shards=int(item.shards),
        member_levels=None if item.member_levels is None else frozenset(item.member_levels),
        guide_quota=None if item.guide_quota is None else int(item.guide_quota),
        issuing=bool(item.issuing),
        version=int(item.version),
        created_at_ms=int(item.created_at or 0),
    )


def _template_item(template: Template) -> CouponTemplateItem:
    pk, sk = CouponTemplateItem.key(template.template_id)
    return CouponTemplateItem(
        pk,
        sk,
        template_id=template.template_id,
        name=template.name,
        description=template.description or None,
        terms=template.terms.to_dict(),
        total=template.total,
        per_user_limit=template.per_user_limit,
        claim_from=template.claim_window.starts_ms,
        claim_to=template.claim_window.ends_ms,
        valid_from=template.validity.valid_from_ms,
        valid_to=template.validity.valid_to_ms,
        valid_days=template.validity.days,
        member_levels=None if template.member_levels is None else sorted(template.member_levels),
        guide_quota=template.guide_quota,
        issuing=template.issuing,
        shards=template.shards,
        version=template.version,
        created_at=template.created_at_ms,
        gsi1pk=TEMPLATES_PARTITION,
        gsi1sk=f"{template.created_at_ms:013d}#{template.template_id}",
    )


def _coupon_of(item: CouponItem) -> Coupon:
    return Coupon(
        coupon_id=item.coupon_id,
        template_id=item.template_id,
        customer_id=item.customer_id,
        code=item.code,
        name=item.name,
        terms=Terms.of(item.terms),
        use_window=Window(int(item.use_from), int(item.use_to)),
        claimed_at_ms=int(item.claimed_at),
        shard=int(item.shard),
        status=Status(item.status),
        version=int(item.version),
        order_id=item.order_id,
        redemption_id=item.redemption_id,
        updated_at_ms=int(item.updated_at),
        issued_by=item.issued_by,
        request_hash=item.request_hash,
    )


def coupon_of_image(image: dict[str, Any]) -> Coupon:
    """The coupon in a stream record's image (DynamoDB JSON), as the store reads it."""
    return _coupon_of(CouponItem.from_raw_data(image))


def _coupon_item(coupon: Coupon) -> CouponItem:
    pk, sk = CouponItem.key(coupon.coupon_id)
    due = coupon.status is Status.AVAILABLE  # the sweeper's queue holds exactly the AVAILABLE coupons
    return CouponItem(
        pk,
        sk,
        coupon_id=coupon.coupon_id,
        template_id=coupon.template_id,
        customer_id=coupon.customer_id,
        code=coupon.code,
        name=coupon.name,
        terms=coupon.terms.to_dict(),
        use_from=coupon.use_window.starts_ms,
        use_to=coupon.use_window.ends_ms,
        claimed_at=coupon.claimed_at_ms,
        shard=coupon.shard,
        status=str(coupon.status),
        version=coupon.version,
        order_id=coupon.order_id,
        redemption_id=coupon.redemption_id,
        updated_at=coupon.updated_at_ms,
        issued_by=coupon.issued_by,
        request_hash=short_fingerprint(coupon.request_hash),
        created_at=coupon.claimed_at_ms,
        gsi1pk=f"CUSTCOUPONS#{coupon.customer_id}",
        gsi1sk=f"{coupon.claimed_at_ms:013d}#{coupon.coupon_id}",
        gsi2pk=f"CPNDUE#{zlib.crc32(coupon.coupon_id.encode()) % DUE_SHARDS}" if due else None,
        gsi2sk=f"{coupon.use_window.ends_ms:013d}#{coupon.coupon_id}" if due else None,
    )


def _redemption_of(item: CouponRedemptionItem) -> Redemption:
    return Redemption(
        redemption_id=item.redemption_id,
        coupon_id=item.coupon_id,
        template_id=item.template_id,
        customer_id=item.customer_id,
        store_id=item.store_id,
        redeemed_by=item.redeemed_by,
        redeemed_by_role=item.redeemed_by_role,
        redeemed_at_ms=int(item.redeemed_at),
        purchase_fen=None if item.purchase_fen is None else int(item.purchase_fen),
        reversed_at_ms=None if item.reversed_at is None else int(item.reversed_at),
        reversed_by=item.reversed_by,
        reversal_reason=item.reversal_reason,
    )


def _redemption_item(redemption: Redemption) -> CouponRedemptionItem:
    pk, sk = CouponRedemptionItem.key(redemption.redemption_id)
    return CouponRedemptionItem(
        pk,
        sk,
        redemption_id=redemption.redemption_id,
        coupon_id=redemption.coupon_id,
        template_id=redemption.template_id,
        customer_id=redemption.customer_id,
        store_id=redemption.store_id,
        redeemed_by=redemption.redeemed_by,
        redeemed_by_role=redemption.redeemed_by_role,
        redeemed_at=redemption.redeemed_at_ms,
        purchase_fen=redemption.purchase_fen,
        reversed_at=redemption.reversed_at_ms,
        reversed_by=redemption.reversed_by,
        reversal_reason=redemption.reversal_reason,
        created_at=redemption.redeemed_at_ms,
        gsi1pk=f"STOREREDEMPTIONS#{redemption.store_id}",
        gsi1sk=f"{redemption.redeemed_at_ms:013d}#{redemption.redemption_id}",
    )


def _coupon_label(coupon_id: str) -> str:
    return f"coupon:{coupon_id}"


def _code_label(code: str) -> str:
    return f"coupon-code:{code}"


def _redemption_label(redemption_id: str) -> str:
    return f"coupon-redemption:{redemption_id}"


def _reminder_label(coupon_id: str) -> str:
    return f"coupon-reminder:{coupon_id}"


# -- reads -------------------------------------------------------------------------------------
class DynamoCouponTemplates:
    def get(self, template_id: str) -> Template | None:
        with translated():
            try:
                item = CouponTemplateItem.get(*CouponTemplateItem.key(template_id), consistent_read=True)
            except CouponTemplateItem.DoesNotExist:
                return None
        return _template_of(item)

    def page(self, limit: int, cursor: Cursor | None) -> tuple[list[Template], Cursor | None]:
        with translated():
            result = CouponTemplateItem.gsi1.query(
                TEMPLATES_PARTITION, scan_index_forward=False, limit=limit, last_evaluated_key=cursor
            )
            found = [_template_of(item) for item in result if isinstance(item, CouponTemplateItem)]
            return found, result.last_evaluated_key

    def tally(self, template: Template) -> Tally:
        levels = counter(template).levels()
        keys = [CouponTallyItem.key(template.template_id, shard) for shard in range(template.shards)]
        with translated():
            tallies = [
                i for i in CouponTallyItem.batch_get(keys, consistent_read=True) if isinstance(i, CouponTallyItem)
            ]
        by_status = {status: sum(int(getattr(t, name) or 0) for t in tallies) for status, name in TALLY_FIELDS.items()}
        return Tally(
            total=template.total,
            remaining=sum(level.remaining for level in levels),
            claimed=sum(level.initial - level.remaining for level in levels),  # coupons never go back to a template
            by_status=by_status,
        )

    def remaining(self, template: Template) -> list[int]:
        return [level.remaining for level in counter(template).levels()]


class DynamoCoupons:
    def get(self, coupon_id: str) -> Coupon | None:
        with translated():
            try:
                item = CouponItem.get(*CouponItem.key(coupon_id), consistent_read=True)
            except CouponItem.DoesNotExist:
                return None
        return _coupon_of(item)

    def by_code(self, code: str) -> Coupon | None:
        with translated():
            try:
                found = CouponCodeItem.get(*CouponCodeItem.key(code), consistent_read=True)
            except CouponCodeItem.DoesNotExist:
                return None
        return self.get(found.coupon_id)

    def of_customer(
        self, customer_id: str, status: Status | None, now_ms: int, limit: int, cursor: Cursor | None
    ) -> tuple[list[Coupon], Cursor | None]:
        with translated():
            result = CouponItem.gsi1.query(
                f"CUSTCOUPONS#{customer_id}",
                filter_condition=_shown_as(status, now_ms),
                scan_index_forward=False,
                limit=limit,
                last_evaluated_key=cursor,
            )
            found = [_coupon_of(item) for item in result if isinstance(item, CouponItem)]
            return found, result.last_evaluated_key

    def due(self, now_ms: int, limit: int) -> Iterator[Coupon]:
        bound = f"{now_ms:013d}#~"
        found = 0
        with translated():
            for shard in range(DUE_SHARDS):
                for item in CouponItem.gsi2.query(f"CPNDUE#{shard}", CouponItem.gsi2sk <= bound, limit=limit):
                    if found >= limit:
                        return
                    if isinstance(item, CouponItem):
                        found += 1
                        yield _coupon_of(item)

    def redemption(self, redemption_id: str) -> Redemption | None:
        with translated():
            try:
                item = CouponRedemptionItem.get(*CouponRedemptionItem.key(redemption_id), consistent_read=True)
            except CouponRedemptionItem.DoesNotExist:
                return None
        return _redemption_of(item)

    def redemptions_at(
        self, store_id: str, limit: int, cursor: Cursor | None
    ) -> tuple[list[Redemption], Cursor | None]:
        with translated():
            result = CouponRedemptionItem.gsi1.query(
                f"STOREREDEMPTIONS#{store_id}", scan_index_forward=False, limit=limit, last_evaluated_key=cursor
            )
            found = [_redemption_of(item) for item in result if isinstance(item, CouponRedemptionItem)]
            return found, result.last_evaluated_key


def _shown_as(status: Status | None, now_ms: int) -> Condition | None:
    """The status a customer sees (`Coupon.shown_status`) as a filter on the stored status."""
    if status is None:
        return None
    if status is Status.AVAILABLE:
        return (CouponItem.status == str(Status.AVAILABLE)) & (CouponItem.use_to > now_ms)
    if status is Status.EXPIRED:
        lapsed = (CouponItem.status == str(Status.AVAILABLE)) & (CouponItem.use_to <= now_ms)
        return (CouponItem.status == str(Status.EXPIRED)) | lapsed
    return CouponItem.status == str(status)


class DynamoWrongCodes:
    """Wrong verification codes per customer and per store and window (`CouponWrongCodesItem`)."""

    def read(self, code: str, counters: Sequence[WrongCodeCounter]) -> tuple[str | None, tuple[int, ...]]:
        code_key = CouponCodeItem.key(code)
        found = get_items([code_key, *(_wrong_codes_key(c) for c in counters)], consistent=True)
        code_item = found.get(code_key)
        coupon_id = code_item.coupon_id if isinstance(code_item, CouponCodeItem) else None
        return coupon_id, tuple(_wrong_so_far(found.get(_wrong_codes_key(c))) for c in counters)

    def count(self, counters: Sequence[WrongCodeCounter]) -> tuple[int, ...]:
        after: list[int] = []
        for c in counters:
            item = CouponWrongCodesItem(*_wrong_codes_key(c))
            with translated():
                item.update(  # ADD: atomic on the item, so concurrent wrong codes each count
                    actions=[
                        CouponWrongCodesItem.wrong.add(1),
                        CouponWrongCodesItem.entity.set(CouponWrongCodesItem),
                        CouponWrongCodesItem.ttl.set(datetime.fromtimestamp(c.expires_at_s, tz=UTC)),
                    ]
                )
            after.append(int(item.wrong))
        return tuple(after)


def _wrong_codes_key(counter: WrongCodeCounter) -> tuple[str, str]:
    return CouponWrongCodesItem.key(counter.scope, counter.owner_id, counter.window)


def _wrong_so_far(item: object) -> int:
    return int(item.wrong) if isinstance(item, CouponWrongCodesItem) else 0


class DynamoStoreDirectory:
    def is_store(self, location_id: str) -> bool:
        found = DynamoLocations().get(location_id)
        return found is not None and found.is_store


class DynamoExpiryReminders:
    """The expiry queue is the sweeper's: gsi2 `CPNDUE#<0..39>` / `<window end ms>#<id>`, which holds
    exactly the AVAILABLE coupons. A position is a gsi2sk; `<ms>#~` is past every coupon ending at ms."""

    partitions = DUE_SHARDS

    def checkpoints(self) -> dict[int, str]:
        keys = [CouponReminderCheckpointItem.key(n) for n in range(DUE_SHARDS)]
        found = get_items(keys, consistent=True)
        return {
            int(item.pk.removeprefix("CPNREMIND#")): item.through
            for item in found.values()
            if isinstance(item, CouponReminderCheckpointItem)
        }

    def page(self, partition: int, after: str | None, from_ms: int, until_ms: int, limit: int) -> ReminderPage:
        low, high = max(after or "", f"{from_ms:013d}#~"), f"{until_ms:013d}#~"
        if low >= high:
            return ReminderPage([], low, False)
        with translated():
            # BETWEEN is inclusive: the coupon at `after` itself was handled by the page before.
            result = CouponItem.gsi2.query(f"CPNDUE#{partition}", CouponItem.gsi2sk.between(low, high), limit=limit)
            items = [item for item in result if isinstance(item, CouponItem)]
            more = result.last_evaluated_key is not None
        coupons = [_coupon_of(item) for item in items if item.gsi2sk != after]
        if not more:
            return ReminderPage(coupons, high, False)
        return ReminderPage(coupons, items[-1].gsi2sk if items else low, True)

    def advance(self, partition: int, through: str) -> None:
        advance_checkpoint(CouponReminderCheckpointItem, CouponReminderCheckpointItem.key(partition), through)


class DynamoGuideMembers:
    """The guides' side of a member, as the coupons see it: who the member is bound to now."""

    def guide_of(self, member_id: str, now_ms: int) -> GuideOfMember | None:
        binding = DynamoBindings().get(member_id)
        if binding is None or not binding.active(now_ms):
            return None
        return GuideOfMember(binding.guide_id, binding.version)


class DynamoMemberLevels:
    """The membership side of a template's levels, as the coupons see it: the level names of the
    merchant's rules (one consistent GetItem of `MEMBERSHIP_RULES`, the defaults before any save)."""

    def names(self) -> tuple[str, ...]:
        return tuple(level.name for level in DynamoMembershipRules().current().levels)


def level_admitted(rule: LevelRule) -> Condition:
    """The member record's stored level is one `rule` admits, as a condition on `MEMBER#<sub>` /
    `PROFILE`: no record is level 0; a level the merchant removed since reads as the top one."""
    admitted: Condition = MemberProfileItem.level.is_in(*sorted(rule.numbers))
    if rule.admits_no_record:
        admitted = admitted | MemberProfileItem.pk.does_not_exist()
    if rule.admits_removed_levels:
        admitted = admitted | (MemberProfileItem.level >= rule.levels_defined)
    return admitted


class DynamoCartPrices:
    def items(self, lines: Sequence[tuple[str, int]]) -> list[CartItem]:
        found = get_items([ProductItem.key(sku) for sku, _ in lines])
        products = {p.sku: p for p in (product_of(i) for i in found.values() if isinstance(i, ProductItem))}
        return [
            CartItem(sku, products[sku].category, products[sku].price_fen * qty)
            for sku, qty in lines
            if sku in products
        ]


# -- the unit of work --------------------------------------------------------------------------
class DynamoCouponUnitOfWork:
    def __init__(self, *, retry_conflicts: bool = True, tx: Transaction | None = None) -> None:
        self.tx = tx if tx is not None else Transaction(retry_conflicts=retry_conflicts)
        self._shards: list[tuple[ShardedCounter, int]] = []
        self._claimant: Template | None = None
        self._issuer: tuple[Template, str] | None = None
        self._bound = False
        self._levels: LevelRule | None = None
        self._codes: list[str] = []
        self._carried: dict[str, str] = {}  # the fingerprint a new coupon carries -> its label
        self._coupons: list[str] = []
        self._redemptions: list[str] = []
        self._reminded: list[str] = []
        self._wrong_codes = False
        self._committed = False

    def add_template(self, template: Template) -> None:
        self.tx.put(_template_item(template), TEMPLATE_LABEL, condition=CouponTemplateItem.pk.does_not_exist())
        counter(template).create(self.tx, template.total, template.created_at_ms, template_id=template.template_id)

    def replace_template(self, before: Template, after: Template) -> None:
        self.tx.put(_template_item(after), TEMPLATE_LABEL, condition=CouponTemplateItem.version == before.version)

    def take_one(self, template: Template, shard: int) -> None:
        shards = counter(template)
        shards.take_in(self.tx, shard, 1)
        self._shards.append((shards, shard))

    def count_claim(self, template: Template, customer_id: str) -> None:
        key = CouponClaimantItem.key(template.template_id, customer_id)
        if template.per_user_limit == 1:
            # The whole limit in one claim: only a customer with no claim yet may, so it is a Put of
            # `claimed = 1` on a new item (the cheaper write for the emulator; the same for DynamoDB).
            item = CouponClaimantItem(*key, claimed=1)
            self.tx.put(item, CLAIMANT_LABEL, condition=CouponClaimantItem.pk.does_not_exist())
        else:
            self.tx.update(
                CouponClaimantItem,
                key,
                [CouponClaimantItem.claimed.add(1), CouponClaimantItem.entity.set(CouponClaimantItem)],
                CLAIMANT_LABEL,
                condition=CouponClaimantItem.claimed.does_not_exist()
                | (CouponClaimantItem.claimed <= template.per_user_limit - 1),
            )
        self._claimant = template

    def count_guide_issue(self, template: Template, guide_id: str) -> None:
        if template.guide_quota is None:
            raise ValueError("only a guide-only template has a guide quota")
        self.tx.update(
            CouponGuideIssuesItem,
            CouponGuideIssuesItem.key(template.template_id, guide_id),
            [CouponGuideIssuesItem.issued.add(1), CouponGuideIssuesItem.entity.set(CouponGuideIssuesItem)],
            GUIDE_ISSUES_LABEL,
            condition=CouponGuideIssuesItem.issued.does_not_exist()
            | (CouponGuideIssuesItem.issued <= template.guide_quota - 1),
        )
        self._issuer = (template, guide_id)

    def check_bound(self, member_id: str, binding: GuideOfMember) -> None:
        condition = (BindingItem.guide_id == binding.guide_id) & (BindingItem.version == binding.version)
        self.tx.check(BindingItem, BindingItem.key(member_id), condition, BINDING_LABEL)
        self._bound = True

    def check_level(self, customer_id: str, rule: LevelRule) -> None:
        if not rule.numbers:
            raise ValueError("a rule that admits no level is refused before any transaction")
        key = MemberProfileItem.key(customer_id)
        self.tx.check(MemberProfileItem, key, level_admitted(rule), LEVEL_LABEL)
        self._levels = rule

    def add_coupon(self, coupon: Coupon) -> None:
        label = _coupon_label(coupon.coupon_id)
        self.tx.put(_coupon_item(coupon), label, condition=CouponItem.pk.does_not_exist())
        code = CouponCodeItem(
            *CouponCodeItem.key(coupon.code), coupon_id=coupon.coupon_id, created_at=coupon.claimed_at_ms
        )
        self.tx.put(code, _code_label(coupon.code), condition=CouponCodeItem.pk.does_not_exist())
        self._codes.append(coupon.code)
        if coupon.request_hash is not None:
            self._carried[coupon.request_hash] = label

    def move(self, before: Coupon, after: Coupon) -> None:
        condition = (CouponItem.status == str(before.status)) & (CouponItem.version == before.version)
        self.tx.put(_coupon_item(after), _coupon_label(before.coupon_id), condition=condition)
        self._coupons.append(before.coupon_id)
        moves = tally_moves(before.status, after.status)
        if moves:
            actions: list[UpdateAction] = [CouponTallyItem.entity.set(CouponTallyItem)]
            actions += [getattr(CouponTallyItem, TALLY_FIELDS[status]).add(n) for status, n in moves.items()]
            self.tx.update(
                CouponTallyItem,
                CouponTallyItem.key(before.template_id, before.shard),
                actions,
                f"coupon-tally:{before.coupon_id}",
            )

    def mark_reminded(self, coupon: Coupon, now_ms: int) -> None:
        item = CouponReminderItem(*CouponReminderItem.key(coupon.coupon_id), created_at=now_ms)
        label = _reminder_label(coupon.coupon_id)
        self.tx.put(item, label, condition=CouponReminderItem.pk.does_not_exist())
        self._reminded.append(coupon.coupon_id)

    def add_redemption(self, redemption: Redemption) -> None:
        label = _redemption_label(redemption.redemption_id)
        self.tx.put(_redemption_item(redemption), label, condition=CouponRedemptionItem.pk.does_not_exist())

    def reverse_redemption(self, before: Redemption, after: Redemption) -> None:
        label = _redemption_label(before.redemption_id)
        self.tx.put(_redemption_item(after), label, condition=CouponRedemptionItem.reversed_at.does_not_exist())
        self._redemptions.append(before.redemption_id)

    def check_wrong_codes(self, counters: Sequence[WrongCodeCounter]) -> None:
        for c in counters:
            under = CouponWrongCodesItem.pk.does_not_exist() | (CouponWrongCodesItem.wrong < c.limit)
            self.tx.check(CouponWrongCodesItem, _wrong_codes_key(c), under, f"{WRONG_CODES_LABEL}:{c.scope}")
        self._wrong_codes = True

    def emit(self, event: DomainEvent) -> None:
        outbox.emit(self.tx, event)

    def commit(self) -> None:
        self._start()
        try:
            self.tx.commit()
        except TransactionCancelled as cancelled:
            self.raise_domain_error(cancelled)
            raise

    def commit_once(self, request: IdempotentRequest, response: StoredResponse) -> StoredResponse:
        self._start()
        carrier = self._carried.get(request.fingerprint)
        if carrier is None:
            idempotency_store.join(self.tx, request, response)
        try:
            self.tx.commit()
        except TransactionCancelled as cancelled:
            if carrier is not None:
                raw = cancelled.items.get(carrier) if carrier in cancelled.failed else None
                first = first_answer(_coupon_of(CouponItem.from_raw_data(raw)), request) if raw else None
                if first is not None:
                    return first
            elif idempotency_store.was_replayed(cancelled):
                stored = idempotency_store.replay(request, cancelled)
                if stored is not None:
                    return stored
            self.raise_domain_error(cancelled)
            raise
        return response

    @property
    def coupon_ids(self) -> list[str]:
        return list(self._coupons)

    def _start(self) -> None:
        if self._committed:
            raise RuntimeError("a unit of work is committed once")
        self._committed = True

    def raise_domain_error(self, cancelled: TransactionCancelled) -> None:
        """The error of the first refused part that has one (ports.py gives the precedence);
        returns when none has (a condition no use case expects to fail)."""
        self._raise_issue_refusal(cancelled)
        self._raise_change_refusal(cancelled)

    def _raise_issue_refusal(self, cancelled: TransactionCancelled) -> None:
        """A claim's or a guide's issue: the member's level, the guide's quota, the per-user limit,
        the shard, the code, the member's binding."""
        failed = cancelled.failed
        if self._levels is not None and LEVEL_LABEL in failed:
            raise self._levels.refusal() from cancelled
        if self._issuer is not None and GUIDE_ISSUES_LABEL in failed:
            template, guide_id = self._issuer
            raise GuideQuotaReached(
                "you have issued your quota of this coupon",
                template_id=template.template_id,
                guide_id=guide_id,
                guide_quota=template.guide_quota,
            ) from cancelled
        if self._claimant is not None and CLAIMANT_LABEL in failed:
            template = self._claimant
            raise LimitReached(
                "you have claimed this coupon as often as allowed",
                template_id=template.template_id,
                per_user_limit=template.per_user_limit,
            ) from cancelled
        for shards, shard in self._shards:
            if shards.short_on(cancelled, shard) is not None:
                raise ShardEmpty(shard) from cancelled
        if any(_code_label(code) in failed for code in self._codes):
            raise CodeTaken() from cancelled
        if self._bound and BINDING_LABEL in failed:
            raise BindingChanged() from cancelled

    def _raise_change_refusal(self, cancelled: TransactionCancelled) -> None:
        """A change of what exists: the reminder, the coupon, the template, the redemption."""
        failed = cancelled.failed
        if any(_reminder_label(coupon_id) in failed for coupon_id in self._reminded):
            raise AlreadyReminded() from cancelled
        if self._wrong_codes and any(label.startswith(WRONG_CODES_LABEL) for label in failed):
            raise TooManyWrongCodes() from cancelled
        for coupon_id in self._coupons:
            if _coupon_label(coupon_id) in failed:
                raise ConcurrentUpdate("the coupon changed since it was read", coupon_id=coupon_id) from cancelled
        if TEMPLATE_LABEL in failed:
            raise ConcurrentUpdate("the template changed since it was read") from cancelled
        for redemption_id in self._redemptions:
            if _redemption_label(redemption_id) in failed:
                raise AlreadyReversed("this redemption was reversed", redemption_id=redemption_id) from cancelled


def first_answer(coupon: Coupon | None, request: IdempotentRequest) -> StoredResponse | None:
    """The answer the claim that made `coupon` was given, if `request` is a replay of it;
    IdempotencyKeyReused if the key came then with another body; None if the coupon carries no
    request."""
    return carried_answer(coupon, request)


class CouponReplays:
    """`shared.coupons.ports.Replays` on the table: the coupon the key's claim made (its id derived
    from the key under `id_secret`), else the idempotency record (a redemption's, a template's)."""

    def __init__(self, id_secret: bytes | None = None) -> None:
        self._id_secret = id_secret

    def __call__(self, request: IdempotentRequest) -> StoredResponse | None:
        carried = first_answer(DynamoCoupons().get(coupon_id_for(request, self._id_secret)), request)
        return carried if carried is not None else idempotency_store.replay(request)


def unit_of_work(*, retry_conflicts: bool = True) -> DynamoCouponUnitOfWork:
    """The `CouponUnitOfWorkFactory` of production."""
    return DynamoCouponUnitOfWork(retry_conflicts=retry_conflicts)


def coupon_parts(tx: Transaction) -> DynamoCouponUnitOfWork:
    """Coupon parts that join another capability's transaction (an order's): the caller commits
    `tx` and asks `raise_domain_error` what a cancellation meant for these parts."""
    return DynamoCouponUnitOfWork(tx=tx)


# -- coupons in an order's transaction (shared.ordering.ports.CouponHolder) ---------------------
def coupon_at_checkout(item: CouponItem) -> CouponAtCheckout:
    return CouponAtCheckout(_coupon_of(item))


class DynamoOrderCoupons:
    """Locks, uses and gives back an order's coupons as parts of the order's own transaction."""

    def lock(self, uow: OrderingUnitOfWork, order: Order, coupons: Sequence[OrderCoupon]) -> None:
        order_uow = _dynamo(uow)
        parts = coupon_parts(order_uow.tx)
        for named in coupons:
            if not isinstance(named, CouponAtCheckout):
                raise TypeError("a coupon this store did not read")
            coupon = named.coupon
            parts.move(coupon, coupon.moved(Action.LOCK, order.created_at_ms, order_id=order.order_id))
        order_uow.translate(lambda cancelled: _in_use(parts, cancelled))

    def use(self, uow: OrderingUnitOfWork, order: Order, now_ms: int) -> None:
        self._move_held(uow, order, Action.USE, EventType.COUPON_USED, now_ms)

    def give_back(self, uow: OrderingUnitOfWork, order: Order, now_ms: int) -> None:
        self._move_held(uow, order, Action.RETURN, EventType.COUPON_RETURNED, now_ms)

    def refund(self, uow: OrderingUnitOfWork, order: Order, now_ms: int) -> None:
        self._move_held(uow, order, Action.REFUND, EventType.COUPON_RETURNED, now_ms, held_as=Status.USED)

    def _move_held(
        self,
        uow: OrderingUnitOfWork,
        order: Order,
        action: Action,
        event: EventType,
        now_ms: int,
        held_as: Status = Status.LOCKED,
    ) -> None:
        """The coupons `held_as` (LOCKED, or USED by) this order (matched by coupon id and order id,
        never by template), read consistently, moved by `action` conditionally on what was read."""
        order_uow = _dynamo(uow)
        parts = coupon_parts(order_uow.tx)
        keys = [CouponItem.key(coupon_id) for coupon_id in order.coupon_ids]
        for item in get_items(keys, consistent=True).values():
            if not isinstance(item, CouponItem):
                continue
            held = _coupon_of(item)
            if held.status is not held_as or held.order_id != order.order_id:
                continue  # not this order's to move (nothing an order does can reach another's coupon)
            after = held.moved(action, now_ms, order_id=order.order_id if action is Action.USE else None)
            parts.move(held, after)
            payload = {"coupon_id": held.coupon_id, "template_id": held.template_id, "order_id": order.order_id}
            uow.emit(DomainEvent(event, held.coupon_id, {**payload, "status": str(after.status)}))
        order_uow.translate(parts.raise_domain_error)


def _dynamo(uow: OrderingUnitOfWork) -> DynamoOrderingUnitOfWork:
    if not isinstance(uow, DynamoOrderingUnitOfWork):
        raise TypeError("coupons join DynamoDB units of work only")
    return uow


def _in_use(parts: DynamoCouponUnitOfWork, cancelled: TransactionCancelled) -> None:
    """A coupon part of a new order refused: another order (or a store) took the coupon first."""
    for coupon_id in parts.coupon_ids:
        if _coupon_label(coupon_id) in cancelled.failed:
            raise CouponInUse(
                "the coupon is held by another order or no longer available", coupon_id=coupon_id
            ) from cancelled
