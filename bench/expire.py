"""Expiry of points lots: the platform's expiry job over a million due lots.

    python bench/expire.py [--people 200000] [--lots-each 5] [--runs 3]

Starts the embedded PostgreSQL (and Redis) with the migrated schema, then for each run writes
``--people`` people, each with an account and ``--lots-each`` lots already due (one ``earn`` entry
and its allocation per lot, balances chained exactly as the ledger writes them), straight into the
tables with ``COPY``. It then runs the platform's expiry job (``app.points.tasks.expire_all``, what
``carbon-points points expire`` and the daily job run) and times it, and checks every invariant of
``carbon-points ledger verify`` afterwards (they must all hold, and every lot must be empty).

Measured in the same run, as the machine's yardstick: a raw ``COPY`` of the same lot rows into a
bare table (no index, no constraint). Prints JSON: the expiry's seconds and lots/s, the baseline's
rows/s, their ratio, medians of ``--runs`` runs and each run.
"""

import argparse
import asyncio
import gc
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core import db, embedded, migrate  # noqa: E402
from app.points import repository as points_repository  # noqa: E402
from bench import _history as history  # noqa: E402
from bench._server import dumps  # noqa: E402

TARGET_SECONDS = 10
"""The expiry job over 1,000,000 due lots of 200,000 people, on a 2-core machine running everything."""


async def seed(conn: asyncpg.Connection, rows: dict[str, list[tuple]]) -> float:
    """Empty the ledger's tables and COPY the rows in; the seconds it took."""
    started = time.perf_counter()
    await conn.execute(f"TRUNCATE {', '.join(history.TABLES)}")
    await conn.execute("DELETE FROM users WHERE identity_hash IS NULL AND id::text LIKE '0000%'")
    await history.copy_in(conn, rows)
    # Vacuumed as autovacuum leaves a live ledger whose lots fell due over days: visibility and hint bits
    # set, so the job does not pay for a just-loaded table.
    await conn.execute(f"VACUUM (ANALYZE) {', '.join(history.TABLES)}")
    return time.perf_counter() - started


async def raw_copy(conn: asyncpg.Connection, lots: list[tuple]) -> float:
    """COPY the same lot rows into a bare table: rows/s, the ceiling of the machine."""
    await conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS bench_raw (id bigint, user_id uuid, expires_at timestamptz,"
        " credited bigint, remaining bigint)"
    )
    await conn.execute("TRUNCATE bench_raw")
    started = time.perf_counter()
    await conn.copy_records_to_table("bench_raw", records=lots)
    return len(lots) / (time.perf_counter() - started)


async def run_once(url: str, args, run: int) -> dict:
    from app.points.tasks import expire_all

    rows = history.rows_for(args.people, args.lots_each, run, due=True)
    conn = await asyncpg.connect(db.plain_url(url))
    try:
        baseline = await raw_copy(conn, rows["lots"])
        seed_seconds = await seed(conn, rows)
    finally:
        await conn.close()
    lots = len(rows["lots"])
    # The seed rows leave this process before the job runs: millions of tuples kept alive would make every
    # full garbage collection during the job walk them (2 s of a 200,000-people read), which a server has not.
    del rows
    gc.collect()
    db.init(url)
    try:
        started = time.perf_counter()
        result = await expire_all()
        seconds = time.perf_counter() - started
    finally:
        await db.dispose()
    conn = await asyncpg.connect(db.plain_url(url))
    try:
        started = time.perf_counter()
        broken = [name for name, _ in await points_repository.broken_invariants(conn, 1)]
        verify_seconds = time.perf_counter() - started
        left = await conn.fetchval("SELECT count(*) FROM point_lots WHERE remaining > 0")
        expire_entries = await conn.fetchval("SELECT count(*) FROM ledger_entries WHERE kind = 'expire'")
    finally:
        await conn.close()
    return {
        "lots": lots,
        "people": args.people,
        "seed_seconds": round(seed_seconds, 2),
        "expire_seconds": round(seconds, 3),
        "lots_per_s": round(lots / seconds, 1),
        "raw_copy_rows_per_s": round(baseline, 1),
        "ratio_to_raw_copy": round(lots / seconds / baseline, 4),
        "expired": result,
        "lots_left": left,
        "expire_entries": expire_entries,
        "ledger_verify_seconds": round(verify_seconds, 2),
        "ledger_verify_broken": broken,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--lots-each", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="carbon-bench-"))
    urls = await asyncio.to_thread(embedded.ensure_servers, None, None, data_dir)
    try:
        await asyncio.to_thread(migrate.upgrade, urls.database_url)
        runs = [await run_once(urls.database_url, args, run) for run in range(args.runs)]
    finally:
        embedded.stop_all()
        shutil.rmtree(data_dir, ignore_errors=True)
    med = {
        "expire_seconds": statistics.median(r["expire_seconds"] for r in runs),
        "lots_per_s": statistics.median(r["lots_per_s"] for r in runs),
        "raw_copy_rows_per_s": statistics.median(r["raw_copy_rows_per_s"] for r in runs),
        "ledger_verify_seconds": statistics.median(r["ledger_verify_seconds"] for r in runs),
    }
    print(
        dumps(
            {
                "benchmark": "expire",
                "setup": {"people": args.people, "lots_each": args.lots_each, "runs": args.runs},
                "median": med,
                "ratio_to_raw_copy": round(med["lots_per_s"] / med["raw_copy_rows_per_s"], 4),
                "targets": {"expire_seconds": TARGET_SECONDS},
                "targets_met": {"expire_seconds": med["expire_seconds"] <= TARGET_SECONDS},
                "checks_hold": all(
                    not r["ledger_verify_broken"]
                    and r["lots_left"] == 0
                    and r["expired"]["points"] > 0
                    and r["expire_entries"] == args.people
                    for r in runs
                ),
                "runs": runs,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
