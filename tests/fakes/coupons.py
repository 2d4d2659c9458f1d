"""In-memory coupon ports (shared.coupons.ports) over one `CouponTables`.

They keep the rules of `shared.data.stores.coupons`: every part is conditional, a commit applies
every part or none (under one lock, as the serialised emulator and DynamoDB do per transaction),
and a refused part raises the same error in the same order of precedence (a replayed idempotency
key, then the member's level, the guide's quota, the per-user limit, the shard, the code, the member's binding, the
wrong verification codes, the coupon or template, the redemption).

Member levels come from the membership fakes (tests/fakes/membership.py) the tables hold: the
level table from `CouponTables.rules`, a member's stored level from `CouponTables.members`.

Faults: `CouponTables.unavailable` > 0 makes that many commits answer TemporarilyUnavailable
(nothing applied).
"""

from __future__ import annotations

import threading
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from shared.coupons.claims import claimed_event
from shared.coupons.model import (
    TALLIED,
    CartItem,
    Coupon,
    GuideQuotaReached,
    LevelRule,
    Redemption,
    Status,
    Tally,
    Template,
    tally_moves,
    verification_code,
)
from shared.coupons.ports import (
    AlreadyReminded,
    BindingChanged,
    CodeTaken,
    CouponPolicy,
    CouponPorts,
    Cursor,
    GuideOfMember,
    ReminderPage,
    ShardEmpty,
    TooManyWrongCodes,
    WrongCodes,
)
from shared.coupons.wrong_codes import WrongCodeCounter
from shared.kernel.clock import FakeClock
from shared.kernel.errors import (
    AlreadyReversed,
    ConcurrentUpdate,
    IdempotencyKeyReused,
    LimitReached,
    TemporarilyUnavailable,
)
from shared.kernel.events import DomainEvent
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.kernel.shards import split
from tests.fakes.membership import MemoryMembers, MemoryMembershipRules

# Precedence of refusals, as DynamoCouponUnitOfWork.raise_domain_error has it.
LEVEL, QUOTA, LIMIT, SHARD, CODE, BINDING, REMINDER, WRONG_CODES, COUPON, TEMPLATE, REDEMPTION = range(11)


@dataclass
class CouponTables:
    templates: dict[str, Template] = field(default_factory=dict)
    shards: dict[tuple[str, int], int] = field(default_factory=dict)  # remaining per shard
    initial: dict[tuple[str, int], int] = field(default_factory=dict)
    tallies: dict[tuple[str, int], Counter[Status]] = field(default_factory=dict)
    claimants: dict[tuple[str, str], int] = field(default_factory=dict)
    guide_issues: dict[tuple[str, str], int] = field(default_factory=dict)  # (template, guide) -> issued
    bindings: dict[str, GuideOfMember] = field(default_factory=dict)  # member -> the guide bound now
    members: MemoryMembers = field(default_factory=MemoryMembers)  # member records and their levels
    rules: MemoryMembershipRules = field(default_factory=MemoryMembershipRules)  # the level table
    reminded: set[str] = field(default_factory=set)  # coupons whose expiry reminder was written
    reminder_checkpoints: dict[int, str] = field(default_factory=dict)
    coupons: dict[str, Coupon] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)
    redemptions: dict[str, Redemption] = field(default_factory=dict)
    wrong_codes: Counter[tuple[str, str, int]] = field(default_factory=Counter)  # (scope, owner, window)
    idempotency: dict[tuple[str, str], tuple[str, StoredResponse]] = field(default_factory=dict)
    events: list[DomainEvent] = field(default_factory=list)
    commits: int = 0
    unavailable: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class MemoryTemplates:
    def __init__(self, tables: CouponTables) -> None:
        self.t = tables

    def get(self, template_id: str) -> Template | None:
        return self.t.templates.get(template_id)

    def page(self, limit: int, cursor: Cursor | None) -> tuple[list[Template], Cursor | None]:
        ordered = sorted(self.t.templates.values(), key=lambda t: (t.created_at_ms, t.template_id), reverse=True)
        start = int(cursor["at"]) if cursor else 0
        page = ordered[start : start + limit]
        return page, ({"at": start + limit} if start + limit < len(ordered) else None)

    def tally(self, template: Template) -> Tally:
        shards = range(template.shards)
        remaining = sum(self.t.shards[(template.template_id, n)] for n in shards)
        by_status: Counter[Status] = Counter()
        for n in shards:
            by_status.update(self.t.tallies.get((template.template_id, n), Counter()))
        return Tally(template.total, remaining, template.total - remaining, dict(by_status))

    def remaining(self, template: Template) -> list[int]:
        return [self.t.shards[(template.template_id, n)] for n in range(template.shards)]


class MemoryCoupons:
    def __init__(self, tables: CouponTables) -> None:
        self.t = tables

    def get(self, coupon_id: str) -> Coupon | None:
        return self.t.coupons.get(coupon_id)

    def by_code(self, code: str) -> Coupon | None:
        coupon_id = self.t.codes.get(code)
        return None if coupon_id is None else self.t.coupons[coupon_id]

    def of_customer(
        self, customer_id: str, status: Status | None, now_ms: int, limit: int, cursor: Cursor | None
    ) -> tuple[list[Coupon], Cursor | None]:
        mine = [c for c in self.t.coupons.values() if c.customer_id == customer_id]
        mine = [c for c in mine if status is None or c.shown_status(now_ms) is status]
        mine.sort(key=lambda c: (c.claimed_at_ms, c.coupon_id), reverse=True)
        start = int(cursor["at"]) if cursor else 0
        return mine[start : start + limit], ({"at": start + limit} if start + limit < len(mine) else None)

    def due(self, now_ms: int, limit: int) -> Iterator[Coupon]:
        due = [c for c in self.t.coupons.values() if c.status is Status.AVAILABLE and c.use_window.ends_ms <= now_ms]
        return iter(sorted(due, key=lambda c: c.use_window.ends_ms)[:limit])

    def redemption(self, redemption_id: str) -> Redemption | None:
        return self.t.redemptions.get(redemption_id)

    def redemptions_at(
        self, store_id: str, limit: int, cursor: Cursor | None
    ) -> tuple[list[Redemption], Cursor | None]:
        found = sorted(
            (r for r in self.t.redemptions.values() if r.store_id == store_id),
            key=lambda r: (r.redeemed_at_ms, r.redemption_id),
            reverse=True,
        )
        start = int(cursor["at"]) if cursor else 0
        return found[start : start + limit], ({"at": start + limit} if start + limit < len(found) else None)


# A part: (precedence, check returning the error to raise or None, apply).
Part = tuple[int, Callable[[], Exception | None], Callable[[], None]]


class MemoryCouponUnitOfWork:
    def __init__(self, tables: CouponTables, *, retry_conflicts: bool = True) -> None:
        self.t = tables
        self.parts: list[Part] = []
        self._committed = False

    def add_template(self, template: Template) -> None:
        t = self.t

        def apply() -> None:
            t.templates[template.template_id] = template
            for n, units in enumerate(split(template.total, template.shards)):
                t.shards[(template.template_id, n)] = units
                t.initial[(template.template_id, n)] = units

        taken = ConcurrentUpdate("template exists")
        self.parts.append((TEMPLATE, lambda: taken if template.template_id in t.templates else None, apply))

    def replace_template(self, before: Template, after: Template) -> None:
        t = self.t

        def check() -> Exception | None:
            stored = t.templates.get(before.template_id)
            ok = stored is not None and stored.version == before.version
            return None if ok else ConcurrentUpdate("the template changed since it was read")

        self.parts.append((TEMPLATE, check, lambda: t.templates.__setitem__(after.template_id, after)))

    def take_one(self, template: Template, shard: int) -> None:
        key = (template.template_id, shard)
        t = self.t

        def apply() -> None:
            t.shards[key] -= 1

        self.parts.append((SHARD, lambda: None if t.shards.get(key, 0) >= 1 else ShardEmpty(shard), apply))

    def count_claim(self, template: Template, customer_id: str) -> None:
        key = (template.template_id, customer_id)
        t = self.t

        def check() -> Exception | None:
            if t.claimants.get(key, 0) <= template.per_user_limit - 1:
                return None
            return LimitReached("limit", template_id=template.template_id, per_user_limit=template.per_user_limit)

        def apply() -> None:
            t.claimants[key] = t.claimants.get(key, 0) + 1

        self.parts.append((LIMIT, check, apply))

    def count_guide_issue(self, template: Template, guide_id: str) -> None:
        key = (template.template_id, guide_id)
        quota = template.guide_quota
        if quota is None:
            raise ValueError("only a guide-only template has a guide quota")
        t = self.t

        def check() -> Exception | None:
            if t.guide_issues.get(key, 0) <= quota - 1:
                return None
            return GuideQuotaReached("quota", template_id=template.template_id, guide_quota=quota)

        def apply() -> None:
            t.guide_issues[key] = t.guide_issues.get(key, 0) + 1

        self.parts.append((QUOTA, check, apply))

    def check_bound(self, member_id: str, binding: GuideOfMember) -> None:
        t = self.t
        self.parts.append(
            (BINDING, lambda: None if t.bindings.get(member_id) == binding else BindingChanged(), lambda: None)
        )

    def check_level(self, customer_id: str, rule: LevelRule) -> None:
        t = self.t

        def check() -> Exception | None:
            stored = t.members.member(customer_id)
            return None if rule.admits(None if stored is None else stored.level) else rule.refusal()

        self.parts.append((LEVEL, check, lambda: None))

    def add_coupon(self, coupon: Coupon) -> None:
        t = self.t

        def apply() -> None:
            t.coupons[coupon.coupon_id] = coupon
            t.codes[coupon.code] = coupon.coupon_id
            # As the stream relay derives it from the coupon's INSERT (shared/data/stream.py).
            t.events.append(claimed_event(coupon))

        self.parts.append((CODE, lambda: CodeTaken() if coupon.code in t.codes else None, apply))

    def move(self, before: Coupon, after: Coupon) -> None:
        t = self.t

        def check() -> Exception | None:
            stored = t.coupons.get(before.coupon_id)
            ok = stored is not None and (stored.status, stored.version) == (before.status, before.version)
            return None if ok else ConcurrentUpdate("the coupon changed", coupon_id=before.coupon_id)

        def apply() -> None:
            t.coupons[after.coupon_id] = after
            tally = t.tallies.setdefault((before.template_id, before.shard), Counter())
            for status, n in tally_moves(before.status, after.status).items():
                tally[status] += n

        self.parts.append((COUPON, check, apply))

    def mark_reminded(self, coupon: Coupon, now_ms: int) -> None:
        t = self.t
        self.parts.append(
            (
                REMINDER,
                lambda: AlreadyReminded() if coupon.coupon_id in t.reminded else None,
                lambda: t.reminded.add(coupon.coupon_id),
            )
        )

    def add_redemption(self, redemption: Redemption) -> None:
        t = self.t
        self.parts.append(
            (REDEMPTION, lambda: None, lambda: t.redemptions.__setitem__(redemption.redemption_id, redemption))
        )

    def reverse_redemption(self, before: Redemption, after: Redemption) -> None:
        t = self.t

        def check() -> Exception | None:
            stored = t.redemptions.get(before.redemption_id)
            ok = stored is not None and stored.reversed_at_ms is None
            return None if ok else AlreadyReversed("reversed", redemption_id=before.redemption_id)

        self.parts.append((REDEMPTION, check, lambda: t.redemptions.__setitem__(after.redemption_id, after)))

    def check_wrong_codes(self, counters: Sequence[WrongCodeCounter]) -> None:
        t = self.t

        def check() -> Exception | None:
            over = any(t.wrong_codes[(c.scope, c.owner_id, c.window)] >= c.limit for c in counters)
            return TooManyWrongCodes() if over else None

        self.parts.append((WRONG_CODES, check, lambda: None))

    def emit(self, event: DomainEvent) -> None:
        t = self.t
        self.parts.append((REDEMPTION, lambda: None, lambda: t.events.append(event)))

    def commit(self) -> None:
        self._commit(None, None)

    def commit_once(self, request: IdempotentRequest, response: StoredResponse) -> StoredResponse:
        return self._commit(request, response) or response

    def _commit(self, request: IdempotentRequest | None, response: StoredResponse | None) -> StoredResponse | None:
        if self._committed:
            raise RuntimeError("a unit of work is committed once")
        self._committed = True
        with self.t.lock:
            if self.t.unavailable > 0:
                self.t.unavailable -= 1
                raise TemporarilyUnavailable("the database is busy; retry")
            if request is not None:
                stored = self.t.idempotency.get((request.scope, request.key))
                if stored is not None:
                    if stored[0] != request.fingerprint:
                        raise IdempotencyKeyReused("key reused", idempotency_key=request.key)
                    return stored[1]
            refused = [(rank, error) for rank, check, _ in self.parts if (error := check()) is not None]
            if refused:
                raise min(refused, key=lambda pair: pair[0])[1]
            for _, _, apply in self.parts:
                apply()
            if request is not None and response is not None:
                self.t.idempotency[(request.scope, request.key)] = (request.fingerprint, response)
            self.t.commits += 1
        return None


class MemoryReminders:
    """The expiry queue as the DynamoDB one orders it: AVAILABLE coupons in `partitions` partitions
    (crc32 of the id), by `<window end ms>#<id>`; positions compare as strings."""

    partitions = 4

    def __init__(self, tables: CouponTables) -> None:
        self.t = tables
        self.pages = 0  # pages read, so a test can see a run resume rather than start over

    def checkpoints(self) -> dict[int, str]:
        return dict(self.t.reminder_checkpoints)

    def page(self, partition: int, after: str | None, from_ms: int, until_ms: int, limit: int) -> ReminderPage:
        self.pages += 1
        low, high = max(after or "", f"{from_ms:013d}#~"), f"{until_ms:013d}#~"
        queued = sorted(
            (f"{c.use_window.ends_ms:013d}#{c.coupon_id}", c)
            for c in self.t.coupons.values()
            if c.status is Status.AVAILABLE and zlib.crc32(c.coupon_id.encode()) % self.partitions == partition
        )
        inside = [(position, c) for position, c in queued if low < position <= high]
        page = inside[:limit]
        more = len(inside) > limit
        return ReminderPage([c for _, c in page], page[-1][0] if more else max(low, high), more)

    def advance(self, partition: int, through: str) -> None:
        with self.t.lock:
            if through > self.t.reminder_checkpoints.get(partition, ""):
                self.t.reminder_checkpoints[partition] = through


class MemoryGuideMembers:
    """Bindings are set on the tables (`tables.bindings`); every binding there is active."""

    def __init__(self, tables: CouponTables) -> None:
        self.t = tables

    def guide_of(self, member_id: str, now_ms: int) -> GuideOfMember | None:
        return self.t.bindings.get(member_id)


class MemoryMemberLevels:
    """The level names of the membership rules on the tables (`tables.rules`)."""

    def __init__(self, tables: CouponTables) -> None:
        self.t = tables

    def names(self) -> tuple[str, ...]:
        return tuple(level.name for level in self.t.rules.current().levels)


class MemoryWrongCodes:
    """The counters of wrong verification codes; `count` adds under the tables' lock, as an ADD is
    atomic on its item."""

    def __init__(self, tables: CouponTables) -> None:
        self.t = tables

    def read(self, code: str, counters: Sequence[WrongCodeCounter]) -> tuple[str | None, tuple[int, ...]]:
        with self.t.lock:
            return self.t.codes.get(code), tuple(self.t.wrong_codes[_counted(c)] for c in counters)

    def count(self, counters: Sequence[WrongCodeCounter]) -> tuple[int, ...]:
        with self.t.lock:
            for c in counters:
                self.t.wrong_codes[_counted(c)] += 1
            return tuple(self.t.wrong_codes[_counted(c)] for c in counters)


def _counted(counter: WrongCodeCounter) -> tuple[str, str, int]:
    return counter.scope, counter.owner_id, counter.window


class InterleavedWrongCodes:
    """Any WrongCodes port (the fake or DynamoDB's) with other attempts interleaved after each read:
    `then_wrong` wrong codes land on the counters just read (attempts racing this one), and the read
    waits at `barrier` (attempts that all read before any of them counts)."""

    def __init__(self, inner: WrongCodes, then_wrong: int = 0, barrier: threading.Barrier | None = None) -> None:
        self.inner = inner
        self.then_wrong = then_wrong
        self.barrier = barrier

    def read(self, code: str, counters: Sequence[WrongCodeCounter]) -> tuple[str | None, tuple[int, ...]]:
        found = self.inner.read(code, counters)
        for _ in range(self.then_wrong):
            self.inner.count(counters)
        if self.barrier is not None:
            self.barrier.wait(timeout=30)
        return found

    def count(self, counters: Sequence[WrongCodeCounter]) -> tuple[int, ...]:
        return self.inner.count(counters)


def a_wrong_verification_code(ports: CouponPorts, store: str) -> str:
    """A code the store does not accept now (neither its current one nor the one before)."""
    step_s, now = ports.policy.verification_step_s, ports.clock.now_ms()
    accepted = {verification_code(ports.verification_key, store, step_s, now, back) for back in (0, 1)}
    return next(c for c in ("000000", "111111", "222222") if c not in accepted)


class MemoryStores:
    def __init__(self, stores: Sequence[str]) -> None:
        self.stores = frozenset(stores)

    def is_store(self, location_id: str) -> bool:
        return location_id in self.stores


@dataclass
class MemoryPrices:
    catalogue: dict[str, tuple[str | None, int]]  # sku -> (category, list price)

    def items(self, lines: Sequence[tuple[str, int]]) -> list[CartItem]:
        return [
            CartItem(sku, self.catalogue[sku][0], self.catalogue[sku][1] * qty)
            for sku, qty in lines
            if sku in self.catalogue
        ]


def replays(tables: CouponTables) -> Callable[[IdempotentRequest], StoredResponse | None]:
    def replay(request: IdempotentRequest) -> StoredResponse | None:
        stored = tables.idempotency.get((request.scope, request.key))
        if stored is None:
            return None
        if stored[0] != request.fingerprint:
            raise IdempotencyKeyReused("key reused", idempotency_key=request.key)
        return stored[1]

    return replay


def fixed_coupon_template(ports: CouponPorts, valid_for_ms: int, **changes: object) -> str:
    """A template of ¥10-off coupons, claimable and usable from an hour ago for `valid_for_ms` from
    now, created on `ports`; `changes` are TemplateDraft fields (total, per_user_limit, ...)."""
    from dataclasses import replace as changed

    from shared.coupons import templates
    from shared.coupons.model import Benefit, Kind, TemplateDraft, Terms

    now = ports.clock.now_ms()
    hour = 3600 * 1000
    draft = TemplateDraft(
        name="立减10元",
        description="",
        terms=Terms(Benefit(Kind.FIXED, amount_fen=1000)),
        total=10,
        per_user_limit=1,
        claim_from_ms=now - hour,
        claim_to_ms=now + valid_for_ms,
        valid_from_ms=now - hour,
        valid_to_ms=now + valid_for_ms,
    )
    request = IdempotentRequest.of("t", None, {})
    return templates.create_template(changed(draft, **changes), 2000, request, ports).body["template_id"]


CATALOGUE = {"TEA-1": ("tea", 10000), "TEA-2": ("tea", 5000), "CUP-1": ("home", 3333)}


def coupons_on_fakes(
    clock: FakeClock | None = None, policy: CouponPolicy | None = None
) -> tuple[CouponPorts, CouponTables]:
    tables = CouponTables()
    ports = CouponPorts(
        templates=MemoryTemplates(tables),
        coupons=MemoryCoupons(tables),
        unit_of_work=lambda retry_conflicts=True: MemoryCouponUnitOfWork(tables, retry_conflicts=retry_conflicts),
        replay=replays(tables),
        stores=MemoryStores(["S001", "S002"]),
        prices=MemoryPrices(dict(CATALOGUE)),
        guides=MemoryGuideMembers(tables),
        levels=MemoryMemberLevels(tables),
        reminders=MemoryReminders(tables),
        wrong_codes=MemoryWrongCodes(tables),
        policy=policy or CouponPolicy(),
        clock=clock or FakeClock(),
        verification_key=b"test-verification-key",
    )
    return ports, tables


def available(tables: CouponTables, template_id: str) -> int:
    return sum(1 for c in tables.coupons.values() if c.template_id == template_id and c.status is Status.AVAILABLE)


def tallied(tables: CouponTables, template_id: str) -> dict[Status, int]:
    total: Counter[Status] = Counter()
    for (tid, _), tally in tables.tallies.items():
        if tid == template_id:
            total.update(tally)
    return {s: total[s] for s in TALLIED}
