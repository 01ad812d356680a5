"""Scheduled jobs of the mall: unused vouchers past their expiry, refunded or forfeited per policy."""

from datetime import datetime

from app.core import clock, db
from app.core.scheduler import job
from app.mall import service


async def expire_all(now: datetime | None = None) -> dict[str, int]:
    """Expire every due voucher, a chunk per transaction, until none is left."""
    now = now or clock.now()
    total = {"orders": 0, "refunded": 0, "forfeited": 0, "points_refunded": 0}
    while True:
        async with db.session_scope() as session:
            done = await service.expire_vouchers(session, now=now)
        for key in total:
            total[key] += getattr(done, key)
        if done.orders == 0:
            return total


@job("cron", minute="*/15")  # a voucher expires at its own moment: a quarter of an hour late at most
async def expire_vouchers() -> dict[str, int]:
    return await expire_all()
