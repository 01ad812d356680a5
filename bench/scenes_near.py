"""Near-me over HTTP with 100,000 approved scenes: median and p95 latency, and the plan it uses.

    python bench/scenes_near.py [--scenes 100000] [--queries 200] [--radius 1000 3000 5000]

Starts ``carbon-points`` on a scratch embedded PostgreSQL in a child process, inserts the scenes
in one set-based ``INSERT … SELECT generate_series`` spread over Shenzhen (22.45–22.85 N,
113.75–114.60 E), then asks ``GET /v1/public/scenes?lat=&lng=&radius_m=`` from random points of
the city, one request at a time, and prints JSON: per radius the median and p95 latency and the
mean number of scenes returned (a page of 50), plus ``EXPLAIN (ANALYZE, BUFFERS)`` of the query
with and without its index (``ix_scenes_near`` on ``(lat_cell, lng)``, approved scenes only).
"""

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core import db  # noqa: E402
from app.scenes import repository  # noqa: E402
from bench._server import Server, dumps, percentile  # noqa: E402

BOX = (22.45, 22.85, 113.75, 114.60)


async def seed(database_url: str, scenes: int) -> float:
    conn = await asyncpg.connect(db.plain_url(database_url))
    try:
        org = uuid.uuid4()
        await conn.execute(
            "INSERT INTO organizations (id, kind, name, credit_code, status, created_at)"
            " VALUES ($1, 'scene_operator', 'bench scenes', '91BENCH0000000000X', 'approved', now())",
            org,
        )
        started = time.perf_counter()
        await conn.execute("SELECT setseed(0.42)")
        await conn.execute(
            """
            INSERT INTO scenes (id, operator_id, status, name, category, address, city_code, district_code,
                                lat, lng, behaviour_types, label_code, created_at, updated_at, approved_at)
            SELECT gen_random_uuid(), $1, 'approved', 'bench scene ' || g,
                   (ARRAY['business_premises', 'public_place', 'public_institution'])[1 + g % 3],
                   'bench address ' || g, '440300', '4403' || lpad((1 + g % 10)::text, 2, '0'),
                   $2::float8 + random() * ($3::float8 - $2::float8), $4::float8 + random() * ($5::float8 - $4::float8),
                   CASE WHEN g % 2 = 0 THEN ARRAY['own_cup'] ELSE ARRAY['own_cup', 'clean_plate'] END,
                   'SZ-CJ-2026-' || lpad(g::text, 6, '0'), now(), now(), now()
            FROM generate_series(1, $6::integer) AS g
            """,
            org,
            BOX[0],
            BOX[1],
            BOX[2],
            BOX[3],
            scenes,
        )
        await conn.execute("ANALYZE scenes")
        return time.perf_counter() - started
    finally:
        await conn.close()


async def explain(database_url: str, lat: float, lng: float, radius: float) -> dict:
    sql, args = repository.near_query(lat=lat, lng=lng, radius_m=radius, limit=51)
    conn = await asyncpg.connect(db.plain_url(database_url))
    out = {}
    try:
        for label, settings in (
            ("with_index", []),
            ("without_index", ["enable_indexscan", "enable_bitmapscan"]),
        ):
            transaction = conn.transaction()
            await transaction.start()
            for name in settings:
                await conn.execute(f"SET LOCAL {name} = off")
            rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *args)
            out[label] = [r[0] for r in rows]
            await transaction.rollback()
    finally:
        await conn.close()
    return out


async def run(args) -> dict:
    server = await asyncio.to_thread(lambda: Server().start())
    try:
        seconds = await seed(server.urls.database_url, args.scenes)
        rng = random.Random(7)
        results = {}
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            for _ in range(20):  # warm up
                await client.get("/v1/public/scenes", params={"lat": 22.6, "lng": 114.0, "radius_m": 1000})
            for radius in args.radius:
                latencies, counts = [], []
                for _ in range(args.queries):
                    lat = rng.uniform(BOX[0], BOX[1])
                    lng = rng.uniform(BOX[2], BOX[3])
                    t0 = time.perf_counter()
                    r = await client.get(
                        "/v1/public/scenes", params={"lat": lat, "lng": lng, "radius_m": radius}
                    )
                    latencies.append((time.perf_counter() - t0) * 1000)
                    assert r.status_code == 200, r.text
                    items = r.json()["items"]
                    assert [i["distance_m"] for i in items] == sorted(i["distance_m"] for i in items)
                    counts.append(len(items))
                results[f"radius_{radius}m"] = {
                    "queries": args.queries,
                    "median_ms": round(statistics.median(latencies), 2),
                    "p95_ms": round(percentile(latencies, 95), 2),
                    "mean_items": round(statistics.mean(counts), 1),
                }
        plan = await explain(server.urls.database_url, 22.6, 114.05, 3000)
        return {
            "scenes": args.scenes,
            "seed_seconds": round(seconds, 2),
            "near_me": results,
            "explain_radius_3000m": plan,
            "index_used": any("ix_scenes_near" in line for line in plan["with_index"]),
        }
    finally:
        await asyncio.to_thread(server.stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--radius", type=int, nargs="+", default=[1000, 3000, 5000])
    print(dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
