"""Demo data of the registry: the demo operator's account, a project of its week in publicity, prices.

Small on purpose: the project stays in publicity (7 working days) like a real one would.
"""

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.cer import calendar, prices, registry, repository, service
from app.cer.schemas import PriceIn, ProjectCreate
from app.core import clock
from app.core.errors import DomainError
from app.methodologies import service as methodologies_service
from app.organizations import service as org_service
from app.points import service as points_service

OPERATOR_USERNAME = "demo-operator"  # made by app/points/demo.py
PRICES_FEN = [9012, 9105, 8987, 9230, 9318, 9264, 9401, 9377, 9452, 9510]


async def load(session: AsyncSession) -> list[str]:
    org_id = await org_service.staff_org_id(session, OPERATOR_USERNAME)
    if org_id is None:
        return []
    operator = Principal("client", "operator", org_id, org_id)
    authority = Principal("staff", "authority", uuid.UUID(int=0))
    await registry.ensure_account(session, org_id)
    lines = [f"CER: registry account for the demo operator {org_id}"]

    today = clock.today()
    overrides = await repository.calendar_overrides(session, *calendar.span_before(today))
    for day, fen in zip(reversed(calendar.trading_days_before(today, 10, overrides)), PRICES_FEN, strict=False):
        await prices.record_price(session, authority, PriceIn(date=day, price_fen=fen))
    lines.append(f"CER: reference price GET /v1/cer/reference-price?on={today}")

    used = await points_service.methodology_versions_used(session, org_id)
    codes = sorted({v.code for v in await methodologies_service.versions_by_id(session, used)})
    if codes:
        try:
            async with session.begin_nested():
                project = await service.create(
                    session,
                    operator,
                    ProjectCreate(
                        name="深圳低碳出行 demo: a week of green trips",
                        description="Metro, bus, cycling and walking of the demo operator's users.",
                        benefit_sharing="Points to the users; the operator owns the project.",
                        methodology_codes=codes,
                        period_start=today - timedelta(days=8),
                        period_end=today - timedelta(days=1),
                    ),
                )
        except DomainError as exc:  # loaded before: the week is in a project already
            lines.append(f"CER: no new demo project ({exc.code})")
        else:
            lines.append(
                f"CER: project {project.id} in publicity until {project.publicity_ends_on} "
                f"({project.record_count} records, {project.claimed_g} g) — GET /v1/public/cer/projects"
            )
    return lines
