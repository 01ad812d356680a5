"""Scheduled jobs of the web plumbing."""

from app.core import db
from app.core.scheduler import job
from app.web import sessions


@job("interval", minutes=30)
async def purge_expired_web_sessions() -> int:
    async with db.session_scope() as session:
        return await sessions.purge_expired(session)
