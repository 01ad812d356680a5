"""All SQL of the CER registry, in the two tiers of ``docs/architecture.md``.

- Tier 1, the long tail (projects, objections, accounts, movements of blocks, the calendar and
  prices): SQLAlchemy statements on the request's ``AsyncSession``.
- Tier 2, set-based over many rows (a project's aggregation and report, the trace's groupings,
  the platform totals): SQL text on the same transaction's asyncpg connection
  (:func:`app.core.db.raw_connection`), ``$n`` parameters.

Two statements read the points domain's ``behaviour_records`` together with the registry's own
``cer_project_records`` (:func:`aggregate` also reads the scenes domain's ``scenes``): each is one
set-based statement over every record of a period or of a project, which no exchange of ids
between services could match. Everything else another domain owns — organisations' names,
methodology versions, the records and batches a trace shows — comes from that domain's service.

Locks: :func:`lock_owner` (one owner's project creation at a time) and :func:`lock_registry`
(every movement of units: issuance, transfer, retirement, clawback). Movements are rare — trades
settle on an exchange and are registered here afterwards — so one lock for all of them keeps the
invariants simple (a clawback never races a transfer of the same units) at no real cost.
"""

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.cer.blocks import Range
from app.cer.models import (
    BlockStatus,
    CerAccount,
    CerBlock,
    CerCalendarDay,
    CerCarryForward,
    CerCounter,
    CerIssuance,
    CerObjection,
    CerPrice,
    CerProject,
    CerProjectRecord,
    CerRetirement,
    CerTransfer,
    ProjectStatus,
)
from app.core import db
from app.core.db import Conn

_OWNER_LOCK_BASE = 0x0CE5_0000_0000
_REGISTRY_LOCK = 0x0CE5_FFFF_FFFF


async def lock_owner(session: AsyncSession, owner_id: uuid.UUID) -> None:
    key = _OWNER_LOCK_BASE + int.from_bytes(hashlib.blake2b(owner_id.bytes, digest_size=4).digest(), "big")
    await db.advisory_xact_lock(session, key)


async def lock_registry(session: AsyncSession) -> None:
    await db.advisory_xact_lock(session, _REGISTRY_LOCK)


async def add(session: AsyncSession, *rows: Any) -> None:
    """Insert new rows (table models) and flush, so their generated keys are known."""
    session.add_all(rows)
    await session.flush()


def _after(stmt: Any, order: Sequence[Any], after: tuple[Any, ...] | None, limit: int) -> Any:
    """``limit + 1`` rows of ``stmt``, newest first by ``order``, after a cursor's values."""
    if after is not None:
        stmt = stmt.where(sa.tuple_(*order) < sa.tuple_(*after))
    return stmt.order_by(*(c.desc() for c in order)).limit(limit + 1)


# --- projects -------------------------------------------------------------------------------


async def project(session: AsyncSession, project_id: uuid.UUID, *, lock: bool = False) -> CerProject | None:
    stmt = select(CerProject).where(CerProject.id == project_id).execution_options(populate_existing=True)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def projects_page(
    session: AsyncSession,
    *,
    party: uuid.UUID | None,
    status: str | None,
    owner_org_id: uuid.UUID | None,
    after: tuple[Any, ...] | None,
    limit: int,
) -> list[CerProject]:
    """Newest first. ``party``: only the projects it owns or verifies."""
    stmt = select(CerProject)
    if party is not None:
        stmt = stmt.where(
            sa.or_(col(CerProject.owner_org_id) == party, col(CerProject.verifier_org_id) == party)
        )
    if status:
        stmt = stmt.where(CerProject.status == status)
    if owner_org_id:
        stmt = stmt.where(CerProject.owner_org_id == owner_org_id)
    stmt = _after(stmt, [col(CerProject.created_at), col(CerProject.id)], after, limit)
    return list((await session.execute(stmt)).scalars())


async def projects_by_ids(session: AsyncSession, ids: Sequence[uuid.UUID]) -> list[CerProject]:
    if not ids:
        return []
    return list(
        (await session.execute(select(CerProject).where(col(CerProject.id).in_(list(ids))))).scalars()
    )


async def project_names(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = await session.execute(
        select(CerProject.id, CerProject.name).where(col(CerProject.id).in_(list(ids)))
    )
    return {r[0]: r[1] for r in rows}


async def overlapping_projects(
    session: AsyncSession, owner_id: uuid.UUID, codes: Sequence[str], start: date, end: date
) -> list[uuid.UUID]:
    rows = await session.execute(
        select(CerProject.id)
        .where(
            CerProject.owner_org_id == owner_id,
            sa.type_coerce(col(CerProject.methodology_codes), ARRAY(sa.Text)).overlap(list(codes)),
            CerProject.period_start <= end,
            CerProject.period_end >= start,
        )
        .order_by(col(CerProject.created_at))
    )
    return list(rows.scalars())


async def objection_counts(
    session: AsyncSession, project_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[int, int]]:
    """Per project: (objections, of which unanswered)."""
    if not project_ids:
        return {}
    rows = await session.execute(
        select(
            CerObjection.project_id,
            sa.func.count(),
            sa.func.count().filter(col(CerObjection.answered_at).is_(None)),
        )
        .where(col(CerObjection.project_id).in_(list(project_ids)))
        .group_by(col(CerObjection.project_id))
    )
    return {r[0]: (int(r[1]), int(r[2])) for r in rows}


async def issued_tonnes(session: AsyncSession, project_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    if not project_ids:
        return {}
    rows = await session.execute(
        select(CerIssuance.project_id, CerIssuance.tonnes).where(
            col(CerIssuance.project_id).in_(list(project_ids))
        )
    )
    return {r[0]: int(r[1]) for r in rows}


# --- objections -----------------------------------------------------------------------------


async def objections(session: AsyncSession, project_id: uuid.UUID) -> list[CerObjection]:
    rows = await session.execute(
        select(CerObjection).where(CerObjection.project_id == project_id).order_by(col(CerObjection.filed_at))
    )
    return list(rows.scalars())


async def objection(session: AsyncSession, objection_id: uuid.UUID) -> CerObjection | None:
    return await session.get(CerObjection, objection_id)


async def answer_objection(
    session: AsyncSession,
    project_id: uuid.UUID,
    objection_id: uuid.UUID,
    answer: str,
    actor: str,
    now: datetime,
) -> CerObjection | None:
    """Record the answer if the objection is the project's and unanswered; None otherwise."""
    result = await session.execute(
        sa.update(CerObjection)
        .where(
            col(CerObjection.id) == objection_id,
            col(CerObjection.project_id) == project_id,
            col(CerObjection.answered_at).is_(None),
        )
        .values(answer=answer, answered_by=actor, answered_at=now)
        .returning(CerObjection)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return result.scalar_one_or_none()


# --- a project's records (tier 2) -----------------------------------------------------------


@dataclass(frozen=True)
class Aggregation:
    """What became of the records of a project's period."""

    candidates: int
    before_cutoff: int
    outside_region: int
    included: int
    in_other_projects: int


async def aggregate(
    conn: Conn,
    project_id: uuid.UUID,
    owner_id: uuid.UUID,
    version_ids: Sequence[uuid.UUID],
    start: datetime,
    end: datetime,
    cutoff: datetime,
    region: str,
) -> Aggregation:
    """Put the owner's eligible records of [start, end) into the project, set-based, in one statement.

    ``version_ids``: every methodology version of the project's codes. A record goes in unless it
    started before ``cutoff``, happened at a scene outside ``region`` (a division-code prefix;
    records without a scene — travel — count as in the region), or is in another project already
    (``ON CONFLICT DO NOTHING`` on the primary key). Returns the counts.
    """
    # Reads behaviour_records (owned by app.points) and scenes (owned by app.scenes): one hot statement.
    row = await conn.fetchrow(
        """
        WITH candidates AS (
            SELECT r.id,
                   r.started_at < $6 AS before_cutoff,
                   r.scene_id IS NOT NULL
                     AND (s.district_code IS NULL OR left(s.district_code, length($7::text)) <> $7::text)
                     AS outside_region
            FROM behaviour_records r
            LEFT JOIN scenes s ON s.id = r.scene_id
            WHERE r.operator_id = $2 AND r.methodology_version_id = ANY($3::uuid[])
              AND r.started_at >= $4 AND r.started_at < $5
        ), inserted AS (
            INSERT INTO cer_project_records (record_id, project_id)
            SELECT id, $1::uuid FROM candidates WHERE NOT before_cutoff AND NOT outside_region
            ORDER BY id
            ON CONFLICT (record_id) DO NOTHING
            RETURNING record_id
        )
        SELECT count(*) AS candidates,
               count(*) FILTER (WHERE before_cutoff) AS before_cutoff,
               count(*) FILTER (WHERE outside_region AND NOT before_cutoff) AS outside_region,
               count(*) FILTER (WHERE NOT before_cutoff AND NOT outside_region) AS eligible,
               (SELECT count(*) FROM inserted) AS included
        FROM candidates
        """,
        project_id,
        owner_id,
        list(version_ids),
        start,
        end,
        cutoff,
        region,
    )
    assert row is not None
    return Aggregation(
        candidates=int(row["candidates"]),
        before_cutoff=int(row["before_cutoff"]),
        outside_region=int(row["outside_region"]),
        included=int(row["included"]),
        in_other_projects=int(row["eligible"]) - int(row["included"]),
    )


@dataclass(frozen=True)
class VersionCount:
    """A project's records of one methodology version."""

    methodology_version_id: uuid.UUID
    records: int
    reduction_g: int


@dataclass(frozen=True)
class MonthCount:
    month: str
    records: int
    reduction_g: int


@dataclass(frozen=True)
class ReportCounts:
    records: int
    reduction_g: int
    users: int
    by_version: list[VersionCount]
    by_month: list[MonthCount]


async def by_version(conn: Conn, project_id: uuid.UUID) -> list[VersionCount]:
    """The project's records and grams per methodology version (in no particular order)."""
    # Reads behaviour_records (owned by app.points) through the project's membership: one hot statement.
    rows = await conn.fetch(
        "SELECT r.methodology_version_id, count(*), sum(r.reduction_g)"
        " FROM cer_project_records p JOIN behaviour_records r ON r.id = p.record_id"
        " WHERE p.project_id = $1 GROUP BY r.methodology_version_id",
        project_id,
    )
    return [VersionCount(r[0], int(r[1]), int(r[2])) for r in rows]


async def report_counts(conn: Conn, project_id: uuid.UUID, tz: str) -> ReportCounts:
    """The project's totals, by methodology version, by month (in ``tz``) and overall."""
    versions = await by_version(conn, project_id)
    # Reads behaviour_records (owned by app.points) through the project's membership: hot statements.
    months = await conn.fetch(
        "SELECT to_char(r.started_at AT TIME ZONE $2::text, 'YYYY-MM') AS month, count(*), sum(r.reduction_g)"
        " FROM cer_project_records p JOIN behaviour_records r ON r.id = p.record_id"
        " WHERE p.project_id = $1 GROUP BY 1 ORDER BY 1",
        project_id,
        tz,
    )
    totals = await conn.fetchrow(
        "SELECT count(*), coalesce(sum(r.reduction_g), 0), count(DISTINCT r.user_id)"
        " FROM cer_project_records p JOIN behaviour_records r ON r.id = p.record_id"
        " WHERE p.project_id = $1",
        project_id,
    )
    assert totals is not None
    return ReportCounts(
        records=int(totals[0]),
        reduction_g=int(totals[1]),
        users=int(totals[2]),
        by_version=versions,
        by_month=[MonthCount(m[0], int(m[1]), int(m[2])) for m in months],
    )


async def by_batch(conn: Conn, project_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """How many of the project's records each signed batch brought."""
    # Reads behaviour_records (owned by app.points) through the project's membership: one hot statement.
    rows = await conn.fetch(
        "SELECT r.batch_id, count(*) FROM cer_project_records p JOIN behaviour_records r ON r.id = p.record_id"
        " WHERE p.project_id = $1 GROUP BY r.batch_id",
        project_id,
    )
    return {r[0]: int(r[1]) for r in rows}


# The columns of a project's record the registry shows its verifier and owner; ``user_id`` is read only to
# derive the per-project pseudonym (app.cer.evidence) and never leaves the registry.
_RECORD_COLUMNS = (
    "r.id, r.record_id, r.operator_id, r.batch_id, r.user_id, r.behaviour_type, r.started_at, r.ended_at,"
    " r.quantity, r.counted_quantity, r.unit, r.scene_id, r.methodology_version_id, r.reduction_g, r.code"
)


async def project_records(conn: Conn, project_id: uuid.UUID, after_id: int | None, limit: int) -> list[Any]:
    """``limit`` of the project's records by id, after ``after_id``."""
    # Reads behaviour_records (owned by app.points) through the project's membership: one hot statement.
    return await conn.fetch(
        f"SELECT {_RECORD_COLUMNS} FROM cer_project_records p JOIN behaviour_records r ON r.id = p.record_id"
        " WHERE p.project_id = $1 AND p.record_id > $2 ORDER BY p.record_id LIMIT $3",
        project_id,
        after_id if after_id is not None else -1,
        limit,
    )


async def sample_records(conn: Conn, project_id: uuid.UUID, seed: str, size: int) -> list[Any]:
    """The ``size`` records of the project whose SHA-256 of ``"{seed}:{id}"`` (UTF-8, hex) sorts first,
    with that hash as ``draw_key``."""
    # Reads behaviour_records (owned by app.points) through the project's membership: one hot statement.
    return await conn.fetch(
        "SELECT encode(sha256(convert_to($2::text || ':' || p.record_id::text, 'UTF8')), 'hex') AS draw_key,"
        f" {_RECORD_COLUMNS} FROM cer_project_records p JOIN behaviour_records r ON r.id = p.record_id"
        " WHERE p.project_id = $1 ORDER BY draw_key, p.record_id LIMIT $3",
        project_id,
        seed,
        size,
    )


async def first_record_ids(session: AsyncSession, project_id: uuid.UUID, limit: int) -> list[int]:
    rows = await session.execute(
        select(CerProjectRecord.record_id)
        .where(CerProjectRecord.project_id == project_id)
        .order_by(col(CerProjectRecord.record_id))
        .limit(limit)
    )
    return list(rows.scalars())


# --- accounts, counters and blocks ----------------------------------------------------------


async def ensure_account(session: AsyncSession, org_id: uuid.UUID, now: datetime) -> None:
    await session.execute(pg_insert(CerAccount).values(org_id=org_id, opened_at=now).on_conflict_do_nothing())


async def account_opened_at(session: AsyncSession, org_id: uuid.UUID) -> datetime | None:
    account = await session.get(CerAccount, org_id)
    return account.opened_at if account else None


async def carry(session: AsyncSession, owner_id: uuid.UUID, now: datetime) -> CerCarryForward:
    """The owner's carried-forward grams, row-locked (the row is created at 0 if missing)."""
    await session.execute(
        pg_insert(CerCarryForward)
        .values(owner_org_id=owner_id, grams=0, updated_at=now)
        .on_conflict_do_nothing()
    )
    stmt = (
        select(CerCarryForward)
        .where(CerCarryForward.owner_org_id == owner_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one()


async def carried_grams(session: AsyncSession, owner_id: uuid.UUID) -> int:
    row = await session.get(CerCarryForward, owner_id)
    return row.grams if row else 0


async def take_counter(session: AsyncSession, name: str, count: int) -> int:
    """Reserve ``count`` consecutive values of a counter (row-locked): returns the first."""
    value = (
        await session.execute(
            sa.update(CerCounter)
            .where(col(CerCounter.name) == name)
            .values(next_value=col(CerCounter.next_value) + count)
            .returning(col(CerCounter.next_value) - count)
        )
    ).scalar_one()
    return int(value)


async def held_blocks(session: AsyncSession, holder_id: uuid.UUID) -> list[CerBlock]:
    result = await session.execute(
        select(CerBlock)
        .where(CerBlock.holder_org_id == holder_id, CerBlock.status == BlockStatus.held)
        .order_by(col(CerBlock.serial_start))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list(result.scalars())


async def blocks_touching(session: AsyncSession, ranges: Sequence[Range]) -> list[CerBlock]:
    """Every block sharing a serial with any of ``ranges``."""
    if not ranges:
        return []
    result = await session.execute(
        select(CerBlock).where(
            sa.or_(
                *(
                    sa.and_(col(CerBlock.serial_start) <= r.end, col(CerBlock.serial_end) >= r.start)
                    for r in ranges
                )
            )
        )
    )
    return list(result.scalars())


async def replace_blocks(
    session: AsyncSession, old_ids: Sequence[int], new_rows: Sequence[dict[str, Any]]
) -> None:
    """Delete the cut blocks and insert their pieces (the exclusion constraint checks the result)."""
    if old_ids:
        await session.execute(sa.delete(CerBlock).where(col(CerBlock.id).in_(list(old_ids))))
    if new_rows:
        await session.execute(sa.insert(CerBlock), list(new_rows))


async def block_at(session: AsyncSession, serial: int) -> CerBlock | None:
    result = await session.execute(
        select(CerBlock).where(CerBlock.serial_start <= serial, CerBlock.serial_end >= serial)
    )
    return result.scalar_one_or_none()


async def blocks_of(
    session: AsyncSession, org_id: uuid.UUID, status: str | None, limit: int
) -> list[CerBlock]:
    stmt = select(CerBlock).where(CerBlock.holder_org_id == org_id).order_by(col(CerBlock.serial_start))
    if status:
        stmt = stmt.where(CerBlock.status == status)
    return list((await session.execute(stmt.limit(limit))).scalars())


async def account_tonnes(session: AsyncSession, org_id: uuid.UUID) -> dict[BlockStatus, int]:
    """The units an organisation holds, has retired and had revoked."""
    rows = await session.execute(
        select(
            CerBlock.status, sa.func.coalesce(sa.func.sum(CerBlock.serial_end - CerBlock.serial_start + 1), 0)
        )
        .where(CerBlock.holder_org_id == org_id)
        .group_by(col(CerBlock.status))
    )
    out = dict.fromkeys(BlockStatus, 0)
    out.update({BlockStatus(r[0]): int(r[1]) for r in rows})
    return out


async def revoke_held(session: AsyncSession, project_id: uuid.UUID, now: datetime) -> list[CerBlock]:
    """Revoke (and flag) every unit of the project still held by anyone; the revoked blocks."""
    result = await session.execute(
        sa.update(CerBlock)
        .where(col(CerBlock.project_id) == project_id, col(CerBlock.status) == BlockStatus.held)
        .values(status=BlockStatus.revoked, fraud_flagged=True, updated_at=now)
        .returning(CerBlock)
        .execution_options(synchronize_session=False)
    )
    return list(result.scalars())


async def flag_retired(session: AsyncSession, project_id: uuid.UUID, now: datetime) -> list[int]:
    """Flag the project's retired units; the size of each flagged block."""
    result = await session.execute(
        sa.update(CerBlock)
        .where(col(CerBlock.project_id) == project_id, col(CerBlock.status) == BlockStatus.retired)
        .values(fraud_flagged=True, updated_at=now)
        .returning(col(CerBlock.serial_end) - col(CerBlock.serial_start) + 1)
        .execution_options(synchronize_session=False)
    )
    return [int(n) for n in result.scalars()]


# --- issuances, transfers, retirements ------------------------------------------------------


async def issuance(session: AsyncSession, issuance_id: uuid.UUID) -> CerIssuance | None:
    return await session.get(CerIssuance, issuance_id)


async def issuances_page(
    session: AsyncSession, *, after: tuple[Any, ...] | None, limit: int
) -> list[CerIssuance]:
    stmt = _after(select(CerIssuance), [col(CerIssuance.issued_at), col(CerIssuance.id)], after, limit)
    return list((await session.execute(stmt)).scalars())


async def transfers_page(
    session: AsyncSession, *, party: uuid.UUID | None, after: tuple[Any, ...] | None, limit: int
) -> list[CerTransfer]:
    """Newest first. ``party``: only the transfers from or to it."""
    stmt = select(CerTransfer)
    if party is not None:
        stmt = stmt.where(sa.or_(col(CerTransfer.from_org_id) == party, col(CerTransfer.to_org_id) == party))
    stmt = _after(stmt, [col(CerTransfer.created_at), col(CerTransfer.id)], after, limit)
    return list((await session.execute(stmt)).scalars())


async def retirements_page(
    session: AsyncSession, *, holder: uuid.UUID | None, after: tuple[Any, ...] | None, limit: int
) -> list[CerRetirement]:
    """Newest first. ``holder``: only its retirements."""
    stmt = select(CerRetirement)
    if holder is not None:
        stmt = stmt.where(CerRetirement.holder_org_id == holder)
    stmt = _after(stmt, [col(CerRetirement.retired_at), col(CerRetirement.id)], after, limit)
    return list((await session.execute(stmt)).scalars())


async def retirement_by_number(session: AsyncSession, number: str) -> CerRetirement | None:
    stmt = select(CerRetirement).where(CerRetirement.certificate_number == number)
    return (await session.execute(stmt)).scalar_one_or_none()


async def certificate_numbers(
    session: AsyncSession, retirement_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, str]:
    if not retirement_ids:
        return {}
    rows = await session.execute(
        select(CerRetirement.id, CerRetirement.certificate_number).where(
            col(CerRetirement.id).in_(list(retirement_ids))
        )
    )
    return {r[0]: r[1] for r in rows}


async def flagged_retirements(session: AsyncSession, retirement_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    if not retirement_ids:
        return set()
    rows = await session.execute(
        select(CerBlock.retirement_id)
        .distinct()
        .where(col(CerBlock.retirement_id).in_(list(retirement_ids)), col(CerBlock.fraud_flagged))
    )
    return {r for r in rows.scalars() if r is not None}


# --- disclosure (tier 2) --------------------------------------------------------------------


async def daily_tonnes(conn: Conn, first: date, last: date, zone: str) -> list[Any]:
    """Tonnes issued and retired per local day from ``first`` to ``last`` (time zone ``zone``)."""
    return await conn.fetch(
        "WITH days AS (SELECT d::date AS day FROM generate_series($1::date, $2::date, interval '1 day') d),"
        " i AS (SELECT (issued_at AT TIME ZONE $3)::date AS day, sum(tonnes) AS t FROM cer_issuances"
        "   WHERE issued_at >= ($1::date::timestamp AT TIME ZONE $3) GROUP BY 1),"
        " r AS (SELECT (retired_at AT TIME ZONE $3)::date AS day, sum(tonnes) AS t FROM cer_retirements"
        "   WHERE retired_at >= ($1::date::timestamp AT TIME ZONE $3) GROUP BY 1)"
        " SELECT days.day, coalesce(i.t, 0)::bigint AS issued, coalesce(r.t, 0)::bigint AS retired"
        " FROM days LEFT JOIN i ON i.day = days.day LEFT JOIN r ON r.day = days.day ORDER BY days.day",
        first,
        last,
        zone,
    )


async def totals(conn: Conn, today: date) -> dict[str, int]:
    row = await conn.fetchrow(
        """
        SELECT (SELECT count(*) FROM cer_projects) AS projects,
               (SELECT count(*) FROM cer_projects WHERE status = $2 AND publicity_ends_on >= $1)
                 AS projects_in_publicity,
               (SELECT coalesce(sum(claimed_g), 0) FROM cer_projects) AS claimed_g,
               (SELECT coalesce(sum(verified_g), 0) FROM cer_issuances) AS verified_g,
               (SELECT coalesce(sum(tonnes), 0) FROM cer_issuances) AS issued_tonnes,
               (SELECT coalesce(sum(serial_end - serial_start + 1) FILTER (WHERE status = $3), 0)
                  FROM cer_blocks) AS held_tonnes,
               (SELECT coalesce(sum(serial_end - serial_start + 1) FILTER (WHERE status = $4), 0)
                  FROM cer_blocks) AS retired_tonnes,
               (SELECT coalesce(sum(serial_end - serial_start + 1) FILTER (WHERE status = $5), 0)
                  FROM cer_blocks) AS revoked_tonnes,
               (SELECT count(*) FROM cer_retirements) AS certificates
        """,
        today,
        ProjectStatus.publicity.value,
        BlockStatus.held.value,
        BlockStatus.retired.value,
        BlockStatus.revoked.value,
    )
    assert row is not None
    return {k: int(v) for k, v in row.items()}


# --- calendar and prices --------------------------------------------------------------------


async def calendar_entries(session: AsyncSession, start: date, end: date) -> list[CerCalendarDay]:
    rows = await session.execute(select(CerCalendarDay).where(col(CerCalendarDay.day).between(start, end)))
    return list(rows.scalars())


async def calendar_overrides(session: AsyncSession, start: date, end: date) -> dict[date, bool]:
    return {e.day: e.workday for e in await calendar_entries(session, start, end)}


async def workday_of(session: AsyncSession, day: date) -> bool | None:
    """What the calendar table says of ``day`` (None: nothing)."""
    row = await session.execute(select(CerCalendarDay.workday).where(CerCalendarDay.day == day))
    return row.scalar_one_or_none()


async def set_calendar_day(
    session: AsyncSession, day: date, workday: bool, note: str, by: str, at: datetime
) -> None:
    stmt = pg_insert(CerCalendarDay).values(day=day, workday=workday, note=note, updated_by=by, updated_at=at)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[col(CerCalendarDay.day)],
            set_={
                "workday": stmt.excluded.workday,
                "note": stmt.excluded.note,
                "updated_by": stmt.excluded.updated_by,
                "updated_at": stmt.excluded.updated_at,
            },
        )
    )


async def price_fen(session: AsyncSession, day: date) -> int | None:
    row = await session.execute(select(CerPrice.price_fen).where(CerPrice.day == day))
    return row.scalar_one_or_none()


async def set_price(session: AsyncSession, day: date, fen: int, by: str, at: datetime) -> CerPrice:
    stmt = pg_insert(CerPrice).values(day=day, price_fen=fen, recorded_by=by, recorded_at=at)
    stmt = stmt.on_conflict_do_update(
        index_elements=[col(CerPrice.day)],
        set_={
            "price_fen": stmt.excluded.price_fen,
            "recorded_by": stmt.excluded.recorded_by,
            "recorded_at": stmt.excluded.recorded_at,
        },
    )
    result = await session.scalars(stmt.returning(CerPrice), execution_options={"populate_existing": True})
    return result.one()


async def prices_between(session: AsyncSession, start: date, end: date) -> list[CerPrice]:
    rows = await session.execute(
        select(CerPrice).where(col(CerPrice.day).between(start, end)).order_by(col(CerPrice.day).desc())
    )
    return list(rows.scalars())


async def prices_on(session: AsyncSession, days: Sequence[date]) -> list[CerPrice]:
    rows = await session.execute(select(CerPrice).where(col(CerPrice.day).in_(list(days))))
    return list(rows.scalars())


async def count_projects_by_status(session: AsyncSession) -> dict[str, int]:
    """How many projects are in each status."""
    rows = await session.execute(
        sa.select(col(CerProject.status), sa.func.count()).group_by(col(CerProject.status))
    )
    return {str(status): int(n) for status, n in rows}


async def projects_with_unanswered_objections(session: AsyncSession, limit: int) -> list[CerProject]:
    """Projects with an objection not answered yet, oldest objection first."""
    first = (
        sa.select(col(CerObjection.project_id), sa.func.min(col(CerObjection.filed_at)).label("filed_at"))
        .where(col(CerObjection.answered_at).is_(None))
        .group_by(col(CerObjection.project_id))
        .subquery()
    )
    stmt = (
        select(CerProject)
        .join(first, first.c.project_id == col(CerProject.id))
        .order_by(first.c.filed_at, col(CerProject.id))
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def project_blocks(session: AsyncSession, project_id: uuid.UUID) -> list[CerBlock]:
    """Every block of the project's units, by serial."""
    stmt = select(CerBlock).where(CerBlock.project_id == project_id).order_by(col(CerBlock.serial_start))
    return list((await session.execute(stmt)).scalars())


async def flow_days(conn: Conn, first: date, last: date, zone: str) -> list[Any]:
    """Tonnes issued, transferred and retired per local day from ``first`` to ``last`` (zone ``zone``),
    every day, zeros included."""
    return await conn.fetch(
        "WITH days AS (SELECT d::date AS day FROM generate_series($1::date, $2::date, interval '1 day') d),"
        " lo AS (SELECT $1::date::timestamp AT TIME ZONE $3 AS t), hi AS (SELECT ($2::date + 1)::timestamp AT TIME ZONE $3 AS t),"
        " i AS (SELECT (issued_at AT TIME ZONE $3)::date AS day, sum(tonnes) AS t FROM cer_issuances"
        "   WHERE issued_at >= (SELECT t FROM lo) AND issued_at < (SELECT t FROM hi) GROUP BY 1),"
        " x AS (SELECT (created_at AT TIME ZONE $3)::date AS day, sum(tonnes) AS t FROM cer_transfers"
        "   WHERE created_at >= (SELECT t FROM lo) AND created_at < (SELECT t FROM hi) GROUP BY 1),"
        " r AS (SELECT (retired_at AT TIME ZONE $3)::date AS day, sum(tonnes) AS t FROM cer_retirements"
        "   WHERE retired_at >= (SELECT t FROM lo) AND retired_at < (SELECT t FROM hi) GROUP BY 1)"
        " SELECT days.day, coalesce(i.t, 0)::bigint AS issued, coalesce(x.t, 0)::bigint AS transferred,"
        " coalesce(r.t, 0)::bigint AS retired FROM days LEFT JOIN i ON i.day = days.day"
        " LEFT JOIN x ON x.day = days.day LEFT JOIN r ON r.day = days.day ORDER BY days.day",
        first,
        last,
        zone,
    )
