"""Working days and trading days (SZ 16, HB 11: publicity of at least 7 working days; HB 17: prices).

A day's status comes from, in order: the authority's calendar table (``cer_calendar_days``, for
years the package does not know yet, or to correct it), the ``chinesecalendar`` package (holidays
and the adjusted weekends, 调休), and failing both plain weekends. A *trading day* of the national
carbon market is a working day that is not a Saturday or Sunday: the exchange stays closed on the
adjusted weekend days that are working days for offices.

The functions here are pure: the caller loads the table's entries for the dates concerned
(:func:`app.cer.repository.calendar_overrides`) and passes them as ``overrides``.
"""

from collections.abc import Mapping
from datetime import date, timedelta

import chinese_calendar

from app.cer.models import DaySource

PUBLICITY_WORKING_DAYS = 7
LOOKAHEAD_DAYS = 366
"""How far any search through the calendar goes (no year has that many days off in a row)."""


def source(day: date, overrides: Mapping[date, bool]) -> DaySource:
    """Who says whether ``day`` is a working day: ``table``, ``chinese_calendar`` or ``weekend_rule``."""
    if day in overrides:
        return DaySource.table
    try:
        chinese_calendar.is_workday(day)
    except NotImplementedError:
        return DaySource.weekend_rule
    return DaySource.chinese_calendar


def is_workday(day: date, overrides: Mapping[date, bool]) -> bool:
    if day in overrides:
        return overrides[day]
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


def is_trading_day(day: date, overrides: Mapping[date, bool]) -> bool:
    return day.weekday() < 5 and is_workday(day, overrides)


def nth_workday_after(start: date, n: int, overrides: Mapping[date, bool]) -> date:
    """The ``n``-th working day strictly after ``start`` (``start`` itself never counts)."""
    day, found = start, 0
    for _ in range(LOOKAHEAD_DAYS * max(1, n)):
        day += timedelta(days=1)
        if is_workday(day, overrides):
            found += 1
            if found == n:
                return day
    raise ValueError(f"no {n} working days within reach after {start}")


def publicity_end(start: date, overrides: Mapping[date, bool]) -> date:
    """The last day of a publicity that starts on ``start``: 7 full working days after it."""
    return nth_workday_after(start, PUBLICITY_WORKING_DAYS, overrides)


def trading_days_before(before: date, n: int, overrides: Mapping[date, bool]) -> list[date]:
    """The ``n`` trading days strictly before ``before``, the most recent first."""
    days: list[date] = []
    day = before
    for _ in range(LOOKAHEAD_DAYS):
        day -= timedelta(days=1)
        if is_trading_day(day, overrides):
            days.append(day)
            if len(days) == n:
                break
    return days


def span_for_publicity(start: date) -> tuple[date, date]:
    """The dates whose table entries a publicity starting on ``start`` may need."""
    return start, start + timedelta(days=LOOKAHEAD_DAYS)


def span_before(before: date) -> tuple[date, date]:
    return before - timedelta(days=LOOKAHEAD_DAYS), before
