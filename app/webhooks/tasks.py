"""Scheduled jobs of webhooks: the delivery worker's tick."""

from app.core import db
from app.core.config import get_settings
from app.core.scheduler import job
from app.points import service as points_service
from app.webhooks import delivery


@job("interval", seconds=2)
async def deliver_webhooks() -> dict[str, int]:
    """Claim due deliveries and start posting them; the posts go on in their own tasks (one slow endpoint
    never holds up the next tick), so the answer counts only what was claimed."""
    report = await delivery.run_once(wait=False)
    return {"claimed": report.claimed}


@job("cron", hour=7, minute=0, timezone=get_settings().timezone)
async def points_expiring_digest() -> dict[str, int]:
    """``points.expiring``: each operator's digest of its people's points expiring soon, once a day."""
    async with db.session_scope() as session:
        return {"digests": await points_service.send_expiring_digests(session)}
