"""Which days an audit runs, and the exact UTC window of each (DST included)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from msgtrack.audit.days import day_window, days_to_run, latest_complete_day, parse_day
from msgtrack.errors import UsageError

BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc


@pytest.mark.parametrize(("day", "hours", "start"), [
    (date(2026, 3, 29), 23, "2026-03-28T23:00:00+00:00"),   # spring forward
    (date(2026, 10, 25), 25, "2026-10-24T22:00:00+00:00"),  # fall back
    (date(2026, 7, 1), 24, "2026-06-30T22:00:00+00:00"),
    (date(2026, 12, 1), 24, "2026-11-30T23:00:00+00:00"),
])
def test_berlin_days_have_23_24_25_hours(day: date, hours: int, start: str) -> None:
    lo, hi = day_window(day, BERLIN)
    assert lo == datetime.fromisoformat(start)
    assert hi - lo == timedelta(hours=hours)


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/Sao_Paulo", "Asia/Beirut",
                                  "Australia/Lord_Howe", "UTC"])
def test_consecutive_days_tile_time_without_gap_or_overlap(zone: str) -> None:
    # Lord Howe shifts by 30 minutes; Sao Paulo (until 2019) and Beirut jump at midnight,
    # where the local midnight does not exist.
    tz = ZoneInfo(zone)
    day = date(2017, 1, 1)
    _, end = day_window(day, tz)
    for _ in range(3 * 366):
        day += timedelta(days=1)
        start, nxt = day_window(day, tz)
        assert start == end
        assert timedelta(hours=22) <= nxt - start <= timedelta(hours=26)
        end = nxt


def test_latest_complete_day_waits_for_the_settle_margin() -> None:
    settle = timedelta(minutes=30)
    # Berlin's 2026-11-27 ends at 23:00Z.
    assert latest_complete_day(datetime(2026, 11, 27, 23, 29, tzinfo=UTC), BERLIN,
                               settle) == date(2026, 11, 26)
    assert latest_complete_day(datetime(2026, 11, 27, 23, 30, tzinfo=UTC), BERLIN,
                               settle) == date(2026, 11, 27)


def test_missed_nights_are_caught_up_oldest_first() -> None:
    recorded = {date(2026, 11, 24): "complete"}
    assert days_to_run(recorded, first_day=date(2026, 11, 24), latest=date(2026, 11, 27),
                       max_retry_days=7) == [date(2026, 11, 25), date(2026, 11, 26),
                                             date(2026, 11, 27)]


def test_incomplete_days_are_retried_within_the_window_and_pending_always() -> None:
    recorded = {date(2026, 11, 1): "incomplete", date(2026, 11, 20): "incomplete",
                date(2026, 11, 21): "pending", date(2026, 11, 22): "complete",
                date(2026, 10, 1): "pending"}
    todo = days_to_run(recorded, first_day=date(2026, 11, 1), latest=date(2026, 11, 22),
                       max_retry_days=7)
    assert date(2026, 11, 1) not in todo  # given up, stays incomplete
    assert todo[:2] == [date(2026, 10, 1), date(2026, 11, 2)]  # a pending --day re-run
    assert date(2026, 11, 20) in todo and date(2026, 11, 21) in todo
    assert date(2026, 11, 22) not in todo
    assert todo == sorted(todo)


def test_parse_day() -> None:
    assert parse_day("2026-11-25") == date(2026, 11, 25)
    with pytest.raises(UsageError):
        parse_day("25.11.2026")
