"""Platform-wide figures for disclosure, gathered from the domains that own them."""

from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.cer import registry as cer_registry
from app.core import caching, clock
from app.core.config import get_settings
from app.organizations import service as org_service
from app.points import service as points_service


@dataclass(frozen=True)
class PortalTotals:
    """What the portal's home page shows: the figures of ``/v1/public/totals`` and ``/v1/public/cer/totals``."""

    organisations: dict[str, int]
    people: int
    behaviours: int
    reduction_g: int
    points_credited: int
    points_used: int
    points_expired: int
    cer_issued_tonnes: int
    cer_retired_tonnes: int


async def portal_totals(session: AsyncSession) -> PortalTotals:
    points = await points_service.platform_totals(session)
    cer = await cer_registry.totals(session)
    return PortalTotals(
        organisations=await org_service.count_approved(session),
        people=points.people,
        behaviours=points.behaviours,
        reduction_g=points.reduction_g,
        points_credited=points.points_credited,
        points_used=points.points_used,
        points_expired=points.points_expired,
        cer_issued_tonnes=cer.issued_tonnes,
        cer_retired_tonnes=cer.retired_tonnes,
    )


CHART_DAYS = 30


@dataclass(frozen=True)
class PortalDay:
    """One day of the portal's charts."""

    day: date
    behaviours: int
    reduction_g: int
    points_earned: int
    points_spent: int
    points_expired: int
    cer_issued_tonnes: int
    cer_retired_tonnes: int


async def portal_days(session: AsyncSession, days: int = CHART_DAYS) -> list[PortalDay]:
    """The last ``days`` local days up to today, oldest first: what the home page's charts draw."""
    last = clock.today()
    first = last - timedelta(days=days - 1)
    points = await points_service.platform_days(session, first, last)
    cer = {
        day: (issued, retired)
        for day, issued, retired in await cer_registry.daily_tonnes(session, first, last)
    }
    return [
        PortalDay(
            p.day,
            p.behaviours,
            p.reduction_g,
            p.points_earned,
            p.points_spent,
            p.points_expired,
            *cer.get(p.day, (0, 0)),
        )
        for p in points
    ]


def _max_age() -> float:
    return get_settings().public_figures_max_age_seconds


# Each sums whole tables (every account, every ledger entry of a kind, every record): read at most once a
# max-age by each process, as their answers may be that old (``CARBON_PUBLIC_FIGURES_MAX_AGE_SECONDS``).
_HOME: caching.Recent["PortalHome"] = caching.Recent(_max_age)
_TOTALS: caching.Recent[dict[str, Any]] = caching.Recent(_max_age)


@dataclass(frozen=True)
class PortalHome:
    totals: PortalTotals
    days: list[PortalDay]
    as_of: datetime
    """When they were read: what the page says they are as of."""


async def portal_home(session: AsyncSession) -> PortalHome:
    """The home page's figures: the totals and the last days for the charts, as of when they were read (at most
    a max-age ago)."""

    async def read() -> PortalHome:
        as_of = clock.now()
        return PortalHome(await portal_totals(session), await portal_days(session), as_of)

    return await _HOME.get(read)


async def platform_totals(session: AsyncSession) -> dict[str, Any]:
    """``GET /v1/public/totals``: the approved organisations and the points ledger's platform-wide figures (at
    most a max-age old)."""

    async def read() -> dict[str, Any]:
        return {
            "organisations": await org_service.count_approved(session),
            **asdict(await points_service.platform_totals(session)),
        }

    return await _TOTALS.get(read)
