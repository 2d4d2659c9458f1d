"""Commission: who earns what of an order line, and what a refund takes back (docs/commission.md).
Pure domain code: integer fen, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from shared.kernel.credited import Credited, PayeeRole
from shared.kernel.errors import ValidationFailed
from shared.kernel.money import allocate

__all__ = [
    "BASIS_POINTS",
    "DEFAULT_CAP_BP",
    "CommissionLine",
    "CommissionRules",
    "Credited",
    "Earning",
    "LineSplit",
    "Override",
    "PayeeRole",
    "Share",
    "clawback_fen",
    "split_line",
]

BASIS_POINTS = 10_000
# The most WeChat Pay profit sharing lets a merchant share out of one payment, and our default cap.
DEFAULT_CAP_BP = 3_000


@dataclass(frozen=True)
class Share:
    """A role's cut of a line: a rate in basis points of the line's commission base, or a fixed
    amount in fen per unit. Exactly one of the two."""

    rate_bp: int | None = None
    fixed_fen: int | None = None

    def __post_init__(self) -> None:
        if (self.rate_bp is None) == (self.fixed_fen is None):
            raise ValidationFailed("a share is either rate_bp or fixed_fen", rate_bp=self.rate_bp, fixed=self.fixed_fen)
        value = self.rate_bp if self.rate_bp is not None else self.fixed_fen
        if value is None or value < 0:
            raise ValidationFailed("a share must not be negative", value=value)

    def amount_fen(self, base_fen: int, qty: int) -> int:
        if self.rate_bp is not None:
            return base_fen * self.rate_bp // BASIS_POINTS  # floor: the odd fen stay with the merchant
        assert self.fixed_fen is not None
        return self.fixed_fen * qty


@dataclass(frozen=True)
class Override:
    """Shares that replace the defaults for one SKU, one category or one guide (per role named)."""

    shares: Mapping[PayeeRole, Share]
    sku: str | None = None
    category: str | None = None
    guide_id: str | None = None

    def __post_init__(self) -> None:
        if sum(v is not None for v in (self.sku, self.category, self.guide_id)) != 1:
            raise ValidationFailed("an override names exactly one of sku, category, guide_id")

    # Most specific first: a guide's own deal beats a product's, which beats its category's.
    @property
    def precedence(self) -> int:
        return 0 if self.guide_id is not None else 1 if self.sku is not None else 2

    def applies(self, sku: str, category: str | None, guide_id: str | None) -> bool:
        return (
            (self.guide_id is not None and self.guide_id == guide_id)
            or (self.sku is not None and self.sku == sku)
            or (self.category is not None and category is not None and self.category == category)
        )


@dataclass(frozen=True)
class CommissionRules:
    """One version of the merchant's rules. An order is split by the version in force when it was paid."""

    version: int
    shares: Mapping[PayeeRole, Share]
    overrides: tuple[Override, ...] = ()
    cap_bp: int = DEFAULT_CAP_BP

    def __post_init__(self) -> None:
        if not 0 <= self.cap_bp <= BASIS_POINTS:
            raise ValidationFailed("the cap is between 0 and 10,000 basis points", cap_bp=self.cap_bp)
        for shares in self._combinations():
            rates = sum(s.rate_bp for s in shares.values() if s.rate_bp is not None)
            if rates > self.cap_bp:
                raise ValidationFailed(
                    "the rates for a line must not sum past the cap",
                    rates_bp=rates,
                    cap_bp=self.cap_bp,
                    shares={role.value: share.rate_bp for role, share in shares.items()},
                )

    def _combinations(self) -> list[dict[PayeeRole, Share]]:
        """Every set of shares a line can get: the defaults under each subset of one guide, one SKU
        and one category override (each kind at most once, applied by precedence)."""
        by_kind: dict[int, list[Override]] = {0: [], 1: [], 2: []}
        for override in self.overrides:
            by_kind[override.precedence].append(override)
        combos: list[dict[PayeeRole, Share]] = []
        for guide in [None, *by_kind[0]]:
            for sku in [None, *by_kind[1]]:
                for category in [None, *by_kind[2]]:
                    picked = [o for o in (guide, sku, category) if o is not None]
                    combos.append(_layered(self.shares, picked))
        return combos

    def shares_for(self, sku: str, category: str | None, guide_id: str | None) -> dict[PayeeRole, Share]:
        matching = [o for o in self.overrides if o.applies(sku, category, guide_id)]
        best: dict[int, Override] = {}
        for override in matching:  # the first of each kind wins, as listed by the merchant
            best.setdefault(override.precedence, override)
        return _layered(self.shares, list(best.values()))


def _layered(defaults: Mapping[PayeeRole, Share], overrides: Sequence[Override]) -> dict[PayeeRole, Share]:
    shares = dict(defaults)
    for override in sorted(overrides, key=lambda o: -o.precedence):  # category, then SKU, then guide
        shares.update(override.shares)
    return shares


@dataclass(frozen=True)
class CommissionLine:
    """An order line as commission sees it: its paid amount after every discount, freight excluded."""

    sku: str
    qty: int
    base_fen: int
    category: str | None = None


@dataclass(frozen=True)
class Earning:
    role: PayeeRole
    payee_id: str
    amount_fen: int


@dataclass(frozen=True)
class LineSplit:
    line: CommissionLine
    earnings: tuple[Earning, ...] = field(default=())

    @property
    def commission_fen(self) -> int:
        return sum(e.amount_fen for e in self.earnings)


def split_line(line: CommissionLine, rules: CommissionRules, credited: Credited) -> LineSplit:
    """Each credited payee's share of one line. The total never passes the cap: rates are checked
    against it when the rules are saved, and fixed amounts that would pass it are scaled down to it
    in proportion (largest remainder, so the scaled parts sum exactly to the cap)."""
    if line.qty <= 0 or line.base_fen < 0:
        raise ValidationFailed("a commission line has units and a base of 0 or more", sku=line.sku)
    shares = rules.shares_for(line.sku, line.category, credited.guide_id)
    payees = [(role, payee) for role, payee in credited.payees().items() if role in shares]
    amounts = [shares[role].amount_fen(line.base_fen, line.qty) for role, _ in payees]
    cap_fen = line.base_fen * rules.cap_bp // BASIS_POINTS
    if sum(amounts) > cap_fen:
        amounts = allocate(cap_fen, amounts)
    earnings = tuple(
        Earning(role=role, payee_id=payee, amount_fen=amount)
        for (role, payee), amount in zip(payees, amounts, strict=True)
        if amount > 0
    )
    return LineSplit(line=line, earnings=earnings)


def clawback_fen(earned_fen: int, base_fen: int, refunded_before_fen: int, refunding_fen: int) -> int:
    """What refunding `refunding_fen` of a line whose commission base is `base_fen` takes back of
    `earned_fen`, when `refunded_before_fen` of it was refunded already: pro rata to the amount, on
    the running total (floor of earned x refunded / base), so the parts never drift and the refund
    that brings the line to zero takes the remainder. Refunding a whole line in any number of parts
    takes back exactly what was earned, never more, whatever was settled meanwhile."""
    if refunding_fen < 0 or refunded_before_fen < 0 or refunded_before_fen + refunding_fen > base_fen:
        raise ValidationFailed(
            "cannot claw back more than the line paid",
            base_fen=base_fen,
            refunded_before_fen=refunded_before_fen,
            refunding_fen=refunding_fen,
        )
    if base_fen == 0:
        return 0
    after = earned_fen * (refunded_before_fen + refunding_fen) // base_fen
    return after - earned_fen * refunded_before_fen // base_fen
