"""Scheduled jobs of the users domain: the purge of what people's sign-ins leave behind."""

from app.auth import oauth
from app.core import db
from app.core.scheduler import job
from app.users import sessions


@job("interval", minutes=30)
async def purge_expired_sign_ins() -> dict[str, int]:
    """Delete expired one-time codes, authorization requests and codes, rotated or revoked refresh tokens
    past their expiry, and people's sessions past their idle or absolute lifetime; how many of each."""
    async with db.session_scope() as session:
        return {
            "one_time_codes": await sessions.purge_expired_codes(session),
            **await oauth.purge_expired(session),
            "person_sessions": await sessions.purge_expired(session),
        }
