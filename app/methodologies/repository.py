"""All SQL of the catalogue. Both tables share the lifecycle columns, so most queries take the model."""

import uuid
from datetime import datetime
from typing import Any, TypeVar, cast

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.core.db import Conn
from app.core.pagination import keyset
from app.methodologies.models import ExchangeRuleVersion, MethodologyVersion, VersionStatus

Version = MethodologyVersion | ExchangeRuleVersion
VersionModel = type[MethodologyVersion] | type[ExchangeRuleVersion]
V = TypeVar("V", MethodologyVersion, ExchangeRuleVersion)

# Versions whose period counts: a retired version still computes the records of its period.
COUNTED = (VersionStatus.published, VersionStatus.retired)


def _in_force_at(model: VersionModel, at: datetime) -> list[Any]:
    return [
        col(model.status).in_(COUNTED),
        model.effective_from <= at,
        sa.or_(col(model.effective_to).is_(None), col(model.effective_to) > at),
    ]


async def get(session: AsyncSession, model: VersionModel, version_id: uuid.UUID, *, for_update: bool = False):
    stmt = select(model).where(model.id == version_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def overlapping(
    session: AsyncSession,
    model: VersionModel,
    siblings: list[Any],
    start: datetime,
    end: datetime | None,
    exclude_id: uuid.UUID,
) -> list[Version]:
    """Published or retired versions among ``siblings`` whose non-empty period meets [start, end)."""
    stmt = (
        select(model)
        .where(
            *siblings,
            col(model.status).in_(COUNTED),
            model.id != exclude_id,
            sa.or_(col(model.effective_to).is_(None), col(model.effective_to) > model.effective_from),
            sa.or_(col(model.effective_to).is_(None), col(model.effective_to) > start),
        )
        .order_by(col(model.effective_from))
    )
    if end is not None:
        stmt = stmt.where(model.effective_from < end)
    return cast(list[Version], list((await session.execute(stmt)).scalars()))


async def insert(session: AsyncSession, row: Version) -> None:
    """Insert a new version in a savepoint: a taken ``code`` + ``version`` raises IntegrityError, the
    transaction goes on."""
    session.add(row)
    async with session.begin_nested():
        await session.flush()


async def listing(
    session: AsyncSession, model: type[V], order: list[Any], statuses: tuple[str, ...] | None = None
) -> list[V]:
    """Every version of ``model`` (only those in ``statuses`` if given), in ``order``."""
    stmt = select(model).order_by(*order)
    if statuses is not None:
        stmt = stmt.where(col(model.status).in_(statuses))
    return list((await session.execute(stmt)).scalars())


# ---- methodologies


async def code_state(
    session: AsyncSession, code: str, exclude_id: uuid.UUID | None = None
) -> tuple[int, set[str]]:
    """The highest version of ``code`` (0 if none) and the behaviour types its versions use."""
    stmt = select(MethodologyVersion.version, MethodologyVersion.behaviour_type).where(
        MethodologyVersion.code == code
    )
    if exclude_id is not None:
        stmt = stmt.where(MethodologyVersion.id != exclude_id)
    rows = (await session.execute(stmt)).all()
    return max((r[0] for r in rows), default=0), {r[1] for r in rows}


async def methodology_by_code(session: AsyncSession, code: str, version: int) -> MethodologyVersion | None:
    stmt = select(MethodologyVersion).where(
        MethodologyVersion.code == code, MethodologyVersion.version == version
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def methodology_page(
    session: AsyncSession,
    *,
    status: str,
    behaviour_type: str | None,
    code: str | None,
    cursor: str | None,
    limit: int,
) -> list[MethodologyVersion]:
    """``limit + 1`` versions in ``status`` by code, then version, after the cursor's."""
    stmt = select(MethodologyVersion).where(MethodologyVersion.status == status)
    if behaviour_type is not None:
        stmt = stmt.where(MethodologyVersion.behaviour_type == behaviour_type)
    if code is not None:
        stmt = stmt.where(MethodologyVersion.code == code)
    stmt = keyset(stmt, cursor, (MethodologyVersion.code, str), (MethodologyVersion.version, int))
    return list((await session.execute(stmt.limit(limit + 1))).scalars())


async def published_behaviour_types(session: AsyncSession, category: str) -> list[str]:
    """The behaviour types of the published versions of ``category``, sorted."""
    stmt = (
        select(MethodologyVersion.behaviour_type)
        .where(MethodologyVersion.category == category, MethodologyVersion.status == VersionStatus.published)
        .distinct()
        .order_by(MethodologyVersion.behaviour_type)
    )
    return list((await session.execute(stmt)).scalars())


async def methodology_in_force(
    session: AsyncSession, behaviour_type: str, at: datetime
) -> MethodologyVersion | None:
    stmt = (
        select(MethodologyVersion)
        .where(MethodologyVersion.behaviour_type == behaviour_type, *_in_force_at(MethodologyVersion, at))
        .order_by(col(MethodologyVersion.effective_from).desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


# ---- exchange rules


async def max_rule_version(session: AsyncSession) -> int:
    return (await session.execute(select(sa.func.max(ExchangeRuleVersion.version)))).scalar() or 0


async def rule_by_version(session: AsyncSession, version: int) -> ExchangeRuleVersion | None:
    stmt = select(ExchangeRuleVersion).where(ExchangeRuleVersion.version == version)
    return (await session.execute(stmt)).scalar_one_or_none()


async def rule_page(
    session: AsyncSession, *, status: str, cursor: str | None, limit: int
) -> list[ExchangeRuleVersion]:
    """``limit + 1`` versions in ``status`` by version number, after the cursor's."""
    stmt = select(ExchangeRuleVersion).where(ExchangeRuleVersion.status == status)
    stmt = keyset(stmt, cursor, (ExchangeRuleVersion.version, int))
    return list((await session.execute(stmt.limit(limit + 1))).scalars())


async def rule_in_force(session: AsyncSession, at: datetime) -> ExchangeRuleVersion | None:
    stmt = (
        select(ExchangeRuleVersion)
        .where(*_in_force_at(ExchangeRuleVersion, at))
        .order_by(col(ExchangeRuleVersion.effective_from).desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


# ---- what batch ingestion and the ledger ask (points) ----------------------------------------------------
# On the ingestion transaction's asyncpg connection: set-based reads, one round trip each.


async def counted_methodologies(conn: Conn, behaviour_types: list[str]) -> list[asyncpg.Record]:
    """Published and retired methodology versions of these behaviour types, by type then start of period."""
    return await conn.fetch(
        "SELECT id, code, version, behaviour_type, category, unit, net_factor_g, max_quantity_per_record,"
        " max_quantity_per_day, effective_from, effective_to FROM methodology_versions"
        " WHERE behaviour_type = ANY($1::text[]) AND status IN ('published', 'retired')"
        " ORDER BY behaviour_type, effective_from",
        behaviour_types,
    )


async def counted_exchange_rules(conn: Conn) -> list[asyncpg.Record]:
    """Published and retired exchange-rule versions, by start of period."""
    return await conn.fetch(
        "SELECT id, version, points_per_gram, daily_cap_points, type_daily_caps, lot_lifetime_days,"
        " effective_from, effective_to FROM exchange_rule_versions"
        " WHERE status IN ('published', 'retired') ORDER BY effective_from"
    )


async def version_labels(
    conn: Conn, methodology_ids: list[uuid.UUID], rule_ids: list[uuid.UUID]
) -> list[asyncpg.Record]:
    """(kind, id, label) of these versions: ``m`` with ``code@version``, ``x`` with the rule's version."""
    return await conn.fetch(
        "SELECT 'm' AS kind, id, code || '@' || version AS label FROM methodology_versions WHERE id = ANY($1::uuid[])"
        " UNION ALL SELECT 'x', id, version::text FROM exchange_rule_versions WHERE id = ANY($2::uuid[])",
        methodology_ids,
        rule_ids,
    )


# ---- what the CER registry asks


async def methodology_versions(
    session: AsyncSession, *, codes: list[str] | None = None, ids: list[uuid.UUID] | None = None
) -> list[MethodologyVersion]:
    """The versions of ``codes`` (any status), or the versions ``ids``; by code and version."""
    stmt = select(MethodologyVersion)
    if codes is not None:
        stmt = stmt.where(col(MethodologyVersion.code).in_(codes))
    if ids is not None:
        stmt = stmt.where(col(MethodologyVersion.id).in_(ids))
    stmt = stmt.order_by(col(MethodologyVersion.code), col(MethodologyVersion.version))
    return list((await session.execute(stmt)).scalars())


async def count_by_status(session: AsyncSession, model: VersionModel) -> dict[str, int]:
    """How many versions (methodologies or exchange rules) are in each status."""
    rows = await session.execute(sa.select(col(model.status), sa.func.count()).group_by(col(model.status)))
    return {str(status): int(n) for status, n in rows}
