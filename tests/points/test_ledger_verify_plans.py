"""``ledger verify`` reads every check in one pass over the tables, whatever the statistics say.

A sound ledger has no rows to find, so a check reads everything; planned for a first match instead (a bare
``LIMIT``), the lots' check compared every lot with every lot's sums in a nested loop: 14 s for 25,000 lots, four
times that for twice as many. The health page and the CLI run these checks."""

import asyncpg

from app.points import repository as points_repository
from bench import _history as history


async def test_every_check_is_planned_for_all_its_rows_on_an_analysed_ledger(own_database):
    await history.load(
        own_database, 5000, lots_each=5
    )  # 25,000 lots, their entries and allocations, analysed
    conn = await asyncpg.connect(own_database)
    try:
        for name, sql in points_repository.LEDGER_CHECKS:
            plan = "\n".join(
                r[0] for r in await conn.fetch(f"EXPLAIN {points_repository.first_rows(sql, 5)}")
            )
            assert "Nested Loop" not in plan, f"{name}:\n{plan}"
            assert plan.startswith("Limit") and "CTE Scan on broken" in plan  # it still stops at the examples
        assert await points_repository.broken_invariants(conn, 5) == []
        await conn.execute("UPDATE point_lots SET remaining = remaining - 1 WHERE id IN (7, 8, 9)")
        broken = dict(await points_repository.broken_invariants(conn, 2))
        lots = broken["each lot's remainder equals what was put in minus what was taken"]
        assert sorted(row[0] for row in lots) in ([7, 8], [7, 9], [8, 9])  # two examples of the three
    finally:
        await conn.close()
