"""What the coupon use cases need from the outside: reads, one unit of work per change, the stores
that exist and the cart's prices. docs/coupons.md has the keys behind each.

The unit of work is ONE DynamoDB transaction in production (`shared.data.stores.coupons`): each
method adds a conditional part, and `commit` / `commit_once` apply every part or none. A refused
part comes back as the error it means, never as an SDK error, in this order of precedence:

- `commit_once`: a replay of the idempotency key returns the first response (nothing else
  applied); the key with another body is IdempotencyKeyReused;
- `check_level`: MemberLevelRequired (403) when the member's level is not one the template admits;
- `count_guide_issue`: GuideQuotaReached (409) when the guide has issued its quota of the template;
- `count_claim`: LimitReached (429) when the customer already holds the per-user limit;
- `take_one`: ShardEmpty when that shard of the template's remaining quantity is empty;
- `add_coupon`: CodeTaken when the offline code is somebody else's (60 random bits: never seen);
- `check_bound`: BindingChanged when the member's binding is not the one read;
- `mark_reminded`: AlreadyReminded when the coupon's expiry reminder was sent before;
- `move` / `replace_template`: ConcurrentUpdate when the stored coupon or template is not the
  one read (another writer got there first: the use case reads again and decides again);
- `reverse_redemption`: AlreadyReversed when the redemption was reversed a moment ago;
- `check_wrong_codes`: TooManyWrongCodes when a counter of wrong verification codes reached its
  limit since it was read (checked before the coupon: a locked customer learns nothing);
- TemporarilyUnavailable (503) when the database stays busy: nothing applied.

The in-memory fake (`tests/fakes/coupons.py`) keeps the same rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from shared.coupons.model import CartItem, Coupon, LevelRule, Redemption, Status, Tally, Template
from shared.coupons.wrong_codes import WrongCodeCounter
from shared.kernel.clock import Clock
from shared.kernel.events import DomainEvent
from shared.kernel.idempotency import IdempotentRequest, StoredResponse

Cursor = dict[str, Any]


class ShardEmpty(Exception):
    """The shard named had no unit left when the claim's transaction ran (nothing applied)."""

    def __init__(self, shard: int) -> None:
        super().__init__(f"shard {shard} is empty")
        self.shard = shard


class CodeTaken(Exception):
    """The new coupon's offline code exists already (nothing applied): draw another."""


class AlreadyReminded(Exception):
    """The coupon's expiry reminder was written before (nothing applied): nothing to send."""


class BindingChanged(Exception):
    """The member's binding to a guide changed since it was read (nothing applied): read again."""


class TooManyWrongCodes(Exception):
    """A counter of wrong verification codes reached its limit between the read and the
    redemption's transaction (nothing applied): the redemption is refused as too many attempts."""


class WrongCodes(Protocol):
    """Wrong store verification codes, counted per customer and per store in fixed windows
    (`shared.coupons.wrong_codes`; docs/coupons.md, "Wrong verification codes")."""

    def read(self, code: str, counters: Sequence[WrongCodeCounter]) -> tuple[str | None, tuple[int, ...]]:
        """The id of the coupon whose offline code is `code` (normalised; None: no such code) and
        each counter's wrong codes so far, read consistently in ONE call (the lookup of the code a
        redemption makes anyway, so the limit costs no round trip)."""
        ...

    def count(self, counters: Sequence[WrongCodeCounter]) -> tuple[int, ...]:
        """One more wrong code on each counter, atomically (concurrent attempts each count); the
        counts after it."""
        ...


@dataclass(frozen=True)
class GuideOfMember:
    """Who a member is bound to now, as read: the guide, and the binding's version (which the
    issuing transaction checks, so a binding moved meanwhile never lets the old guide issue)."""

    guide_id: str
    version: int


class GuideMembers(Protocol):
    def guide_of(self, member_id: str, now_ms: int) -> GuideOfMember | None:
        """The guide the member is bound to at `now_ms` (an active binding), read consistently;
        None when the member is bound to no guide."""
        ...


class MemberLevels(Protocol):
    def names(self) -> tuple[str, ...]:
        """The names of the merchant's member levels as the membership rules define them now, by
        level number (index 0 the lowest, where every member starts)."""
        ...


class TemplateReads(Protocol):
    def get(self, template_id: str) -> Template | None:
        """The template as last written (a consistent read), or None."""
        ...

    def page(self, limit: int, cursor: Cursor | None) -> tuple[list[Template], Cursor | None]:
        """Templates, newest first, a page at a time."""
        ...

    def tally(self, template: Template) -> Tally:
        """The template's books, from its shards and tallies read consistently."""
        ...

    def remaining(self, template: Template) -> list[int]:
        """Units left on each shard, read consistently, in shard order."""
        ...


class CouponReads(Protocol):
    def get(self, coupon_id: str) -> Coupon | None: ...

    def by_code(self, code: str) -> Coupon | None:
        """The coupon whose offline code is `code` (normalised), or None."""
        ...

    def of_customer(
        self, customer_id: str, status: Status | None, now_ms: int, limit: int, cursor: Cursor | None
    ) -> tuple[list[Coupon], Cursor | None]:
        """The customer's coupons, newest claim first; `status` as the customer sees it
        (`Coupon.shown_status`: an AVAILABLE coupon past its window is EXPIRED)."""
        ...

    def due(self, now_ms: int, limit: int) -> Iterable[Coupon]:
        """AVAILABLE coupons whose use window ended by `now_ms` (may include a few that moved
        meanwhile: callers check)."""
        ...

    def redemption(self, redemption_id: str) -> Redemption | None: ...

    def redemptions_at(
        self, store_id: str, limit: int, cursor: Cursor | None
    ) -> tuple[list[Redemption], Cursor | None]:
        """A store's offline redemptions, newest first."""
        ...


class CouponUnitOfWork(Protocol):
    """The parts of one transaction. Nothing is written before `commit` / `commit_once`, and then
    every part or none. A unit of work is committed once."""

    def add_template(self, template: Template) -> None:
        """The template and its shards (the total split over them)."""
        ...

    def replace_template(self, before: Template, after: Template) -> None:
        """Write `after` only if the stored template is still `before` (same version). Never
        touches the shards: an edit cannot change how many coupons are left."""
        ...

    def take_one(self, template: Template, shard: int) -> None:
        """One unit off `shard` if it has one (ShardEmpty at commit otherwise)."""
        ...

    def count_claim(self, template: Template, customer_id: str) -> None:
        """The customer's claims of the template go up by one, unless that passes the per-user
        limit (LimitReached at commit)."""
        ...

    def count_guide_issue(self, template: Template, guide_id: str) -> None:
        """The guide's issues of the template go up by one, unless that passes the template's
        guide quota (GuideQuotaReached at commit)."""
        ...

    def check_bound(self, member_id: str, binding: GuideOfMember) -> None:
        """The member is still bound as `binding` says (BindingChanged at commit otherwise)."""
        ...

    def check_level(self, customer_id: str, rule: LevelRule) -> None:
        """The customer's member level, as stored when the transaction runs, is one `rule` admits
        (no member record: level 0); MemberLevelRequired at commit otherwise. A check of the member
        record inside the claim's transaction, not a read before it: no round trip more."""
        ...

    def mark_reminded(self, coupon: Coupon, now_ms: int) -> None:
        """The coupon's expiry reminder is sent, once (AlreadyReminded at commit if it was).
        Never writes the coupon itself, so a reminder never races an order or a store for it."""
        ...

    def add_coupon(self, coupon: Coupon) -> None:
        """A new coupon, and its offline code (CodeTaken at commit if the code exists). A coupon
        that carries a request (`Coupon.carrying`) is that request's idempotency record: its put
        is refused when its (derived) id exists, and `commit_once` answers the coupon found."""
        ...

    def move(self, before: Coupon, after: Coupon) -> None:
        """Write `after` if the stored coupon is still `before` (status and version), and move the
        template's tally from `before.status` to `after.status` in the same transaction."""
        ...

    def add_redemption(self, redemption: Redemption) -> None: ...

    def reverse_redemption(self, before: Redemption, after: Redemption) -> None:
        """Record the reversal once (AlreadyReversed at commit otherwise)."""
        ...

    def check_wrong_codes(self, counters: Sequence[WrongCodeCounter]) -> None:
        """Each counter is still under its limit when the transaction runs (TooManyWrongCodes at
        commit otherwise): a right code racing a burst of wrong ones is not let through."""
        ...

    def emit(self, event: DomainEvent) -> None:
        """The event that announces this change (the outbox), in the same transaction."""
        ...

    def commit(self) -> None: ...

    def commit_once(self, request: IdempotentRequest, response: StoredResponse) -> StoredResponse:
        """Join the idempotency record of `request` (answering `response`) and commit. Returns
        `response`, or the response stored under the key by the request that used it first. When a
        coupon added carries `request`, the coupon is the record (no item of its own) and a replay
        is answered `Coupon.first_answer` of the coupon there."""
        ...


class CouponUnitOfWorkFactory(Protocol):
    def __call__(self, *, retry_conflicts: bool = True) -> CouponUnitOfWork:
        """A fresh unit of work. `retry_conflicts` False: a transaction conflict raises
        TemporarilyUnavailable at once (a claim moves on to the template's next shard)."""
        ...


class Replays(Protocol):
    def __call__(self, request: IdempotentRequest) -> StoredResponse | None:
        """The response stored under this request's key (same body), IdempotencyKeyReused (other
        body), or None (never used): the coupon the key's claim made, if any, else the record."""
        ...


@dataclass(frozen=True)
class ReminderPage:
    """AVAILABLE coupons of one partition of the expiry queue, in order of their window's end;
    `through` is the position they cover up to (the last one's, or the range's end when it held no
    more), `more` says whether the range may hold more after it."""

    coupons: list[Coupon]
    through: str
    more: bool


class ExpiryReminders(Protocol):
    """The expiry queue (AVAILABLE coupons by the end of their use window, in `partitions`
    partitions) and how far the reminder job has gone through each. Positions are opaque."""

    partitions: int

    def checkpoints(self) -> dict[int, str]:
        """Each partition's position so far (a partition never gone through is absent)."""
        ...

    def page(self, partition: int, after: str | None, from_ms: int, until_ms: int, limit: int) -> ReminderPage:
        """Up to `limit` coupons of `partition` after position `after` whose window ends in
        (from_ms, until_ms], by their end."""
        ...

    def advance(self, partition: int, through: str) -> None:
        """The partition's position moves forward to `through`; never back (a run that is behind
        another leaves the other's position)."""
        ...


class StoreDirectory(Protocol):
    def is_store(self, location_id: str) -> bool:
        """Is this a store (not the warehouse, not unknown)?"""
        ...


class CartPrices(Protocol):
    def items(self, lines: Sequence[tuple[str, int]]) -> list[CartItem]:
        """The lines (sku, qty) at list price, with their categories; unknown SKUs left out."""
        ...


@dataclass(frozen=True)
class CouponPolicy:
    """The merchant's settings for coupons (shared.platform.settings, COUPON_*)."""

    default_peak_per_s: int = 2_000  # shards for a template whose creator gives no peak
    template_cache_s: float = 1.0  # how long a process claims against the template it read
    exhausted_hint_s: float = 1.0  # how long a process checks the shards first for a used-up template
    reversal_window_s: int = 24 * 3600  # how long after a redemption an admin may reverse it
    verification_step_s: int = 300  # how often a store's verification code changes
    wrong_code_window_s: int = 900  # the window wrong verification codes are counted in
    wrong_codes_per_customer: int = 5  # wrong codes a customer may give in a window, over every store
    wrong_codes_per_store: int = 50  # wrong codes a store may be given in a window, by every customer


@dataclass(frozen=True)
class CouponPorts:
    templates: TemplateReads
    coupons: CouponReads
    unit_of_work: CouponUnitOfWorkFactory
    replay: Replays
    stores: StoreDirectory
    prices: CartPrices
    guides: GuideMembers
    levels: MemberLevels
    reminders: ExpiryReminders
    wrong_codes: WrongCodes
    policy: CouponPolicy
    clock: Clock
    verification_key: bytes  # keys the stores' rotating verification codes
    id_secret: bytes | None = None  # keys the coupon ids derived from a claim's key (`coupon_id_for`)
