"""All SQL of the scenes domain: the lifecycle on the request's session, the public map on asyncpg.

The public map (list, near me, one scene) is the hot path: one statement each, SQL text on the raw
asyncpg connection of the request's transaction. It joins ``organizations`` (the organizations
domain's table) for the operator's name, so a page stays one round trip.

Near me without PostGIS: a bounding box narrows the search on the partial btree index
``ix_scenes_near (lat_cell, lng) WHERE status = 'approved'`` — ``lat_cell = floor(lat * 100)`` is a
0.01° band of latitude (~1.1 km), so the box becomes a handful of tight index ranges
(``lat_cell = ANY(cells) AND lng BETWEEN …``) — and the exact haversine distance orders the rows
and cuts the radius.
"""

import math
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.core import db
from app.core.pagination import keyset
from app.scenes.models import ChangeStatus, Scene, SceneChange, SceneStatus

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)
METRES_PER_DEGREE = math.pi * EARTH_RADIUS_M / 180


def haversine_sql(lat: str, lng: str) -> str:
    """The great-circle distance in metres from (``lat``, ``lng``: SQL expressions) to scene ``s``."""
    return (
        f"2 * {EARTH_RADIUS_M} * asin(least(1, sqrt("
        f"power(sin(radians(s.lat - {lat}) / 2), 2)"
        f" + cos(radians({lat})) * cos(radians(s.lat)) * power(sin(radians(s.lng - {lng}) / 2), 2))))"
    )


# o: organizations, the organizations domain's table (the operator's name), joined to keep one statement
_PUBLIC_FROM = "scenes s JOIN organizations o ON o.id = s.operator_id"
_PUBLIC_COLUMNS = (
    "s.id, s.name, s.category, s.address, s.city_code, s.district_code, s.lat, s.lng, s.opening_hours,"
    " s.behaviour_types, s.description, s.label_code, s.operator_id, o.name AS operator_name, s.approved_at"
)


def haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """The same great-circle distance as the SQL, in Python (tests, benchmarks)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lng2 - lng1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def bounding_box(lat: float, lng: float, radius_m: float) -> dict[str, Any]:
    """A box that contains every point within ``radius_m`` (a little generous, never short)."""
    dlat = radius_m / METRES_PER_DEGREE * 1.001 + 1e-9
    lat_min, lat_max = max(-90.0, lat - dlat), min(90.0, lat + dlat)
    # the widest longitude span is at the box's latitude farthest from the equator
    widest = max(abs(lat_min), abs(lat_max))
    if widest >= 89.9:
        lng_min, lng_max = -180.0, 180.0
    else:
        dlng = dlat / math.cos(math.radians(widest))
        lng_min, lng_max = lng - dlng, lng + dlng
        if lng_min < -180 or lng_max > 180:  # across the antimeridian: take the whole band
            lng_min, lng_max = -180.0, 180.0
    cells = list(range(math.floor(lat_min * 100), math.floor(lat_max * 100) + 1))
    return {"lat_min": lat_min, "lat_max": lat_max, "lng_min": lng_min, "lng_max": lng_max, "cells": cells}


class _Args:
    """Positional parameters of one statement: ``args(value)`` appends it and gives its ``$n``."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def _filters(
    args: _Args,
    city_code: str | None,
    district_code: str | None,
    category: str | None,
    behaviour_type: str | None,
    name: str | None = None,
) -> list[str]:
    where = [f"s.status = '{SceneStatus.approved}'"]  # a literal, so the partial indexes apply
    if name:
        pattern = "%" + name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(f"s.name ILIKE {args(pattern)}")
    if city_code:
        where.append(f"s.city_code = {args(city_code)}")
    if district_code:
        where.append(f"s.district_code = {args(district_code)}")
    if category:
        where.append(f"s.category = {args(category)}")
    if behaviour_type:
        where.append(f"s.behaviour_types @> ARRAY[{args(behaviour_type)}::text]")
    return where


async def public_list(
    conn: db.Conn,
    *,
    city_code: str | None,
    district_code: str | None,
    category: str | None,
    behaviour_type: str | None,
    after_label: str | None,
    limit: int,
    name: str | None = None,
) -> list[asyncpg.Record]:
    """Approved scenes by label code, after ``after_label``; ``name``: whose name contains it."""
    args = _Args()
    where = _filters(args, city_code, district_code, category, behaviour_type, name)
    if after_label is not None:
        where.append(f"s.label_code > {args(after_label)}")
    sql = (
        f"SELECT {_PUBLIC_COLUMNS} FROM {_PUBLIC_FROM}"
        f" WHERE {' AND '.join(where)} ORDER BY s.label_code LIMIT {args(limit)}"
    )
    return await conn.fetch(sql, *args.values)


def near_query(
    *,
    lat: float,
    lng: float,
    radius_m: float,
    city_code: str | None = None,
    district_code: str | None = None,
    category: str | None = None,
    behaviour_type: str | None = None,
    after: tuple[float, uuid.UUID] | None = None,
    limit: int,
    name: str | None = None,
) -> tuple[str, list[Any]]:
    """The near-me statement and its arguments: approved scenes within ``radius_m``, nearest first."""
    args = _Args()
    at_lat, at_lng = args(lat), args(lng)
    box = bounding_box(lat, lng, radius_m)
    where = [
        f"s.lat_cell = ANY({args(box['cells'])}::integer[])",
        f"s.lng BETWEEN {args(box['lng_min'])} AND {args(box['lng_max'])}",
        f"s.lat BETWEEN {args(box['lat_min'])} AND {args(box['lat_max'])}",
        f"d.distance_m <= {args(radius_m)}",
        *_filters(args, city_code, district_code, category, behaviour_type, name),
    ]
    if after is not None:
        where.append(f"(d.distance_m, s.id) > ({args(after[0])}::double precision, {args(after[1])}::uuid)")
    sql = (
        f"SELECT {_PUBLIC_COLUMNS}, d.distance_m FROM scenes s"
        f" CROSS JOIN LATERAL (SELECT {haversine_sql(at_lat, at_lng)} AS distance_m) d"
        " JOIN organizations o ON o.id = s.operator_id"
        f" WHERE {' AND '.join(where)} ORDER BY d.distance_m, s.id LIMIT {args(limit)}"
    )
    return sql, args.values


async def public_near(
    conn: db.Conn,
    *,
    lat: float,
    lng: float,
    radius_m: float,
    city_code: str | None,
    district_code: str | None,
    category: str | None,
    behaviour_type: str | None,
    after: tuple[float, uuid.UUID] | None,
    limit: int,
    name: str | None = None,
) -> list[asyncpg.Record]:
    """Approved scenes within ``radius_m``, nearest first, after ``after`` (distance, id): one statement."""
    sql, args = near_query(
        name=name,
        lat=lat,
        lng=lng,
        radius_m=radius_m,
        city_code=city_code,
        district_code=district_code,
        category=category,
        behaviour_type=behaviour_type,
        after=after,
        limit=limit,
    )
    return await conn.fetch(sql, *args)


async def public_one(conn: db.Conn, scene_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_PUBLIC_COLUMNS} FROM {_PUBLIC_FROM} WHERE s.id = $1 AND s.status = '{SceneStatus.approved}'",
        scene_id,
    )


# ---- the lifecycle (the operator's and the authority's side)


async def insert(session: AsyncSession, row: Scene | SceneChange) -> None:
    session.add(row)
    await session.flush()


async def get(session: AsyncSession, scene_id: uuid.UUID, *, lock: bool = False) -> Scene | None:
    """The scene, read afresh; ``lock`` locks its row."""
    stmt = select(Scene).where(Scene.id == scene_id).execution_options(populate_existing=True)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def page(
    session: AsyncSession,
    *,
    operator_id: uuid.UUID | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> list[Scene]:
    """``limit + 1`` scenes, newest first, after the cursor's; ``operator_id``: only that operator's."""
    stmt = select(Scene)
    if operator_id is not None:
        stmt = stmt.where(Scene.operator_id == operator_id)
    if status:
        stmt = stmt.where(Scene.status == status)
    stmt = keyset(stmt, cursor, (Scene.created_at, datetime), (Scene.id, uuid.UUID), descending=True)
    return list((await session.execute(stmt.limit(limit + 1))).scalars())


async def latest_changes(
    session: AsyncSession, scene_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, SceneChange]:
    """The latest proposed change of each scene that has one."""
    result = await session.execute(
        select(SceneChange)
        .where(col(SceneChange.scene_id).in_(scene_ids))
        .order_by(col(SceneChange.scene_id), col(SceneChange.created_at).desc())
        .distinct(col(SceneChange.scene_id))
    )
    return {c.scene_id: c for c in result.scalars()}


async def live_change(
    session: AsyncSession, scene_id: uuid.UUID, statuses: Sequence[ChangeStatus]
) -> SceneChange | None:
    """The scene's change in one of ``statuses`` (at most one is live), its row locked."""
    stmt = (
        select(SceneChange)
        .where(SceneChange.scene_id == scene_id, col(SceneChange.status).in_(statuses))
        .with_for_update()
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def change(session: AsyncSession, change_id: uuid.UUID) -> SceneChange | None:
    """The change, its row locked."""
    stmt = select(SceneChange).where(SceneChange.id == change_id).with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def reject_submitted_changes(
    session: AsyncSession, scene_id: uuid.UUID, reason: str, at: datetime
) -> None:
    """Every change of the scene still waiting for its review is rejected."""
    await session.execute(
        sa.update(SceneChange)
        .where(col(SceneChange.scene_id) == scene_id, col(SceneChange.status) == ChangeStatus.submitted)
        .values(status=ChangeStatus.rejected, reason=reason, decided_at=at, updated_at=at)
    )


async def next_label_number(session: AsyncSession) -> int:
    return int((await session.execute(sa.select(sa.func.nextval("scene_label_seq")))).scalar_one())


# ---- what batch ingestion asks (points) ------------------------------------------------------------------


async def scene_states(conn: db.Conn, scene_ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    """Status and recorded behaviour types of these scenes, on the ingestion transaction's connection."""
    return await conn.fetch(
        "SELECT id, status, behaviour_types FROM scenes WHERE id = ANY($1::uuid[])", scene_ids
    )


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    """How many scenes are in each status."""
    rows = await session.execute(sa.select(col(Scene.status), sa.func.count()).group_by(col(Scene.status)))
    return {str(status): int(n) for status, n in rows}


async def count_changes_by_status(session: AsyncSession) -> dict[str, int]:
    """How many proposed changes are in each status."""
    rows = await session.execute(
        sa.select(col(SceneChange.status), sa.func.count()).group_by(col(SceneChange.status))
    )
    return {str(status): int(n) for status, n in rows}


async def scenes_with_change(
    session: AsyncSession, statuses: Sequence[ChangeStatus], limit: int
) -> list[Scene]:
    """Scenes whose proposed change is in one of ``statuses``, oldest change first."""
    stmt = (
        select(Scene)
        .join(SceneChange, col(SceneChange.scene_id) == col(Scene.id))
        .where(col(SceneChange.status).in_(statuses))
        .order_by(col(SceneChange.created_at), col(Scene.id))
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())
