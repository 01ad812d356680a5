"""Platform-wide figures for disclosure, gathered from the domains that own them."""

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.cer import registry as cer_registry
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
