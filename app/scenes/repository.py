"""All SQL of the scenes domain that is more than a primary-key lookup, the public map above all.

Near me without PostGIS: a bounding box narrows the search on the partial btree index
``ix_scenes_near (lat_cell, lng) WHERE status = 'approved'`` — ``lat_cell = floor(lat * 100)`` is a
0.01° band of latitude (~1.1 km), so the box becomes a handful of tight index ranges
(``lat_cell = ANY(cells) AND lng BETWEEN …``) — and the exact haversine distance orders the rows
and cuts the radius.
"""

import math
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)
METRES_PER_DEGREE = math.pi * EARTH_RADIUS_M / 180

HAVERSINE_SQL = (
    f"2 * {EARTH_RADIUS_M} * asin(least(1, sqrt("
    "power(sin(radians(s.lat - :lat) / 2), 2)"
    " + cos(radians(:lat)) * cos(radians(s.lat)) * power(sin(radians(s.lng - :lng) / 2), 2))))"
)

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


def _filters(
    city_code: str | None, district_code: str | None, category: str | None, behaviour_type: str | None
) -> tuple[list[str], dict[str, Any]]:
    where, params = ["s.status = 'approved'"], {}
    if city_code:
        where.append("s.city_code = :city_code")
        params["city_code"] = city_code
    if district_code:
        where.append("s.district_code = :district_code")
        params["district_code"] = district_code
    if category:
        where.append("s.category = :category")
        params["category"] = category
    if behaviour_type:
        where.append("s.behaviour_types @> ARRAY[CAST(:behaviour_type AS text)]")
        params["behaviour_type"] = behaviour_type
    return where, params


async def public_list(
    session: AsyncSession,
    *,
    city_code: str | None,
    district_code: str | None,
    category: str | None,
    behaviour_type: str | None,
    after_label: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    where, params = _filters(city_code, district_code, category, behaviour_type)
    if after_label is not None:
        where.append("s.label_code > :after_label")
        params["after_label"] = after_label
    sql = (
        f"SELECT {_PUBLIC_COLUMNS} FROM scenes s JOIN organizations o ON o.id = s.operator_id"
        f" WHERE {' AND '.join(where)} ORDER BY s.label_code LIMIT :limit"
    )
    rows = await session.execute(sa.text(sql), {**params, "limit": limit})
    return [dict(r._mapping) for r in rows]


def near_sql(where: list[str]) -> str:
    return (
        f"SELECT {_PUBLIC_COLUMNS}, d.distance_m FROM scenes s"
        f" CROSS JOIN LATERAL (SELECT {HAVERSINE_SQL} AS distance_m) d"
        " JOIN organizations o ON o.id = s.operator_id"
        " WHERE s.lat_cell = ANY(CAST(:cells AS integer[])) AND s.lng BETWEEN :lng_min AND :lng_max"
        " AND s.lat BETWEEN :lat_min AND :lat_max AND d.distance_m <= :radius"
        f" AND {' AND '.join(where)} ORDER BY d.distance_m, s.id LIMIT :limit"
    )


async def public_near(
    session: AsyncSession,
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
) -> list[dict[str, Any]]:
    where, params = _filters(city_code, district_code, category, behaviour_type)
    if after is not None:
        where.append("(d.distance_m, s.id) > (CAST(:after_d AS double precision), CAST(:after_id AS uuid))")
        params.update(after_d=after[0], after_id=after[1])
    params.update(bounding_box(lat, lng, radius_m), lat=lat, lng=lng, radius=radius_m, limit=limit)
    rows = await session.execute(sa.text(near_sql(where)), params)
    return [dict(r._mapping) for r in rows]


async def public_one(session: AsyncSession, scene_id: uuid.UUID) -> dict[str, Any] | None:
    row = (
        await session.execute(
            sa.text(
                f"SELECT {_PUBLIC_COLUMNS} FROM scenes s JOIN organizations o ON o.id = s.operator_id"
                " WHERE s.id = :id AND s.status = 'approved'"
            ),
            {"id": scene_id},
        )
    ).first()
    return dict(row._mapping) if row else None


async def published_scene_behaviour_types(session: AsyncSession) -> list[str]:
    """Behaviour types of published scene-category methodology versions (read-only, methodologies' table)."""
    rows = await session.execute(
        sa.text(
            "SELECT DISTINCT behaviour_type FROM methodology_versions"
            " WHERE category = 'scene' AND status = 'published' ORDER BY behaviour_type"
        )
    )
    return [r[0] for r in rows]


async def next_label_number(session: AsyncSession) -> int:
    return int((await session.execute(sa.text("SELECT nextval('scene_label_seq')"))).scalar_one())
