"""The history ``bench/redeem.py --history`` and ``bench/expire.py`` load with ``COPY`` (``bench/_history.py``): what
the ledger itself would have written, so every invariant of ``ledger verify`` holds over it, and the ledger's own
next lot and entry come after it."""

from datetime import UTC, datetime

import asyncpg

from app.points import repository as points_repository
from bench import _history as history


def test_each_person_s_lots_add_up_to_their_balance():
    rows = history.rows_for(3, 4, 1, due=False)
    sizes = [len(rows[k]) for k in ("users", "accounts", "lots", "entries", "allocations")]
    assert sizes == [3, 3, 12, 12, 12]
    now = datetime.now(UTC)
    for user, balance, lifetime, reduction in rows["accounts"]:
        lots = [lot for lot in rows["lots"] if lot[1] == user]
        assert balance == sum(lot[4] for lot in lots) and (lifetime, reduction) == (0, 0)
        assert all(lot[2] > now for lot in lots)  # good for years, as --history wants
        chained = [e[4] for e in rows["entries"] if e[1] == user]
        assert chained[-1] == balance and chained == sorted(chained)
    assert all(lot[2] < now for lot in history.rows_for(2, 2, 1, due=True)["lots"])  # what expire.py empties


async def test_loaded_history_keeps_every_invariant_and_the_ledger_goes_on_after_it(own_database):
    loaded = await history.load(own_database, 40, lots_each=3)
    assert (loaded["people"], loaded["lots"]) == (40, 120)
    conn = await asyncpg.connect(own_database)
    try:
        assert await points_repository.broken_invariants(conn, 1) == []
        counts = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM point_lots) AS lots, (SELECT count(*) FROM ledger_entries) AS entries,"
            " (SELECT count(*) FROM lot_allocations) AS allocations, (SELECT sum(balance) FROM point_accounts) AS"
            " points, (SELECT sum(remaining) FROM point_lots) AS remaining"
        )
        assert (counts["lots"], counts["entries"], counts["allocations"]) == (120, 120, 120)
        assert counts["points"] == counts["remaining"] > 0
        assert await conn.fetchval("SELECT nextval(pg_get_serial_sequence('point_lots', 'id'))") == 121
        assert await conn.fetchval("SELECT nextval(pg_get_serial_sequence('ledger_entries', 'id'))") == 121
        analysed = await conn.fetch(
            "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL ORDER BY relname"
        )
        assert [r["relname"] for r in analysed] == sorted(("users", *history.TABLES))
    finally:
        await conn.close()
