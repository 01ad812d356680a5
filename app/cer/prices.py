"""The authority's calendar table and the national carbon market's closing prices (HB 17)."""

import re
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

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
from app.cer.models import CerPrice
from app.cer.schemas import CalendarDay, CalendarEntryIn, PriceIn, PriceRead, ReferencePrice
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


async def set_day(session: AsyncSession, principal: Principal, data: CalendarEntryIn) -> CalendarDay:
    """Declare a day a working day or a day off; the table wins over the package for that date."""
    _check_days(data.date)
    previous = await repository.workday_of(session, data.date)
    await repository.set_calendar_day(
        session, data.date, data.workday, data.note, principal.actor, clock.now()
    )
    audit.record(
        session,
        actor=principal.actor,
        action="cer.calendar_set",
        subject_type="cer_calendar",
        subject_id=data.date.isoformat(),
        data={"workday": data.workday, "note": data.note, "previous": previous},
    )
    return (await days(session, data.date, data.date))[0]


async def days(session: AsyncSession, start: date, end: date) -> list[CalendarDay]:
    _check_days(start, end)
    if end < start or (end - start).days >= MAX_CALENDAR_SPAN:
        raise InvalidRange(f"from … to spans 1 to {MAX_CALENDAR_SPAN} days")
    entries = await repository.calendar_entries(session, start, end)
    overrides = {e.day: e.workday for e in entries}
    notes = {e.day: e.note for e in entries}
    out = []
    day = start
    while day <= end:
        out.append(
            CalendarDay(
                date=day,
                workday=calendar.is_workday(day, overrides),
                trading_day=calendar.is_trading_day(day, overrides),
                source=calendar.source(day, overrides),
                note=notes.get(day),
            )
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


def _price_view(p: CerPrice) -> PriceRead:
    return PriceRead(date=p.day, price_fen=p.price_fen, price=yuan(p.price_fen), recorded_at=p.recorded_at)


async def record_price(session: AsyncSession, principal: Principal, data: PriceIn) -> PriceRead:
    """Record (or correct) a day's closing price; only trading days have one."""
    fen = to_fen(data)
    _check_days(data.date)
    if data.date > clock.today():
        raise FutureDate(f"{data.date} is not over yet")
    overrides = await repository.calendar_overrides(session, data.date, data.date)
    if not calendar.is_trading_day(data.date, overrides):
        raise NotATradingDay(f"{data.date} is a weekend day or a holiday")
    previous = await repository.price_fen(session, data.date)
    row = await repository.set_price(session, data.date, fen, principal.actor, clock.now())
    audit.record(
        session,
        actor=principal.actor,
        action="cer.price_recorded",
        subject_type="cer_price",
        subject_id=data.date.isoformat(),
        data={"price_fen": fen, "previous": previous},
    )
    return _price_view(row)


async def list_prices(session: AsyncSession, start: date, end: date) -> list[PriceRead]:
    return [_price_view(p) for p in await repository.prices_between(session, start, end)]


async def reference_price(session: AsyncSession, on: date) -> ReferencePrice:
    """The average closing price of the 10 trading days before ``on`` (HB 17); each needs a price."""
    _check_days(on)
    overrides = await repository.calendar_overrides(session, *calendar.span_before(on))
    wanted = calendar.trading_days_before(on, REFERENCE_DAYS, overrides)
    prices = {p.day: p for p in await repository.prices_on(session, wanted)}
    missing = [d for d in wanted if d not in prices]
    if len(wanted) < REFERENCE_DAYS or missing:
        raise NotEnoughPrices(
            f"{len(wanted) - len(missing)} of the {REFERENCE_DAYS} trading days before {on} have a closing price",
            missing=[d.isoformat() for d in missing],
        )
    total = sum(prices[d].price_fen for d in wanted)
    average = Decimal(total) / REFERENCE_DAYS
    return ReferencePrice(
        on=on,
        average_price=f"{average / 100:.3f}",
        average_fen=total // REFERENCE_DAYS,
        dates=wanted,
        prices=[_price_view(prices[d]) for d in wanted],
    )
