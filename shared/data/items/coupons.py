"""Coupon items (docs/coupons.md, docs/data-model.md "Coupons"). What a claim writes has partitions
of its own: each shard of a template's quantity, each claimant's count, each coupon and each code,
so no two claims share a partition's 1,000 writes per second unless they share a shard."""

from __future__ import annotations

from pynamodb.attributes import BooleanAttribute, JSONAttribute, NumberAttribute, UnicodeAttribute

from shared.data.items.shard_counter import CounterShardItem
from shared.data.table import BaseItem

TEMPLATES_PARTITION = "CPNTEMPLATES"
DUE_SHARDS = 40  # the expiry queue's partitions: a hot template issues thousands of coupons a second


class CouponTemplateItem(BaseItem, discriminator="CouponTemplate"):
    """pk `CPNTPL#<id>`, sk `TEMPLATE`: the template. Its remaining quantity is NOT here (it is on
    the shards), so no edit of the template can change it. Written under `version`.
    gsi1 `CPNTEMPLATES` / `<created ms, 13 digits>#<id>`: the admin's list, newest first."""

    template_id = UnicodeAttribute()
    name = UnicodeAttribute()
    description = UnicodeAttribute(null=True)
    terms = JSONAttribute()  # shared.coupons.model.Terms.to_dict()
    total = NumberAttribute()
    per_user_limit = NumberAttribute()
    claim_from = NumberAttribute()  # epoch ms
    claim_to = NumberAttribute()
    valid_from = NumberAttribute()
    valid_to = NumberAttribute()
    valid_days = NumberAttribute(null=True)
    member_levels = JSONAttribute(null=True)
    guide_quota = NumberAttribute(null=True)  # guide-only: what each guide may issue
    issuing = BooleanAttribute()
    shards = NumberAttribute()
    version = NumberAttribute()

    @staticmethod
    def key(template_id: str) -> tuple[str, str]:
        return f"CPNTPL#{template_id}", "TEMPLATE"


class CouponShardItem(CounterShardItem, discriminator="CouponShard"):
    """pk `CPNTPL#<id>#SHARD#<n>`, sk `SHARD`: one shard of the template's remaining coupons
    (`shared.data.shard_counter`); a claim takes one unit in its own transaction (`ordered`)."""

    template_id = UnicodeAttribute()

    @staticmethod
    def key(owner_id: str, shard: int) -> tuple[str, str]:
        return f"CPNTPL#{owner_id}#SHARD#{shard}", "SHARD"


class CouponTallyItem(BaseItem, discriminator="CouponTally"):
    """pk `CPNTPL#<id>#TALLY#<n>`, sk `TALLY`: how many of the coupons claimed from shard n are
    LOCKED, USED, REDEEMED_OFFLINE or EXPIRED (the rest are AVAILABLE). Moved with the coupon, in its
    transaction; created by the first move (ADD). Apart from the shard, so that using a coupon never
    writes the item that claims contend for."""

    locked = NumberAttribute(default=0)
    used = NumberAttribute(default=0)
    redeemed_offline = NumberAttribute(default=0)
    expired = NumberAttribute(default=0)

    @staticmethod
    def key(template_id: str, shard: int) -> tuple[str, str]:
        return f"CPNTPL#{template_id}#TALLY#{shard}", "TALLY"


class CouponClaimantItem(BaseItem, discriminator="CouponClaimant"):
    """pk `CPNTPL#<id>#USER#<sub>`, sk `CLAIMS`: how many coupons of the template the customer has
    claimed (ever: using one does not give the claim back). Written in the claim's transaction
    under `claimed <= limit - 1`."""

    claimed = NumberAttribute()

    @staticmethod
    def key(template_id: str, customer_id: str) -> tuple[str, str]:
        return f"CPNTPL#{template_id}#USER#{customer_id}", "CLAIMS"


class CouponGuideIssuesItem(BaseItem, discriminator="CouponGuideIssues"):
    """pk `CPNTPL#<id>#GUIDE#<guide>`, sk `ISSUED`: how many coupons of a guide-only template the
    guide has issued. Written in the issue's transaction under `issued <= quota - 1`, so concurrent
    issues by one guide never pass the quota."""

    issued = NumberAttribute()

    @staticmethod
    def key(template_id: str, guide_id: str) -> tuple[str, str]:
        return f"CPNTPL#{template_id}#GUIDE#{guide_id}", "ISSUED"


class CouponReminderItem(BaseItem, discriminator="CouponReminder"):
    """pk `COUPON#<id>`, sk `REMINDER`: the coupon's expiry reminder was sent (its CouponExpiring
    event written). Put with `attribute_not_exists(pk)` in the event's transaction: once per coupon."""

    @staticmethod
    def key(coupon_id: str) -> tuple[str, str]:
        return f"COUPON#{coupon_id}", "REMINDER"


class CouponReminderCheckpointItem(BaseItem, discriminator="CouponReminderCheckpoint"):
    """pk `CPNREMIND#<0..39>`, sk `CHECKPOINT`: how far the reminder job has gone through partition
    n of the expiry queue (`through`, a gsi2sk: every AVAILABLE coupon up to it was reminded or
    skipped). Only ever moved forward (`through < :new`)."""

    through = UnicodeAttribute()

    @staticmethod
    def key(partition: int) -> tuple[str, str]:
        return f"CPNREMIND#{partition}", "CHECKPOINT"


class CouponItem(BaseItem, discriminator="Coupon"):
    """pk `COUPON#<id>`, sk `COUPON`: a claimed coupon with the terms it was claimed under. Every
    move is a Put conditional on the status and version read.
    gsi1 `CUSTCOUPONS#<sub>` / `<claimed ms, 13 digits>#<id>`: the customer's wallet, newest first.
    gsi2 `CPNDUE#<0..39>` / `<use window end ms, 13 digits>#<id>`: only while AVAILABLE (sparse): the
    sweeper's queue of coupons whose use window has passed."""

    coupon_id = UnicodeAttribute()
    template_id = UnicodeAttribute()
    customer_id = UnicodeAttribute()
    code = UnicodeAttribute()
    name = UnicodeAttribute()
    terms = JSONAttribute()
    use_from = NumberAttribute()  # epoch ms
    use_to = NumberAttribute()
    claimed_at = NumberAttribute()
    shard = NumberAttribute()
    status = UnicodeAttribute()
    version = NumberAttribute()
    order_id = UnicodeAttribute(null=True)
    redemption_id = UnicodeAttribute(null=True)
    updated_at = NumberAttribute()
    issued_by = UnicodeAttribute(null=True)  # the guide who issued it
    # The claim's fingerprint (shortened as an order's is): the coupon is its idempotency record,
    # its id derived from the caller and the Idempotency-Key (docs/coupons.md, "Idempotency").
    request_hash = UnicodeAttribute(null=True)

    @staticmethod
    def key(coupon_id: str) -> tuple[str, str]:
        return f"COUPON#{coupon_id}", "COUPON"


class CouponCodeItem(BaseItem, discriminator="CouponCode"):
    """pk `CPNCODE#<code>`, sk `CODE`: which coupon an offline code belongs to. Put with
    `attribute_not_exists(pk)` in the claim's transaction, so no two coupons share a code."""

    coupon_id = UnicodeAttribute()

    @staticmethod
    def key(code: str) -> tuple[str, str]:
        return f"CPNCODE#{code}", "CODE"


class CouponRedemptionItem(BaseItem, discriminator="CouponRedemption"):
    """pk `CPNREDEEM#<id>`, sk `REDEMPTION`: one offline redemption (store, who, when, purchase),
    and its reversal (who, when, why), written once under `attribute_not_exists(reversed_at)`.
    gsi1 `STOREREDEMPTIONS#<store>` / `<redeemed ms, 13 digits>#<id>`: a store's redemptions."""

    redemption_id = UnicodeAttribute()
    coupon_id = UnicodeAttribute()
    template_id = UnicodeAttribute()
    customer_id = UnicodeAttribute()
    store_id = UnicodeAttribute()
    redeemed_by = UnicodeAttribute()
    redeemed_by_role = UnicodeAttribute()
    redeemed_at = NumberAttribute()
    purchase_fen = NumberAttribute(null=True)
    reversed_at = NumberAttribute(null=True)
    reversed_by = UnicodeAttribute(null=True)
    reversal_reason = UnicodeAttribute(null=True)

    @staticmethod
    def key(redemption_id: str) -> tuple[str, str]:
        return f"CPNREDEEM#{redemption_id}", "REDEMPTION"


class CouponWrongCodesItem(BaseItem, discriminator="CouponWrongCodes"):
    """pk `CPNWRONG#<scope>#<owner>#<window>`, sk `WRONG`: the wrong store verification codes one
    customer (scope `customer`) gave, or one store (scope `store`) was given, in one window
    (`shared.coupons.wrong_codes`). Created and counted by `ADD wrong 1` (atomic: concurrent wrong
    codes each count); read with the code's item in the redemption's one BatchGetItem, and checked
    under its limit in the redemption's transaction. `ttl` removes it after the next window: the
    window in its key retires it at once, the removal is housekeeping."""

    wrong = NumberAttribute(default=0)

    @staticmethod
    def key(scope: str, owner_id: str, window: int) -> tuple[str, str]:
        return f"CPNWRONG#{scope}#{owner_id}#{window}", "WRONG"
