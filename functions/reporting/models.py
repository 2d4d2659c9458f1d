"""Query parameters of the report routes (docs/openapi.yaml states the same constraints): anything
else is 400."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from shared.kernel.errors import MalformedRequest
from shared.reporting.reports import GROUP_BY

ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]{1,6})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
MAX_DAYS = 366  # a report covers at most a (leap) year of days


def period_end_ms(value: str | None) -> int:
    """`?period_end=`: an RFC 3339 date-time with its offset, from 1970 on (UTC). A number is not a
    time (pydantic would read "0.5" as epoch seconds)."""
    if value is None:
        raise MalformedRequest("?period_end= is required (an ISO-8601 date-time)", param="period_end")
    if not DATE_TIME.fullmatch(value):
        raise MalformedRequest("?period_end= must be an ISO-8601 date-time with its offset", param="period_end")
    try:
        when = datetime.fromisoformat(value.upper()).astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise MalformedRequest("?period_end= is not a time", param="period_end") from exc
    if when.year < 1970:
        raise MalformedRequest("?period_end= must be in 1970 or later", param="period_end")
    return int(when.timestamp() * 1000)


def _day(name: str, value: str | None) -> date:
    if value is None or not ISO_DATE.fullmatch(value):
        raise MalformedRequest(f"?{name}= must be an ISO date (yyyy-mm-dd)", param=name)
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise MalformedRequest(f"?{name}= is not a date", param=name) from exc


def sales_range(first: str | None, last: str | None) -> tuple[str, str]:
    """`?from=` and `?to=`: ISO dates, from <= to, at most MAX_DAYS days (both included)."""
    start, end = _day("from", first), _day("to", last)
    if start > end:
        raise MalformedRequest("?from= is after ?to=", param="from")
    if (end - start).days + 1 > MAX_DAYS:
        raise MalformedRequest(f"a report covers at most {MAX_DAYS} days", param="to", max_days=MAX_DAYS)
    return start.isoformat(), end.isoformat()


def group_by(value: str | None) -> str:
    if value not in GROUP_BY:
        raise MalformedRequest("?group_by= must be store, guide, dealer or day", param="group_by")
    return value


def wants_csv(accept: str | None) -> bool:
    """`Accept: text/csv` (alone or first among equals) asks for CSV; anything else gets JSON."""
    if not accept:
        return False
    kinds = [part.split(";", 1)[0].strip().lower() for part in accept.split(",")]
    return "text/csv" in kinds and (
        "application/json" not in kinds or kinds.index("text/csv") < kinds.index("application/json")
    )


def differences_after(cursor: dict[str, Any] | None) -> tuple[int, str] | None:
    """The (booked at, order id) the reconciliation's `next_cursor` ends at; 400 for a cursor of another list."""
    if cursor is None:
        return None
    at, order_id = cursor.get("at"), cursor.get("order_id")
    if type(at) is not int or not isinstance(order_id, str) or not order_id:
        raise MalformedRequest("cursor is not one this API gave out for the differences")
    return at, order_id
