"""`GET /admin/reports/membership?from=&to=`: the days of the paid-membership ratios
(docs/membership.md, "Reports: paid membership"). ISO dates, both days included, at most 366;
both or neither. The days are the merchant's (the report turns them into instants)."""

from __future__ import annotations

import re
from datetime import date

from shared.kernel.errors import MalformedRequest

ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MAX_DAYS = 366


def _day(name: str, value: str) -> date:
    if not ISO_DATE.fullmatch(value):
        raise MalformedRequest(f"?{name}= must be an ISO date (yyyy-mm-dd)", param=name)
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise MalformedRequest(f"?{name}= is not a date", param=name) from exc
    if not 1971 <= day.year <= 9998:  # instants on either side of the merchant's day stay representable
        raise MalformedRequest(f"?{name}= must be a year from 1971 to 9998", param=name)
    return day


def paid_days(first: str | None, last: str | None) -> tuple[date, date] | None:
    """None without either (the report answers its counts alone, as before); 400 with one only."""
    if first is None and last is None:
        return None
    if first is None or last is None:
        missing = "from" if first is None else "to"
        raise MalformedRequest("?from= and ?to= go together", param=missing)
    start, end = _day("from", first), _day("to", last)
    if start > end:
        raise MalformedRequest("?from= is after ?to=", param="from")
    if (end - start).days + 1 > MAX_DAYS:
        raise MalformedRequest(f"a report covers at most {MAX_DAYS} days", param="to", max_days=MAX_DAYS)
    return start, end
