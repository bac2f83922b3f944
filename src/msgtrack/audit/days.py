"""Which days to audit: local calendar days of the configured zone, as UTC windows.

A day is ``[local midnight, next local midnight)``, converted to UTC with zoneinfo, so
a spring-forward day lasts 23 hours and a fall-back day 25, and one day's end is
exactly the next day's start: consecutive days never overlap and never leave a gap.
A midnight that does not exist (a DST jump at 00:00) maps to the instant of the jump.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from msgtrack.errors import UsageError

ONE_DAY = timedelta(days=1)


def _midnight_utc(day: date, tz: ZoneInfo) -> datetime:
    # fold=0: for a midnight inside a DST gap zoneinfo uses the offset before the jump,
    # which lands on the jump itself; for a repeated midnight, the first one.
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(timezone.utc)


def day_window(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """``(start, end)`` of a local day in aware UTC; end is exclusive."""
    return _midnight_utc(day, tz), _midnight_utc(day + ONE_DAY, tz)


def latest_complete_day(now: datetime, tz: ZoneInfo, settle: timedelta = timedelta(0)) -> date:
    """The last local day whose end lies at least ``settle`` before ``now``."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    day = (now - settle).astimezone(tz).date() - ONE_DAY
    while day_window(day, tz)[1] + settle > now:  # pragma: no cover - settle < 1 day
        day -= ONE_DAY
    return day


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"not a day: {text!r}", hint="use YYYY-MM-DD, e.g. 2026-11-25") from None


def days_to_run(recorded: Mapping[date, str], *, first_day: date, latest: date,
                max_retry_days: int) -> list[date]:
    """Days from ``first_day`` through ``latest`` that still need a run, oldest first.

    ``recorded`` maps a day to its status: ``complete``, ``incomplete`` or ``pending``
    (outputs were being replaced when a run stopped). A day with no record or a
    ``pending`` one is always run; an incomplete one is retried while it is at most
    ``max_retry_days`` old. So missed nights are caught up one day at a time and no day
    between ``first_day`` and ``latest`` is ever skipped.
    """
    retry_from = latest - timedelta(days=max_retry_days)
    out = []
    day = first_day
    while day <= latest:
        status = recorded.get(day)
        if status is None or status == "pending" or (
                status == "incomplete" and day >= retry_from):
            out.append(day)
        day += ONE_DAY
    # A pending day before first_day (an interrupted --day re-run) is finished too.
    out += [d for d, s in recorded.items() if s == "pending" and d < first_day]
    return sorted(set(out))
