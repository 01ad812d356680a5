"""Scheduled jobs of the auth domain."""

from app.auth import service
from app.core import db
from app.core.scheduler import job


@job("interval", minutes=30)
async def purge_used_client_assertions() -> int:
    async with db.session_scope() as session:
        return await service.purge_used_assertions(session)
