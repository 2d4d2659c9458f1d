"""Redeeming a coupon in a store (线下核销), and an admin's reversal of a redemption.

Who may redeem: the store's staff or one of its guides, scanning or typing the customer's code; or
the customer, who must give the store's current verification code (mandatory: a request without it
is refused, never waved through). Only at stores the coupon allows, only through the offline
channel, only while AVAILABLE and inside its use window, and exactly once under any concurrency:
the coupon's move to REDEEMED_OFFLINE is conditional on the status and version read, in ONE
transaction with the redemption record (store, who, when, the purchase amount), the template's
tally, the CouponRedeemedOffline event and the idempotency record. docs/coupons.md, "In the store".

A customer's wrong verification codes are counted (`shared.coupons.wrong_codes`): past the limit
every self-redemption is 429 TOO_MANY_ATTEMPTS until the window ends, a right code included.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from shared.coupons.model import (
    Action,
    Coupon,
    Redemption,
    Status,
    new_redemption_id,
    normalise_code,
    verification_code,
    verification_matches,
    verification_valid_until_ms,
)
from shared.coupons.ports import CouponPorts, Cursor, TooManyWrongCodes
from shared.coupons.wrong_codes import WrongCodeCounter, WrongCodeLimit, attempts_left, beyond, locked
from shared.kernel.clock import iso
from shared.kernel.errors import (
    AlreadyReversed,
    ConcurrentUpdate,
    DomainError,
    Forbidden,
    NotFound,
    ReversalWindowClosed,
    TooManyAttempts,
    VerificationCodeRequired,
    WrongVerificationCode,
)
from shared.kernel.events import DomainEvent, EventType
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.kernel.identity import STORE_ROLES, Principal, Role

ATTEMPTS = 4


@dataclass(frozen=True)
class OfflineRedemption:
    store_id: str
    code: str
    purchase_fen: int | None = None  # the purchase the coupon is used on, checked against a threshold
    verification_code: str | None = None  # the store's rotating code: required when a customer redeems


@dataclass(frozen=True)
class _Verified:
    """A customer's right verification code: the counters it was checked under (the transaction
    checks them again) and the coupon id its code names, read with them (None: no such code)."""

    counters: tuple[WrongCodeCounter, ...]
    coupon_id: str | None


def require_store_member(store_id: str, who: Principal) -> None:
    if who.role not in STORE_ROLES or who.store_id != store_id:
        raise Forbidden("only this store's staff and guides may do this", store_id=store_id)


def store_verification_code(store_id: str, who: Principal, ports: CouponPorts) -> dict[str, Any]:
    """The code a customer types to redeem a coupon in this store themselves; it changes every
    `verification_step_s` seconds (the previous one is still accepted)."""
    require_store_member(store_id, who)
    now = ports.clock.now_ms()
    step_s = ports.policy.verification_step_s
    return {
        "store_id": store_id,
        "verification_code": verification_code(ports.verification_key, store_id, step_s, now),
        "valid_until": iso(verification_valid_until_ms(step_s, now)),
    }


def redeem_offline(
    cmd: OfflineRedemption, who: Principal, request: IdempotentRequest, ports: CouponPorts
) -> StoredResponse:
    """201 and the redemption, or: Forbidden (403: not this store's staff or guide), NotFound
    (404: no such store, no such code, or a customer's code that is not theirs),
    VerificationCodeRequired / WrongVerificationCode (422, customers), TooManyAttempts (429,
    customers past the limit of wrong codes), CouponNotUsable (422: online only, not at this store,
    below the threshold), CouponInUse / CouponNotAvailable / CouponExpired / NotStarted (409)."""
    verified = _authorise(cmd, who, ports)
    try:
        return _redeem(cmd, who, request, ports, verified)
    except DomainError:
        # A replay of a redemption that succeeded finds the coupon REDEEMED_OFFLINE: it gets its answer.
        stored = ports.replay(request) if request.client_supplied else None
        if stored is not None:
            return stored
        raise


def _redeem(
    cmd: OfflineRedemption, who: Principal, request: IdempotentRequest, ports: CouponPorts, verified: _Verified | None
) -> StoredResponse:
    for attempt in range(ATTEMPTS):
        if verified is not None and attempt == 0:  # its code was read with the counters
            found = ports.coupons.get(verified.coupon_id) if verified.coupon_id is not None else None
        else:
            found = ports.coupons.by_code(normalise_code(cmd.code))
        coupon = _theirs(found, who)
        now = ports.clock.now_ms()
        coupon.check_offline(cmd.store_id, now, cmd.purchase_fen)
        redemption = Redemption(
            redemption_id=new_redemption_id(now),
            coupon_id=coupon.coupon_id,
            template_id=coupon.template_id,
            customer_id=coupon.customer_id,
            store_id=cmd.store_id,
            redeemed_by=who.sub,
            redeemed_by_role=str(who.role),
            redeemed_at_ms=now,
            purchase_fen=cmd.purchase_fen,
        )
        after = coupon.moved(Action.REDEEM, now, redemption_id=redemption.redemption_id)
        uow = ports.unit_of_work()
        uow.move(coupon, after)
        uow.add_redemption(redemption)
        uow.emit(_redeemed_event(redemption))
        if verified is not None:
            uow.check_wrong_codes(verified.counters)
        try:
            return uow.commit_once(request, StoredResponse(201, redemption.view()))
        except ConcurrentUpdate:
            continue  # someone moved the coupon first: read it again, and refuse with the reason
        except TooManyWrongCodes:
            raise _too_many(cmd.store_id, ports) from None
    raise ConcurrentUpdate("the coupon keeps changing; retry", code=cmd.code)


def _authorise(cmd: OfflineRedemption, who: Principal, ports: CouponPorts) -> _Verified | None:
    """Staff and guides: theirs is the store (None). A customer: the store's verification code,
    under the limit of wrong codes (the code's coupon id, read with the counters)."""
    if who.role is not Role.CUSTOMER:
        require_store_member(cmd.store_id, who)
        _require_store(cmd.store_id, ports)
        return None
    if not cmd.verification_code:
        raise VerificationCodeRequired("give the store's verification code", store_id=cmd.store_id)
    _require_store(cmd.store_id, ports)  # before counting: no counter for a store that does not exist
    now = ports.clock.now_ms()
    counters = wrong_code_limit(ports).counters(who.sub, cmd.store_id, now)
    coupon_id, counts = ports.wrong_codes.read(normalise_code(cmd.code), counters)
    if locked(counters, counts) is not None:
        raise _too_many(cmd.store_id, ports)
    step_s = ports.policy.verification_step_s
    if not verification_matches(ports.verification_key, cmd.store_id, step_s, now, cmd.verification_code):
        after = ports.wrong_codes.count(counters)  # counted, never the coupon: it is not even read
        if beyond(counters, after) is not None:
            raise _too_many(cmd.store_id, ports)
        raise WrongVerificationCode(
            "that is not this store's verification code",
            store_id=cmd.store_id,
            attempts_left=attempts_left(counters, after),
        )
    return _Verified(counters, coupon_id)


def wrong_code_limit(ports: CouponPorts) -> WrongCodeLimit:
    policy = ports.policy
    return WrongCodeLimit(policy.wrong_code_window_s, policy.wrong_codes_per_customer, policy.wrong_codes_per_store)


def _too_many(store_id: str, ports: CouponPorts) -> TooManyAttempts:
    retry_after_s = wrong_code_limit(ports).retry_after_s(ports.clock.now_ms())
    return TooManyAttempts(
        "too many wrong verification codes; ask the store's staff, or try again later",
        retry_after_s=retry_after_s,
        store_id=store_id,
    )


def _require_store(store_id: str, ports: CouponPorts) -> None:
    if not ports.stores.is_store(store_id):
        raise NotFound("no such store", store_id=store_id)


def _theirs(coupon: Coupon | None, who: Principal) -> Coupon:
    if coupon is None or (who.role is Role.CUSTOMER and coupon.customer_id != who.sub):
        raise NotFound("no such coupon code")
    return coupon


def _redeemed_event(redemption: Redemption) -> DomainEvent:
    return DomainEvent(EventType.COUPON_REDEEMED_OFFLINE, redemption.coupon_id, redemption.view())


def reverse_redemption(redemption_id: str, reason: str, who: Principal, ports: CouponPorts) -> dict[str, Any]:
    """A merchant admin undoes a redemption within `reversal_window_s` of it: the coupon goes back
    to AVAILABLE (EXPIRED if its use window has passed meanwhile), the reversal is recorded on the
    redemption (who, when, why) with a CouponRedemptionReversed event, once."""
    who.require(Role.MERCHANT_ADMIN)
    for _ in range(ATTEMPTS):
        redemption = ports.coupons.redemption(redemption_id)
        if redemption is None:
            raise NotFound("no such redemption", redemption_id=redemption_id)
        if redemption.reversed_at_ms is not None:
            raise AlreadyReversed("this redemption was reversed", redemption_id=redemption_id)
        now = ports.clock.now_ms()
        closes = redemption.redeemed_at_ms + ports.policy.reversal_window_s * 1000
        if now >= closes:
            raise ReversalWindowClosed("too late to reverse this redemption", redemption_id=redemption_id)
        coupon = ports.coupons.get(redemption.coupon_id)
        if coupon is None or coupon.status is not Status.REDEEMED_OFFLINE or coupon.redemption_id != redemption_id:
            raise AlreadyReversed("the coupon is no longer held by this redemption", redemption_id=redemption_id)
        after = coupon.moved(Action.REVERSE, now, redemption_id=None)
        reversed_ = replace(redemption, reversed_at_ms=now, reversed_by=who.sub, reversal_reason=reason)
        uow = ports.unit_of_work()
        uow.move(coupon, after)
        uow.reverse_redemption(redemption, reversed_)
        uow.emit(
            DomainEvent(
                EventType.COUPON_REDEMPTION_REVERSED,
                coupon.coupon_id,
                {**reversed_.view(), "status": str(after.status)},
            )
        )
        try:
            uow.commit()
        except ConcurrentUpdate:
            continue
        return {**reversed_.view(), "coupon_status": str(after.status)}
    raise ConcurrentUpdate("the coupon keeps changing; retry", redemption_id=redemption_id)


def store_redemptions(
    store_id: str, who: Principal, limit: int, cursor: Cursor | None, ports: CouponPorts
) -> tuple[list[dict[str, Any]], Cursor | None]:
    """A store's redemptions, newest first, for its staff and guides and for merchant admins
    (NotFound, 404, for a store that does not exist: an admin's typo is not an empty list)."""
    if who.role is not Role.MERCHANT_ADMIN:
        require_store_member(store_id, who)
    elif not ports.stores.is_store(store_id):
        raise NotFound("no such store", store_id=store_id[:64])
    found, next_cursor = ports.coupons.redemptions_at(store_id, limit, cursor)
    return [r.view() for r in found], next_cursor
