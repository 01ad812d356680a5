"""Scheduled jobs of the points ledger."""

import asyncio
from datetime import datetime

from app.core import clock, db
from app.core.config import get_settings
from app.core.scheduler import job
from app.points import service

CHUNK_ACCOUNTS = 1000
"""People per transaction: their accounts stay locked only while their lots are emptied. Measured with
``bench/expire.py`` (5 lots each): 1,000 ran fastest; 2,000 took 10 % longer, 5,000 20 %."""
CONCURRENCY = 2
"""Transactions at once (distinct people each; each locks its accounts in ``user_id`` order)."""


async def expire_all() -> dict[str, int]:
    """Expire every due lot: read who has any once, then a chunk of accounts per transaction, two at a
    time, and again until nobody is left (lots that fell due meanwhile). The totals."""
    total = {"accounts": 0, "points": 0}
    emptied: datetime | None = None  # every lot due at or before it is empty (by an earlier pass of this run)
    while True:
        now = clock.now()
        async with db.session_scope() as session:
            people = await service.people_with_due_lots(session, now, after=emptied)
            if not people:
                await service.mark_all_expired(session, now)
        if not people:
            return total
        chunks = iter([people[i : i + CHUNK_ACCOUNTS] for i in range(0, len(people), CHUNK_ACCOUNTS)])

        async def worker(chunks=chunks, now=now) -> None:
            for chunk in chunks:
                async with db.session_scope() as session:
                    done = await service.expire_people(session, chunk, now)
                total["accounts"] += done.accounts
                total["points"] += done.points

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        emptied = now


@job("cron", hour=0, minute=5, timezone=get_settings().timezone)  # lots expire at local midnight
async def expire_points() -> dict[str, int]:
    return await expire_all()
