"""The authority's calendar table and the national carbon market's closing prices (HB 17)."""

import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth.principal import Principal
from app.cer import calendar, repository
from app.cer.exceptions import (
    FutureDate,
    InvalidDate,
    InvalidPrice,
    InvalidRange,
    NotATradingDay,
    NotEnoughPrices,
)
from app.cer.models import CerCalendarDay, CerPrice
from app.cer.schemas import CalendarEntryIn, PriceIn
from app.core import audit, clock

REFERENCE_DAYS = 10
MAX_CALENDAR_SPAN = 366
_YUAN = re.compile(r"^\d{1,9}(\.\d{1,2})?$")
FIRST_DAY, LAST_DAY = date(1990, 1, 1), date(2199, 12, 31)


def _check_days(*days: date) -> None:
    for day in days:
        if not FIRST_DAY <= day <= LAST_DAY:
            raise InvalidDate(f"{day} is outside {FIRST_DAY} … {LAST_DAY}")


# --- calendar -------------------------------------------------------------------------------


async def set_day(session: AsyncSession, principal: Principal, data: CalendarEntryIn) -> dict[str, Any]:
    """Declare a day a working day or a day off; the table wins over the package for that date."""
    _check_days(data.date)
    previous = await session.get(CerCalendarDay, data.date)
    await session.execute(
        sa.text(
            "INSERT INTO cer_calendar_days (day, workday, note, updated_by, updated_at)"
            " VALUES (:d, :w, :n, :by, :at) ON CONFLICT (day) DO UPDATE"
            " SET workday = EXCLUDED.workday, note = EXCLUDED.note, updated_by = EXCLUDED.updated_by,"
            " updated_at = EXCLUDED.updated_at"
        ),
        {"d": data.date, "w": data.workday, "n": data.note, "by": principal.actor, "at": clock.now()},
    )
    audit.record(
        session, actor=principal.actor, action="cer.calendar_set", subject_type="cer_calendar",
        subject_id=data.date.isoformat(),
        data={"workday": data.workday, "note": data.note, "previous": previous.workday if previous else None},
    )
    return (await days(session, data.date, data.date))[0]


async def days(session: AsyncSession, start: date, end: date) -> list[dict[str, Any]]:
    _check_days(start, end)
    if end < start or (end - start).days >= MAX_CALENDAR_SPAN:
        raise InvalidRange(f"from … to spans 1 to {MAX_CALENDAR_SPAN} days")
    overrides = await repository.calendar_overrides(session, start, end)
    notes = dict(
        (
            await session.execute(
                select(CerCalendarDay.day, CerCalendarDay.note).where(
                    col(CerCalendarDay.day).between(start, end)
                )
            )
        ).all()
    )
    out = []
    day = start
    while day <= end:
        out.append(
            {
                "date": day,
                "workday": calendar.is_workday(day, overrides),
                "trading_day": calendar.is_trading_day(day, overrides),
                "source": calendar.source(day, overrides),
                "note": notes.get(day),
            }
        )
        day += timedelta(days=1)
    return out


# --- prices ---------------------------------------------------------------------------------


def to_fen(data: PriceIn) -> int:
    if (data.price_fen is None) == (data.price is None):
        raise InvalidPrice("give exactly one of price_fen and price")
    if data.price_fen is not None:
        fen = data.price_fen
    else:
        assert data.price is not None
        if not _YUAN.match(data.price.strip()):
            raise InvalidPrice(f"{data.price!r} is not a price in yuan like 78.45")
        fen = int(Decimal(data.price.strip()) * 100)
    if fen <= 0:
        raise InvalidPrice("a closing price is positive")
    return fen


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _price_view(p: CerPrice) -> dict[str, Any]:
    return {"date": p.day, "price_fen": p.price_fen, "price": yuan(p.price_fen), "recorded_at": p.recorded_at}


async def record_price(session: AsyncSession, principal: Principal, data: PriceIn) -> dict[str, Any]:
    """Record (or correct) a day's closing price; only trading days have one."""
    fen = to_fen(data)
    _check_days(data.date)
    if data.date > clock.today():
        raise FutureDate(f"{data.date} is not over yet")
    overrides = await repository.calendar_overrides(session, data.date, data.date)
    if not calendar.is_trading_day(data.date, overrides):
        raise NotATradingDay(f"{data.date} is a weekend day or a holiday")
    previous = await session.get(CerPrice, data.date)
    await session.execute(
        sa.text(
            "INSERT INTO cer_prices (day, price_fen, recorded_by, recorded_at) VALUES (:d, :p, :by, :at)"
            " ON CONFLICT (day) DO UPDATE SET price_fen = EXCLUDED.price_fen,"
            " recorded_by = EXCLUDED.recorded_by, recorded_at = EXCLUDED.recorded_at"
        ),
        {"d": data.date, "p": fen, "by": principal.actor, "at": clock.now()},
    )
    audit.record(
        session, actor=principal.actor, action="cer.price_recorded", subject_type="cer_price",
        subject_id=data.date.isoformat(), data={"price_fen": fen, "previous": previous.price_fen if previous else None},
    )
    row = await session.get(CerPrice, data.date, populate_existing=True)
    assert row is not None
    return _price_view(row)


async def list_prices(session: AsyncSession, start: date, end: date) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(CerPrice).where(col(CerPrice.day).between(start, end)).order_by(col(CerPrice.day).desc())
    )
    return [_price_view(p) for p in rows.scalars()]


async def reference_price(session: AsyncSession, on: date) -> dict[str, Any]:
    """The average closing price of the 10 trading days before ``on`` (HB 17); each needs a price."""
    _check_days(on)
    overrides = await repository.calendar_overrides(session, *calendar.span_before(on))
    wanted = calendar.trading_days_before(on, REFERENCE_DAYS, overrides)
    rows = await session.execute(select(CerPrice).where(col(CerPrice.day).in_(wanted)))
    prices = {p.day: p for p in rows.scalars()}
    missing = [d for d in wanted if d not in prices]
    if len(wanted) < REFERENCE_DAYS or missing:
        raise NotEnoughPrices(
            f"{len(wanted) - len(missing)} of the {REFERENCE_DAYS} trading days before {on} have a closing price",
            missing=[d.isoformat() for d in missing],
        )
    total = sum(prices[d].price_fen for d in wanted)
    average = Decimal(total) / REFERENCE_DAYS
    return {
        "on": on,
        "average_price": f"{average / 100:.3f}",
        "average_fen": total // REFERENCE_DAYS,
        "dates": wanted,
        "prices": [_price_view(prices[d]) for d in wanted],
    }
