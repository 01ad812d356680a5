"""All SQL of the CER registry. Aggregation and trace read the points domain's tables set-based.

Locks: :func:`lock_owner` (one owner's project creation at a time) and :func:`lock_registry`
(every movement of units: issuance, transfer, retirement, clawback). Movements are rare — trades
settle on an exchange and are registered here afterwards — so one lock for all of them keeps the
invariants simple (a clawback never races a transfer of the same units) at no real cost.
"""

import hashlib
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.cer.blocks import Range
from app.cer.models import CerBlock

_OWNER_LOCK_BASE = 0x0CE5_0000_0000
_REGISTRY_LOCK = 0x0CE5_FFFF_FFFF


async def lock_owner(session: AsyncSession, owner_id: uuid.UUID) -> None:
    key = _OWNER_LOCK_BASE + int.from_bytes(hashlib.blake2b(owner_id.bytes, digest_size=4).digest(), "big")
    await session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


async def lock_registry(session: AsyncSession) -> None:
    await session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _REGISTRY_LOCK})


# --- projects -------------------------------------------------------------------------------


async def known_codes(session: AsyncSession, codes: Sequence[str]) -> set[str]:
    rows = await session.execute(
        sa.text(
            "SELECT DISTINCT code FROM methodology_versions"
            " WHERE code = ANY(:codes) AND status IN ('published', 'retired')"
        ),
        {"codes": list(codes)},
    )
    return {r[0] for r in rows}


async def overlapping_projects(
    session: AsyncSession, owner_id: uuid.UUID, codes: Sequence[str], start: date, end: date
) -> list[uuid.UUID]:
    rows = await session.execute(
        sa.text(
            "SELECT id FROM cer_projects WHERE owner_org_id = :owner AND methodology_codes && :codes"
            " AND period_start <= :end AND period_end >= :start ORDER BY created_at"
        ),
        {"owner": owner_id, "codes": list(codes), "start": start, "end": end},
    )
    return [r[0] for r in rows]


async def aggregate(
    session: AsyncSession,
    project_id: uuid.UUID,
    owner_id: uuid.UUID,
    codes: Sequence[str],
    start: datetime,
    end: datetime,
    cutoff: datetime,
    region: str,
) -> dict[str, int]:
    """Put the owner's eligible records of [start, end) into the project, set-based, in one statement.

    A record goes in unless it started before ``cutoff``, happened at a scene outside ``region``
    (a division-code prefix; records without a scene — travel — count as in the region), or is in
    another project already (``ON CONFLICT DO NOTHING`` on the primary key). Returns the counts.
    """
    row = (
        await session.execute(
            sa.text(
                """
                WITH candidates AS (
                    SELECT r.id,
                           r.started_at < :cutoff AS before_cutoff,
                           r.scene_id IS NOT NULL
                             AND (s.district_code IS NULL OR left(s.district_code, length(:region)) <> :region)
                             AS outside_region
                    FROM behaviour_records r
                    JOIN methodology_versions m ON m.id = r.methodology_version_id
                    LEFT JOIN scenes s ON s.id = r.scene_id
                    WHERE r.operator_id = :owner AND m.code = ANY(:codes)
                      AND r.started_at >= :start AND r.started_at < :end
                ), inserted AS (
                    INSERT INTO cer_project_records (record_id, project_id)
                    SELECT id, :project FROM candidates WHERE NOT before_cutoff AND NOT outside_region
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
                """
            ),
            {
                "project": project_id,
                "owner": owner_id,
                "codes": list(codes),
                "start": start,
                "end": end,
                "cutoff": cutoff,
                "region": region,
            },
        )
    ).mappings().one()
    counts = {k: int(v) for k, v in row.items()}
    counts["in_other_projects"] = counts.pop("eligible") - counts["included"]
    return counts


async def report_rows(session: AsyncSession, project_id: uuid.UUID, tz: str) -> dict[str, Any]:
    """The project's totals by methodology version, by month (in ``tz``) and overall."""
    params = {"project": project_id, "tz": tz}
    versions = await session.execute(
        sa.text(
            """
            SELECT m.id, m.code, m.version, m.behaviour_type, count(*) AS records, sum(r.reduction_g) AS g
            FROM cer_project_records p
            JOIN behaviour_records r ON r.id = p.record_id
            JOIN methodology_versions m ON m.id = r.methodology_version_id
            WHERE p.project_id = :project
            GROUP BY m.id, m.code, m.version, m.behaviour_type
            ORDER BY m.code, m.version
            """
        ),
        params,
    )
    months = await session.execute(
        sa.text(
            """
            SELECT to_char(r.started_at AT TIME ZONE :tz, 'YYYY-MM') AS month, count(*), sum(r.reduction_g)
            FROM cer_project_records p JOIN behaviour_records r ON r.id = p.record_id
            WHERE p.project_id = :project
            GROUP BY 1 ORDER BY 1
            """
        ),
        params,
    )
    totals = (
        await session.execute(
            sa.text(
                "SELECT count(*), coalesce(sum(r.reduction_g), 0), count(DISTINCT r.user_id)"
                " FROM cer_project_records p JOIN behaviour_records r ON r.id = p.record_id"
                " WHERE p.project_id = :project"
            ),
            params,
        )
    ).one()
    return {
        "totals": {"records": int(totals[0]), "reduction_g": int(totals[1]), "users": int(totals[2])},
        "by_methodology_version": [
            {
                "methodology_version_id": str(v[0]),
                "code": v[1],
                "version": int(v[2]),
                "behaviour_type": v[3],
                "records": int(v[4]),
                "reduction_g": int(v[5]),
            }
            for v in versions
        ],
        "by_month": [{"month": m[0], "records": int(m[1]), "reduction_g": int(m[2])} for m in months],
    }


async def objection_counts(session: AsyncSession, project_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, tuple[int, int]]:
    if not project_ids:
        return {}
    rows = await session.execute(
        sa.text(
            "SELECT project_id, count(*), count(*) FILTER (WHERE answered_at IS NULL) FROM cer_objections"
            " WHERE project_id = ANY(:ids) GROUP BY project_id"
        ),
        {"ids": list(project_ids)},
    )
    return {r[0]: (int(r[1]), int(r[2])) for r in rows}


async def org_names(session: AsyncSession, ids: Sequence[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    wanted = [i for i in set(ids) if i is not None]
    if not wanted:
        return {}
    rows = await session.execute(
        sa.text("SELECT id, name FROM organizations WHERE id = ANY(:ids)"), {"ids": wanted}
    )
    return {r[0]: r[1] for r in rows}


async def issued_tonnes(session: AsyncSession, project_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    if not project_ids:
        return {}
    rows = await session.execute(
        sa.text("SELECT project_id, tonnes FROM cer_issuances WHERE project_id = ANY(:ids)"),
        {"ids": list(project_ids)},
    )
    return {r[0]: int(r[1]) for r in rows}


# --- counters and blocks --------------------------------------------------------------------


async def take_counter(session: AsyncSession, name: str, count: int) -> int:
    """Reserve ``count`` consecutive values of a counter (row-locked): returns the first."""
    value = (
        await session.execute(
            sa.text(
                "UPDATE cer_counters SET next_value = next_value + :n WHERE name = :name"
                " RETURNING next_value - :n"
            ),
            {"name": name, "n": count},
        )
    ).scalar_one()
    return int(value)


async def held_blocks(session: AsyncSession, holder_id: uuid.UUID) -> list[CerBlock]:
    result = await session.execute(
        sa.select(CerBlock)
        .where(CerBlock.holder_org_id == holder_id, CerBlock.status == "held")
        .order_by(CerBlock.serial_start)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list(result.scalars())


async def blocks_touching(session: AsyncSession, ranges: Sequence[Range]) -> list[CerBlock]:
    """Every block sharing a serial with any of ``ranges``."""
    if not ranges:
        return []
    result = await session.execute(
        sa.select(CerBlock).where(
            sa.or_(*(sa.and_(CerBlock.serial_start <= r.end, CerBlock.serial_end >= r.start) for r in ranges))
        )
    )
    return list(result.scalars())


async def replace_blocks(session: AsyncSession, old_ids: Sequence[int], new_rows: Sequence[dict[str, Any]]) -> None:
    """Delete the cut blocks and insert their pieces (the exclusion constraint checks the result)."""
    if old_ids:
        await session.execute(sa.delete(CerBlock).where(CerBlock.id.in_(list(old_ids))))
    if new_rows:
        await session.execute(sa.insert(CerBlock), list(new_rows))


async def block_at(session: AsyncSession, serial: int) -> CerBlock | None:
    result = await session.execute(
        sa.select(CerBlock).where(CerBlock.serial_start <= serial, CerBlock.serial_end >= serial)
    )
    return result.scalar_one_or_none()


async def account_tonnes(session: AsyncSession, org_id: uuid.UUID) -> dict[str, int]:
    rows = await session.execute(
        sa.text(
            "SELECT status, coalesce(sum(serial_end - serial_start + 1), 0) FROM cer_blocks"
            " WHERE holder_org_id = :org GROUP BY status"
        ),
        {"org": org_id},
    )
    out = {"held": 0, "retired": 0, "revoked": 0}
    out.update({r[0]: int(r[1]) for r in rows})
    return out


# --- trace ----------------------------------------------------------------------------------


async def trace_versions(session: AsyncSession, project_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await session.execute(
        sa.text(
            """
            SELECT m.id, m.code, m.version, m.behaviour_type, m.net_factor_g::text, m.status,
                   count(*) AS records, sum(r.reduction_g) AS g
            FROM cer_project_records p
            JOIN behaviour_records r ON r.id = p.record_id
            JOIN methodology_versions m ON m.id = r.methodology_version_id
            WHERE p.project_id = :project
            GROUP BY m.id ORDER BY m.code, m.version
            """
        ),
        {"project": project_id},
    )
    return [
        {
            "methodology_version_id": r[0],
            "code": r[1],
            "version": int(r[2]),
            "behaviour_type": r[3],
            "net_factor_g": r[4],
            "status": r[5],
            "records": int(r[6]),
            "reduction_g": int(r[7]),
        }
        for r in rows
    ]


async def trace_batches(session: AsyncSession, project_id: uuid.UUID, limit: int) -> tuple[int, list[dict[str, Any]]]:
    rows = (
        await session.execute(
            sa.text(
                """
                WITH per_batch AS (
                    SELECT r.batch_id, count(*) AS n
                    FROM cer_project_records p JOIN behaviour_records r ON r.id = p.record_id
                    WHERE p.project_id = :project GROUP BY r.batch_id
                )
                SELECT b.id, b.operator_id, b.kid, b.body_sha256,
                       encode(sha256(b.body), 'hex') = b.body_sha256 AS ok, b.signature, b.received_at, pb.n,
                       count(*) OVER () AS total
                FROM per_batch pb JOIN behaviour_batches b ON b.id = pb.batch_id
                ORDER BY b.received_at, b.id
                LIMIT :limit
                """
            ),
            {"project": project_id, "limit": limit},
        )
    ).all()
    total = int(rows[0][8]) if rows else 0
    return total, [
        {
            "batch_id": r[0],
            "operator_id": r[1],
            "kid": r[2],
            "body_sha256": r[3],
            "body_hash_ok": bool(r[4]),
            "signature": r[5],
            "received_at": r[6],
            "records_in_project": int(r[7]),
        }
        for r in rows
    ]


async def trace_records(session: AsyncSession, project_id: uuid.UUID, limit: int) -> list[dict[str, Any]]:
    rows = await session.execute(
        sa.text(
            "SELECT r.id, r.record_id, r.batch_id, r.behaviour_type, r.started_at, r.reduction_g,"
            " r.methodology_version_id FROM cer_project_records p JOIN behaviour_records r ON r.id = p.record_id"
            " WHERE p.project_id = :project ORDER BY p.record_id LIMIT :limit"
        ),
        {"project": project_id, "limit": limit},
    )
    keys = ("id", "record_id", "batch_id", "behaviour_type", "started_at", "reduction_g", "methodology_version_id")
    return [dict(zip(keys, r, strict=True)) for r in rows]


# --- disclosure -----------------------------------------------------------------------------


async def totals(session: AsyncSession, today: date) -> dict[str, int]:
    row = (
        await session.execute(
            sa.text(
                """
                SELECT (SELECT count(*) FROM cer_projects),
                       (SELECT count(*) FROM cer_projects WHERE status = 'publicity' AND publicity_ends_on >= :today),
                       (SELECT coalesce(sum(claimed_g), 0) FROM cer_projects),
                       (SELECT coalesce(sum(verified_g), 0) FROM cer_issuances),
                       (SELECT coalesce(sum(tonnes), 0) FROM cer_issuances),
                       (SELECT coalesce(sum(serial_end - serial_start + 1) FILTER (WHERE status = 'held'), 0)
                          FROM cer_blocks),
                       (SELECT coalesce(sum(serial_end - serial_start + 1) FILTER (WHERE status = 'retired'), 0)
                          FROM cer_blocks),
                       (SELECT coalesce(sum(serial_end - serial_start + 1) FILTER (WHERE status = 'revoked'), 0)
                          FROM cer_blocks),
                       (SELECT count(*) FROM cer_retirements)
                """
            ),
            {"today": today},
        )
    ).one()
    keys = (
        "projects",
        "projects_in_publicity",
        "claimed_g",
        "verified_g",
        "issued_tonnes",
        "held_tonnes",
        "retired_tonnes",
        "revoked_tonnes",
        "certificates",
    )
    return {k: int(v) for k, v in zip(keys, row, strict=True)}


async def flagged_retirements(session: AsyncSession, retirement_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    if not retirement_ids:
        return set()
    rows = await session.execute(
        sa.text(
            "SELECT DISTINCT retirement_id FROM cer_blocks WHERE retirement_id = ANY(:ids) AND fraud_flagged"
        ),
        {"ids": list(retirement_ids)},
    )
    return {r[0] for r in rows}


async def calendar_overrides(session: AsyncSession, start: date, end: date) -> dict[date, bool]:
    rows = await session.execute(
        sa.text("SELECT day, workday FROM cer_calendar_days WHERE day BETWEEN :s AND :e"), {"s": start, "e": end}
    )
    return {r[0]: bool(r[1]) for r in rows}
