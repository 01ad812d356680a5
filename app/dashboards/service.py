"""The authority's figures over a period, gathered from the domains that own them, and the health checks.

Each domain answers its own per-day aggregate (points: records, reductions and points; mall: activity by
merchant; CER: the registry's flow); this module puts them side by side and names the organisations.
"""

import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.cer import registry as cer_registry
from app.core import audit, clock
from app.mall import service as mall_service
from app.organizations import service as org_service
from app.points import service as points_service
from app.points import verify as ledger

MAX_DAYS = 366
DEFAULT_DAYS = 30
EXPIRY_DAYS = 30


@dataclass(frozen=True)
class RecordsRow:
    day: date
    key: str  # the behaviour type, or the operator's id
    name: str  # what people read: the behaviour type, or the operator's name
    records: int
    reduction_g: int


@dataclass(frozen=True)
class MerchantRow:
    merchant_id: uuid.UUID
    merchant: str
    orders: int
    points: int
    redeemed: int
    cancelled: int
    expired: int
    refunded_points: int


@dataclass(frozen=True)
class Dashboard:
    first: date
    last: date
    days: list[date]
    by_type: list[RecordsRow]
    by_operator: list[RecordsRow]
    points: list[points_service.DailyTotals]
    expiring: list[points_service.ExpiringDay]
    expiring_first: date
    expiring_last: date
    mall: list[MerchantRow]
    cer: list[cer_registry.FlowDay]


async def records_by_type(session: AsyncSession, first: date, last: date) -> list[RecordsRow]:
    rows = await points_service.records_by_day(session, first, last, "behaviour_type")
    return [RecordsRow(r.day, r.key, r.key, r.records, r.reduction_g) for r in rows]


async def records_by_operator(session: AsyncSession, first: date, last: date) -> list[RecordsRow]:
    rows = await points_service.records_by_day(session, first, last, "operator_id")
    names = await org_service.names(session, list({uuid.UUID(r.key) for r in rows}))
    return [
        RecordsRow(r.day, r.key, names.get(uuid.UUID(r.key), r.key), r.records, r.reduction_g) for r in rows
    ]


def expiry_window() -> tuple[date, date]:
    """From today to the 30th day after it (local days): the points about to expire."""
    today = clock.today()
    return today, today + timedelta(days=EXPIRY_DAYS)


async def expiring(session: AsyncSession) -> list[points_service.ExpiringDay]:
    return await points_service.expiring_by_day(session, *expiry_window())


async def mall_activity(session: AsyncSession, first: date, last: date) -> list[MerchantRow]:
    rows = await mall_service.merchant_activity(session, first, last)
    names = await org_service.names(session, [r.merchant_id for r in rows])
    out = [
        MerchantRow(
            r.merchant_id,
            names.get(r.merchant_id, str(r.merchant_id)),
            r.orders,
            r.points,
            r.redeemed,
            r.cancelled,
            r.expired,
            r.refunded_points,
        )
        for r in rows
    ]
    return sorted(out, key=lambda m: (-m.points, m.merchant, str(m.merchant_id)))


async def dashboard(session: AsyncSession, first: date, last: date) -> Dashboard:
    """Every series of the dashboard for the local days ``first`` to ``last`` (the caller checks the range)."""
    expiring_first, expiring_last = expiry_window()
    return Dashboard(
        first=first,
        last=last,
        days=[first + timedelta(days=i) for i in range((last - first).days + 1)],
        by_type=await records_by_type(session, first, last),
        by_operator=await records_by_operator(session, first, last),
        points=await points_service.platform_days(session, first, last),
        expiring=await expiring(session),
        expiring_first=expiring_first,
        expiring_last=expiring_last,
        mall=await mall_activity(session, first, last),
        cer=await cer_registry.flow_days(session, first, last),
    )


# ---- health ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    examples: list[tuple]


@dataclass(frozen=True)
class Health:
    """The results of ``ledger verify`` and ``audit verify``: each check, when it ran and how long it took."""

    started_at: datetime
    ledger: list[Check]
    ledger_seconds: float
    audit_entries: int
    audit_broken: list[str]
    audit_seconds: float

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.ledger) and not self.audit_broken


async def run_health(session: AsyncSession, examples: int = 5) -> Health:
    started_at = clock.now()
    t0 = time.perf_counter()
    violations = {v.check: v.examples for v in await ledger.verify(session, examples)}
    t1 = time.perf_counter()
    result = await audit.verify(session)
    t2 = time.perf_counter()
    checks = [Check(name, name not in violations, violations.get(name, [])) for name, _ in ledger.CHECKS]
    return Health(started_at, checks, t1 - t0, result.entries, result.broken, t2 - t1)


# ---- the audit log's actors -----------------------------------------------------------------------------


async def actor_names(session: AsyncSession, actors: list[str]) -> dict[str, str]:
    """Who each ``role:id`` actor is, where the id is a staff account (its username) or an
    organisation (its name); other actors (the command line, jobs) are left out."""
    ids: dict[str, uuid.UUID] = {}
    for actor in actors:
        _, _, subject = actor.partition(":")
        try:
            ids[actor] = uuid.UUID(subject)
        except ValueError:
            continue
    wanted = list(set(ids.values()))
    staff = await org_service.usernames(session, wanted)
    orgs = await org_service.names(session, [i for i in wanted if i not in staff])
    known = {**orgs, **staff}
    return {actor: known[i] for actor, i in ids.items() if i in known}
