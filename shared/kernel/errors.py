"""Domain exceptions.

Domain and service code raise these; the data-access layer turns SDK errors into them
(`raise ... from exc`); `shared.web.problems` maps each class to an HTTP status once.
A `code` is part of the API contract (API.md); `details` carries machine-readable context.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "DOMAIN_ERROR"
    retry_after_s: int | None = None  # when set, the answer says when to try again (Retry-After)

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


# 400 / 401 / 403 / 404
class MalformedRequest(DomainError):
    code = "MALFORMED_REQUEST"


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class NotFound(DomainError):
    code = "NOT_FOUND"


# 409: the request conflicts with the current state.
class Conflict(DomainError):
    code = "CONFLICT"


class OutOfStock(Conflict):
    code = "OUT_OF_STOCK"


class SoldOut(Conflict):
    code = "SOLD_OUT"


class NotStarted(Conflict):
    code = "NOT_STARTED"


class Ended(Conflict):
    code = "ENDED"


class SaleCancelled(Conflict):
    """A flash sale its merchant cancelled: it sells nothing more (docs/flash-sales.md)."""

    code = "FLASH_SALE_CANCELLED"


class InvalidTransition(Conflict):
    code = "INVALID_TRANSITION"


class ConcurrentUpdate(Conflict):
    """Someone else changed the item between our read and our conditional write."""

    code = "CONCURRENT_UPDATE"


class CouponExhausted(Conflict):
    code = "EXHAUSTED"


class InsufficientPoints(Conflict):
    """The member's available points are fewer than the order spends (nothing was taken)."""

    code = "INSUFFICIENT_POINTS"


class CouponInUse(Conflict):
    """The coupon is LOCKED to an unpaid order (another one, or the same cart placed twice)."""

    code = "COUPON_IN_USE"


class CouponNotAvailable(Conflict):
    """The coupon was used, redeemed in a store, or has expired (`details.status`)."""

    code = "COUPON_NOT_AVAILABLE"


class CouponExpired(CouponNotAvailable):
    code = "COUPON_EXPIRED"


class ReversalWindowClosed(Conflict):
    code = "REVERSAL_WINDOW_CLOSED"


class AlreadyReversed(Conflict):
    code = "ALREADY_REVERSED"


class OnHandBelowReserved(Conflict):
    """A stock count below the units already held by orders would break available >= 0."""

    code = "ON_HAND_BELOW_RESERVED"


# 422: well-formed, but breaks a rule.
class RuleViolation(DomainError):
    code = "RULE_VIOLATION"


class ValidationFailed(RuleViolation):
    code = "VALIDATION_FAILED"


class IdempotencyKeyReused(RuleViolation):
    code = "IDEMPOTENCY_KEY_REUSED"


class AmountMismatch(RuleViolation):
    code = "AMOUNT_MISMATCH"


class OrderTooLarge(RuleViolation):
    """The total is above what one payment carries (shared.kernel.values.MAX_AMOUNT_FEN)."""

    code = "ORDER_TOO_LARGE"


class UnknownSku(RuleViolation):
    """A cart names a SKU the catalogue does not have (the SKU is in the body, not the path)."""

    code = "UNKNOWN_SKU"


class DuplicateSku(RuleViolation):
    code = "DUPLICATE_SKU"


class UnknownCoupon(RuleViolation):
    code = "UNKNOWN_COUPON"


class CouponNotUsable(RuleViolation):
    """The coupon exists and is the caller's, but not for this (`details.reason`: online_only,
    store_not_allowed, below_threshold, out_of_scope, not_stackable, ...)."""

    code = "COUPON_NOT_USABLE"


class VerificationCodeRequired(RuleViolation):
    """A customer redeeming in a store must give the store's current verification code."""

    code = "VERIFICATION_CODE_REQUIRED"


class WrongVerificationCode(RuleViolation):
    code = "WRONG_VERIFICATION_CODE"


class UnknownLocation(RuleViolation):
    code = "UNKNOWN_LOCATION"


class UnknownStore(UnknownLocation):
    code = "UNKNOWN_STORE"


class FulfilmentRequired(RuleViolation):
    """A flash order without `fulfilment` from a customer with no saved default address."""

    code = "FULFILMENT_REQUIRED"


class SameCityUnavailable(RuleViolation):
    """No store delivers same-city to this address."""

    code = "SAME_CITY_UNAVAILABLE"


# 429
class LimitReached(DomainError):
    code = "LIMIT_REACHED"


class TooManyAttempts(LimitReached):
    """Too many wrong codes in a window: refused whatever the code, until `retry_after_s` seconds
    have passed (answered with a Retry-After header)."""

    code = "TOO_MANY_ATTEMPTS"

    def __init__(self, message: str, retry_after_s: int, **details: Any) -> None:
        super().__init__(message, retry_after_s=retry_after_s, **details)
        self.retry_after_s = retry_after_s


# 503: nothing changed; the client may retry.
class TemporarilyUnavailable(DomainError):
    code = "TEMPORARILY_UNAVAILABLE"


class BadSignature(Unauthenticated):
    code = "BAD_SIGNATURE"


class WrongPickupCode(RuleViolation):
    code = "WRONG_PICKUP_CODE"
