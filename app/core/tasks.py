"""Housekeeping jobs of the shared plumbing."""

from app.auth import service as auth_service
from app.core import db, idempotency
from app.core.scheduler import job


@job("interval", minutes=30)
async def purge_expired_idempotency_keys() -> int:
    async with db.session_scope() as session:
        return await idempotency.purge_expired(session)


@job("interval", minutes=30)
async def purge_used_client_assertions() -> int:
    async with db.session_scope() as session:
        return await auth_service.purge_used_assertions(session)
