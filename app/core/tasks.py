"""Housekeeping jobs of the shared plumbing (its own tables only: ``app.core`` imports no domain)."""

from app.core import db, idempotency
from app.core.scheduler import job


@job("interval", minutes=30)
async def purge_expired_idempotency_keys() -> int:
    async with db.session_scope() as session:
        return await idempotency.purge_expired(session)
