"""Batch ingestion throughput: credited records/s over HTTP vs a raw COPY of the same rows.

    python bench/ingest.py [--batches 60] [--clients 4] [--users 20000] [--runs 3] [--workers 2] [--keep-alive]
                           [--webhooks]

Starts ``carbon-points`` on the embedded default in a child process, enrols people, makes batches of 1,000
records and submits them from concurrent clients, each batch signed as it is sent (~1.3 ms of the load generator's
CPU) and on a connection of its own, so the server's processes share them as behind a load balancer
(``--keep-alive``: each client keeps one connection, which the first process to accept it serves alone). Prints
JSON: credited records/s, p50/p99 batch latency, and — measured in the same run — the rate of a raw ``COPY`` of
the same rows into a bare table (no index, no constraint): the ceiling of the machine. Medians of
``--runs`` runs; identical runs on a noisy machine differ by up to 2.5×. ``--webhooks``: the operator
subscribes to every event type it may receive (a local sink) and the runs alternate without and with
the subscription (``--runs`` of each); ``webhooks`` in the output compares the credited records/s as
ratios to the same run's raw COPY (``bench/_webhooks.py``). Each run also reports the CPU time a credited
record cost the API's processes and PostgreSQL's (``cpu_us_per_record_api``, ``cpu_us_per_record_postgres``,
read from the processes before and after the batches): which half a change saved, steadier than the rates;
and ``cores_busy``, the cores the two halves kept busy (``machine_cores`` in ``setup``; the load generator, on the
same machine, takes part of the rest): close to the machine's cores the CPU bounds the rate, far below them the
batches wait. Record n goes to person n mod ``--users``: with the default 20,000 people each record of a batch is
a different person, as is each record of the batches in flight, and a person has three rides a run (30 minutes
apart, on one day), so the day's totals read about what a real person's day holds. ``--users 2000`` is the
workload of the figures before 2026-12-02: 30 rides a person a day, and the four batches in flight sharing their
people in pairs, each pair taking its people's account locks in turn (``docs/scaling.md``).
"""

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core import db  # noqa: E402
from bench._server import Server, cores_busy, dumps, enrol_many, percentile, seed_operator, sign  # noqa: E402
from bench._webhooks import Sink, compare, modes, set_active, subscribe  # noqa: E402

SHANGHAI = timezone(timedelta(hours=8))
TARGET_RECORDS_PER_S = 20000
TARGET_RATIO = 0.15
"""What ingestion should reach on a 2-core machine running everything: credited records/s, and as a share of a
raw ``COPY`` of the same rows measured in the same run."""


def make_batches(users: list[str], batches: int, run: int) -> list[list[dict]]:
    """1,000 records a batch; each person's rides are 30 minutes apart (no overlaps), each run's two days after
    the previous run's, so no run meets the daily limits the earlier ones used up and every record is
    credited."""
    base = datetime.now(SHANGHAI).replace(microsecond=0) - timedelta(days=20 - 2 * run)
    out, n = [], 0
    for b in range(batches):
        records = []
        for i in range(1000):
            user = users[n % len(users)]
            slot = n // len(users)
            start = base + timedelta(minutes=30 * slot)
            records.append(
                {
                    "record_id": f"r{run}-{b}-{i}-{uuid.uuid4().hex[:6]}",
                    "external_user_id": user,
                    "type": "bench-metro",
                    "started_at": start.isoformat(),
                    "ended_at": (start + timedelta(minutes=5)).isoformat(),
                    "quantity": 3.2,
                    "unit": "km",
                    "scene_id": None,
                    "evidence": {"source": "bench-card", "ref": f"{run}-{b}-{i}-{uuid.uuid4().hex}"},
                }
            )
            n += 1
        out.append(records)
    return out


async def submit_all(base_url: str, op: dict, bodies: list[bytes], clients: int, keep_alive: bool) -> dict:
    latencies: list[float] = []
    credited = 0
    queue = list(enumerate(bodies))

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal credited
        while queue:
            i, body = queue.pop()
            headers = {
                **op["headers"],
                "Content-Type": "application/json",
                "Idempotency-Key": f"b-{uuid.uuid4().hex}",
                "X-Content-Signature": sign(op, body),
            }
            t = time.perf_counter()
            r = await client.post("/v1/operator/behaviour-batches", content=body, headers=headers)
            latencies.append(time.perf_counter() - t)
            assert r.status_code == 200, r.text[:500]
            credited += r.json()["summary"]["accepted"]

    # each batch on a connection of its own unless --keep-alive: the server's processes share one listening
    # socket, and a few kept-alive connections would all be accepted by the first process that happened to
    # be waiting, leaving the others idle (a load balancer in front spreads requests, not connections)
    limits = httpx.Limits(max_keepalive_connections=clients if keep_alive else 0)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as c:
        started = time.perf_counter()
        await asyncio.gather(*[worker(c) for _ in range(clients)])
        elapsed = time.perf_counter() - started
    return {"credited": credited, "seconds": elapsed, "latencies": latencies}


async def raw_copy(database_url: str, batches: list[list[dict]]) -> float:
    rows = []
    for records in batches:
        for r in records:
            rows.append(
                (
                    uuid.uuid4(),
                    r["record_id"],
                    r["external_user_id"],
                    r["type"],
                    datetime.fromisoformat(r["started_at"]),
                    datetime.fromisoformat(r["ended_at"]),
                    r["quantity"],
                    r["unit"],
                    r["evidence"]["source"],
                    r["evidence"]["ref"],
                    150,
                    15,
                )
            )
    conn = await asyncpg.connect(db.plain_url(database_url))
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_copy (operator_id uuid, record_id text, external_user_id text, type text,"
            " started_at timestamptz, ended_at timestamptz, quantity numeric, unit text, evidence_source text,"
            " evidence_ref text, reduction_g bigint, points bigint)"
        )
        await conn.execute("TRUNCATE bench_copy")
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table("bench_copy", records=rows)
        return len(rows) / (time.perf_counter() - started)
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--keep-alive",
        action="store_true",
        help="keep each client's connection for all its batches (by default each batch opens its own)",
    )
    parser.add_argument(
        "--webhooks",
        action="store_true",
        help="subscribe the operator to its event types (a local sink); interleave runs with and without",
    )
    args = parser.parse_args()
    with_webhooks = modes(args.runs, args.webhooks)
    server = await asyncio.to_thread(Server(workers=args.workers).start)
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
            op = await seed_operator(client, server.urls.database_url)
            users = await enrol_many(client, op, args.users)
            subscriptions = []
            if args.webhooks:
                sink = Sink()
                catalogue = (await client.get("/v1/webhooks/event-types")).json()
                wanted = [t["type"] for t in catalogue if "operator" in t["kinds"]]
                admin = op["admin_headers"]
                subscriptions.append((admin, await subscribe(client, admin, sink.url, wanted)))
        runs = []
        for run, on in enumerate(with_webhooks):
            if args.webhooks:
                async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
                    await set_active(client, subscriptions, on)
            batches = make_batches(users, args.batches, run)
            bodies = [orjson.dumps({"records": b}) for b in batches]
            before = server.cpu_seconds()
            result = await submit_all(server.base_url, op, bodies, args.clients, args.keep_alive)
            after = server.cpu_seconds()
            cpu = {k: (after[k] - before[k]) / result["credited"] * 1e6 for k in after}
            copy_rate = await raw_copy(server.urls.database_url, batches)
            # the rate counts credited records: a run whose records were refused would not measure ingestion
            assert result["credited"] == 1000 * len(bodies), f"only {result['credited']} records credited"
            lat = result["latencies"]
            runs.append(
                {
                    "records_per_s": result["credited"] / result["seconds"],
                    "credited": result["credited"],
                    "p50_batch_ms": percentile(lat, 50) * 1000,
                    "p99_batch_ms": percentile(lat, 99) * 1000,
                    "max_batch_ms": max(lat) * 1000,
                    "raw_copy_rows_per_s": copy_rate,
                    "cpu_us_per_record_api": cpu["api"],
                    "cpu_us_per_record_postgres": cpu["postgres"],
                    # far below the machine's cores: the batches wait (for each other's people: --users)
                    "cores_busy": cores_busy(before, after, result["seconds"]),
                }
            )
        median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(
            dumps(
                {
                    "benchmark": "ingest",
                    "setup": {
                        "batches_per_run": args.batches,
                        "records_per_batch": 1000,
                        "clients": args.clients,
                        "keep_alive": args.keep_alive,
                        "users": args.users,
                        "server_workers": args.workers,
                        "runs": args.runs,
                        "machine_cores": os.cpu_count(),
                    },
                    "median": {k: round(v, 1) for k, v in median.items()},
                    "ratio_to_raw_copy": round(median["records_per_s"] / median["raw_copy_rows_per_s"], 3),
                    "target_records_per_s": TARGET_RECORDS_PER_S,
                    "target_ratio_to_raw_copy": TARGET_RATIO,
                    "targets_met": {
                        "records_per_s": median["records_per_s"] >= TARGET_RECORDS_PER_S,
                        "ratio_to_raw_copy": median["records_per_s"]
                        >= TARGET_RATIO * median["raw_copy_rows_per_s"],
                    },
                    "webhooks": compare(
                        runs, with_webhooks, {"records_per_s": ("records_per_s", "raw_copy_rows_per_s")}
                    )
                    if args.webhooks
                    else None,
                    "runs": [{k: round(v, 1) for k, v in r.items()} for r in runs],
                }
            )
        )
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
