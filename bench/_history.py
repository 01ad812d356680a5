"""People who came before: a points ledger's history written straight into its tables with ``COPY``.

``bench/expire.py`` loads lots already due for the expiry job to empty; ``bench/redeem.py --history N`` loads N
people whose lots are still good, so its phases run on tables at a city's size (and with their statistics) rather
than on the few thousand rows the benchmark itself writes. The rows are what the ledger writes: each lot one
``earn`` entry and its allocation, balances chained exactly, every invariant of ``carbon-points ledger verify``
holding. These people have no behaviour records (their lifetime points are 0, as the invariant on lifetime points
wants) and no identity (they never signed in): the benchmarks tell them from their own people by that.
"""

import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

TABLES = ("lot_allocations", "ledger_entries", "point_lots", "point_accounts")


def rows_for(people: int, lots_each: int, run: int, *, due: bool) -> dict[str, list[tuple]]:
    """People, accounts, lots (``due``: already past their expiry; else expiring over the coming years), one earn
    entry and allocation per lot (ids from 1, balances chained). ``run`` keeps each run's people apart."""
    now = datetime.now(UTC)
    created = now - timedelta(days=800)
    users, accounts, lots, entries, allocations = [], [], [], [], []
    lot_id = 0
    for p in range(people):
        user = uuid.UUID(int=(run << 64) | (p + 1))
        users.append((user, created))
        balance = 0
        for k in range(lots_each):
            lot_id += 1
            points = 10 + (p + k) % 90
            balance += points
            days = -(1 + k) if due else 30 + 60 * k
            expires = now + timedelta(days=days, minutes=-(p % 1440))
            lots.append((lot_id, user, expires, points, points))
            entries.append((lot_id, user, "earn", points, balance, "bench", f"seed-{p}-{k}", created))
            allocations.append((lot_id, lot_id, user, points))
        accounts.append((user, balance, 0, 0))
    return {
        "users": users,
        "accounts": accounts,
        "lots": lots,
        "entries": entries,
        "allocations": allocations,
    }


async def copy_in(conn: asyncpg.Connection, rows: dict[str, list[tuple]]) -> None:
    """COPY the rows of :func:`rows_for` into the tables (whose lots and entries must not hold those ids yet), and
    move the id sequences past them."""
    await conn.copy_records_to_table("users", records=rows["users"], columns=["id", "created_at"])
    await conn.copy_records_to_table(
        "point_accounts",
        records=rows["accounts"],
        columns=["user_id", "balance", "lifetime_points", "lifetime_reduction_g"],
    )
    await conn.copy_records_to_table(
        "point_lots", records=rows["lots"], columns=["id", "user_id", "expires_at", "credited", "remaining"]
    )
    await conn.copy_records_to_table(
        "ledger_entries",
        records=rows["entries"],
        columns=["id", "user_id", "kind", "amount", "balance_after", "ref_type", "ref_id", "created_at"],
    )
    await conn.copy_records_to_table(
        "lot_allocations", records=rows["allocations"], columns=["entry_id", "lot_id", "user_id", "amount"]
    )
    for table in ("point_lots", "ledger_entries"):
        await conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        )


async def load(database_url: str, people: int, lots_each: int = 5) -> dict:
    """``people`` people with ``lots_each`` good lots each, into an empty ledger, then vacuumed and analysed as
    autovacuum leaves a ledger that has run a while: the statistics of tables at their size."""
    started = time.perf_counter()
    rows = rows_for(people, lots_each, 7, due=False)
    lots = len(rows["lots"])
    conn = await asyncpg.connect(database_url)
    try:
        await copy_in(conn, rows)
        del rows
        await conn.execute(f"VACUUM (ANALYZE) users, {', '.join(TABLES)}")
    finally:
        await conn.close()
    return {"people": people, "lots": lots, "seconds": round(time.perf_counter() - started, 1)}
