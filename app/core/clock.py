"""The platform's clock. Everything asks ``now()`` here so tests and demos can move time.

Outside production the platform's clock can also be moved forward for everybody — the *sandbox
clock* (``local`` and ``test`` environments only): the offset is kept in the one row of
``platform_clock`` so every process agrees (server workers, the scheduler, CLI commands). A server
loads it at start-up and re-reads it once a second in the background (:func:`keep_fresh`), so a
request never waits for it; a CLI command loads it once (:func:`refresh`). In production the row is
never read and moving the clock is refused (:class:`SandboxClockRefused`).
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.config import get_settings
from app.core.errors import DomainError

log = logging.getLogger(__name__)

_offset = timedelta(0)
_frozen: datetime | None = None
_sandbox = timedelta(0)  # the platform_clock row's offset, as this process last read it

SANDBOX_ENVIRONMENTS = ("local", "test")
MAX_SANDBOX_OFFSET = timedelta(days=3650)
REFRESH_SECONDS = 1.0


def now() -> datetime:
    if _frozen is not None:
        return _frozen
    return datetime.now(UTC) + _offset + _sandbox


def real_now() -> datetime:
    """The time without the sandbox clock's offset (tests and demos may still move it): what browser
    sessions expire by, so moving the platform's clock forward does not sign everybody out."""
    if _frozen is not None:
        return _frozen
    return datetime.now(UTC) + _offset


def freeze(moment: datetime | None) -> None:
    """Stop the clock at ``moment`` (tests of exact boundaries); ``None`` lets it run again."""
    global _frozen
    _frozen = moment


def set_offset(delta: timedelta) -> None:
    """Move this process's clock (tests, demos). ``timedelta(0)`` puts it back."""
    global _offset
    _offset = delta


def zone() -> ZoneInfo:
    return ZoneInfo(get_settings().timezone)


def local_day(moment: datetime) -> date:
    """The calendar day of ``moment`` in the platform's time zone (daily caps, reports)."""
    return moment.astimezone(zone()).date()


def today() -> date:
    return local_day(now())


# ---- the sandbox clock ----------------------------------------------------------------------------------


class SandboxClockRefused(DomainError):
    status, code, title = 403, "sandbox_clock_refused", "The sandbox clock does not exist in production"


class InvalidAdvance(DomainError):
    status, code, title = 422, "invalid_advance", "The clock moves forward only, by at most 10 years in all"


@dataclass(frozen=True)
class SandboxClock:
    """The platform_clock row: how far the platform's clock is moved, since when and by whom."""

    offset: timedelta
    updated_at: datetime | None
    updated_by: str | None

    @property
    def platform_now(self) -> datetime:
        """The platform's time with this offset (whatever this process last read)."""
        if _frozen is not None:
            return _frozen
        return datetime.now(UTC) + _offset + self.offset


def sandbox_allowed() -> bool:
    return get_settings().environment in SANDBOX_ENVIRONMENTS


def sandbox_offset() -> timedelta:
    """The sandbox offset this process applies (zero in production)."""
    return _sandbox


def apply_sandbox(offset: timedelta) -> None:
    """Use ``offset`` in this process (nothing in production)."""
    global _sandbox
    _sandbox = offset if sandbox_allowed() else timedelta(0)


def _table() -> sa.Table:
    from app.core.models import PlatformClock

    return PlatformClock.__table__  # type: ignore[attr-defined]


async def read_sandbox(session: AsyncSession) -> SandboxClock:
    """The row as this transaction sees it (zero when the clock was never moved)."""
    t = _table()
    row = (await session.execute(sa.select(t.c.offset_seconds, t.c.updated_at, t.c.updated_by))).first()
    if row is None:
        return SandboxClock(timedelta(0), None, None)
    return SandboxClock(timedelta(seconds=row.offset_seconds), row.updated_at, row.updated_by)


async def _store(session: AsyncSession, seconds: int, actor: str, *, add: bool) -> SandboxClock:
    t = _table()
    moment = datetime.now(UTC)
    base = insert(t).values(id=1, offset_seconds=seconds, updated_at=moment, updated_by=actor)
    new_offset = (t.c.offset_seconds + base.excluded.offset_seconds) if add else base.excluded.offset_seconds
    stmt = base.on_conflict_do_update(
        index_elements=[t.c.id],
        set_={"offset_seconds": new_offset, "updated_at": moment, "updated_by": actor},
    ).returning(t.c.offset_seconds)
    total = (await session.execute(stmt)).scalar_one()
    return SandboxClock(timedelta(seconds=total), moment, actor)


async def advance(session: AsyncSession, by: timedelta, actor: str) -> SandboxClock:
    """Move the platform's clock forward by ``by`` for every process (audited); refused in production."""
    from app.core import audit

    if not sandbox_allowed():
        raise SandboxClockRefused(
            "the platform's clock can be moved only in the local and test environments, never in production"
        )
    if by <= timedelta(0) or by % timedelta(seconds=1):
        raise InvalidAdvance("the clock moves forward only, by a whole number of seconds")
    before = await read_sandbox(session)
    if before.offset + by > MAX_SANDBOX_OFFSET:
        raise InvalidAdvance(
            f"the clock can be moved at most {MAX_SANDBOX_OFFSET.days} days in all;"
            f" it is already {before.offset.days} days ahead"
        )
    after = await _store(session, int(by.total_seconds()), actor, add=True)
    audit.record(
        session,
        actor=actor,
        action="clock.advance",
        subject_type="platform_clock",
        subject_id=1,
        data={"by_seconds": int(by.total_seconds()), "offset_seconds": int(after.offset.total_seconds())},
    )
    return after


async def reset(session: AsyncSession, actor: str) -> SandboxClock:
    """Put the platform's clock back to the real time (audited); refused in production."""
    from app.core import audit

    if not sandbox_allowed():
        raise SandboxClockRefused(
            "the platform's clock can be moved only in the local and test environments, never in production"
        )
    before = await read_sandbox(session)
    after = await _store(session, 0, actor, add=False)
    audit.record(
        session,
        actor=actor,
        action="clock.reset",
        subject_type="platform_clock",
        subject_id=1,
        data={"from_offset_seconds": int(before.offset.total_seconds()), "offset_seconds": 0},
    )
    return after


async def refresh(engine: AsyncEngine | None = None) -> timedelta:
    """Read the committed offset (on ``engine``, else the process's) and apply it in this process."""
    if not sandbox_allowed():
        return timedelta(0)
    from app.core import db

    t = _table()
    async with (engine or db.engine()).connect() as conn:
        seconds = (await conn.execute(sa.select(t.c.offset_seconds))).scalar()
    apply_sandbox(timedelta(seconds=seconds or 0))
    return _sandbox


async def keep_fresh(database_url: str, interval: float = REFRESH_SECONDS) -> None:
    """Re-read the offset every ``interval`` seconds, for ever (a server's background task), on an
    engine of its own: one connection, whatever the rest of the process does with its pool."""
    from app.core import db

    engine = db.create_engine(database_url, pool_size=1)
    try:
        while True:
            try:
                await refresh(engine)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database is restarting: keep the last offset and try again
                log.warning("could not read the sandbox clock", exc_info=True)
            await asyncio.sleep(interval)
    finally:
        await engine.dispose()
