"""The platform's clock. Everything asks ``now()`` here so tests and demos can move time."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from app.core.config import get_settings

_offset = timedelta(0)
_frozen: datetime | None = None


def now() -> datetime:
    if _frozen is not None:
        return _frozen
    return datetime.now(UTC) + _offset


def freeze(moment: datetime | None) -> None:
    """Stop the clock at ``moment`` (tests of exact boundaries); ``None`` lets it run again."""
    global _frozen
    _frozen = moment


def set_offset(delta: timedelta) -> None:
    """Move the clock (tests, demos). ``timedelta(0)`` puts it back."""
    global _offset
    _offset = delta


def zone() -> ZoneInfo:
    return ZoneInfo(get_settings().timezone)


def local_day(moment: datetime) -> date:
    """The calendar day of ``moment`` in the platform's time zone (daily caps, reports)."""
    return moment.astimezone(zone()).date()


def today() -> date:
    return local_day(now())
