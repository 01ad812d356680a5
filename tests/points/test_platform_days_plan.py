"""A range of days' ledger entries (the home page's charts, the authority's dashboards) is found by the entries'
time index, not by reading every entry ever written."""

from datetime import timedelta

import asyncpg

from app.core import clock
from app.points import repository as points_repository
from bench import _history as history


class Explained:
    """A connection that answers ``fetch`` with the statement's plan (its generic plan: as kept prepared)."""

    def __init__(self, conn: asyncpg.Connection):
        self.conn = conn
        self.plans: list[str] = []

    async def fetch(self, query: str, *args):
        await self.conn.execute("SET plan_cache_mode = force_generic_plan")
        rows = await self.conn.fetch(f"EXPLAIN {query}", *args)
        self.plans.append("\n".join(r[0] for r in rows))
        return await self.conn.fetch(query, *args)


async def test_the_days_entries_are_read_by_the_time_index_on_an_analysed_ledger(own_database):
    await history.load(own_database, 5000, lots_each=5)  # 25,000 entries, entered long ago, analysed
    conn = await asyncpg.connect(own_database)
    try:
        explained = Explained(conn)
        last = clock.today()
        days = await points_repository.platform_days(
            explained, last - timedelta(days=29), last, "Asia/Shanghai"
        )
        [plan] = explained.plans
        assert "ix_ledger_entries_created_brin" in plan, plan
        assert "Seq Scan on ledger_entries" not in plan, plan
        assert len(days) == 30 and all(d["earned"] == d["spent"] == d["expired"] == 0 for d in days)
    finally:
        await conn.close()
