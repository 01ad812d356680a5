"""Scheduled jobs of the points ledger."""

from app.core import db
from app.core.config import get_settings
from app.core.scheduler import job
from app.points import service


async def expire_all() -> dict[str, int]:
    """Expire every due lot, a chunk of accounts per transaction, until none is left: the totals."""
    total = {"accounts": 0, "points": 0}
    while True:
        async with db.session_scope() as session:
            done = await service.expire_due(session)
        total["accounts"] += done.accounts
        total["points"] += done.points
        if done.accounts == 0:
            return total


@job("cron", hour=0, minute=5, timezone=get_settings().timezone)  # lots expire at local midnight
async def expire_points() -> dict[str, int]:
    return await expire_all()
