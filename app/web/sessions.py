"""Browser sessions: sign-in with a staff account's password, resolution per request, sign-out.

The credentials check and its rate limit are the password grant's (:mod:`app.auth.service`), so a
browser and an API client get exactly the same answer for the same account. The cookie carries a
random token; the database keeps its SHA-256, so a copy of the table opens no session.
"""

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import service as auth_service
from app.auth.principal import Principal
from app.core import clock, db
from app.core.config import get_settings
from app.web import repository

COOKIE = "cp_session"
TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is written at most once a minute per session
_TOKEN_MAX_LENGTH = 100


@dataclass(frozen=True)
class Viewer:
    """Who is signed in on this browser."""

    session_id: uuid.UUID
    principal: Principal
    username: str
    org_name: str | None


@dataclass(frozen=True)
class NewSession:
    token: str
    viewer: Viewer
    max_age_seconds: int


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def sign_in(
    session: AsyncSession,
    username: str,
    password: str,
    *,
    ip: str,
    user_agent: str,
    replacing: str | None = None,
) -> NewSession:
    """A new session for a staff account, or the password grant's error (wrong password, rate limit,
    organisation not approved). ``replacing``: the browser's previous session token, ended here."""
    await auth_service.limit_login_attempts(ip, username)
    principal = await auth_service.check_password(session, username, password)
    conn = await db.raw_connection(session)
    if replacing:
        await sign_out(session, replacing)
    settings = get_settings()
    now = clock.real_now()  # sessions keep the real time, whatever the sandbox clock says
    max_age = timedelta(hours=settings.web_session_max_hours)
    token = secrets.token_urlsafe(32)
    session_id = uuid.uuid4()
    await repository.insert(
        conn, session_id, _digest(token), principal.subject, now, now + max_age, ip[:64], user_agent[:300]
    )
    row = await repository.find(conn, _digest(token))
    assert row is not None
    viewer = Viewer(session_id, principal, row["username"], row["org_name"])
    return NewSession(token, viewer, int(max_age.total_seconds()))


async def resolve(session: AsyncSession, token: str | None, *, touch: bool = True) -> Viewer | None:
    """The signed-in viewer of a session cookie, or ``None``. A session past its idle or absolute
    lifetime, or whose account or organisation may no longer sign in, is deleted here."""
    if not token or len(token) > _TOKEN_MAX_LENGTH:
        return None
    conn = await db.raw_connection(session)
    row = await repository.find(conn, _digest(token))
    if row is None:
        return None
    settings = get_settings()
    now = clock.real_now()  # sessions keep the real time, whatever the sandbox clock says
    idle = timedelta(minutes=settings.web_session_idle_minutes)
    allowed = row["disabled_at"] is None and (row["org_id"] is None or row["org_status"] == "approved")
    if not allowed or row["expires_at"] <= now or row["last_seen_at"] + idle <= now:
        await repository.delete(conn, row["id"])
        return None
    if touch and now - row["last_seen_at"] >= TOUCH_EVERY:
        await repository.touch(conn, row["id"], now)
    role = row["org_kind"] if row["role"] == "org" else row["role"]
    principal = Principal("staff", role, row["staff_user_id"], row["org_id"], row["is_org_admin"])
    return Viewer(row["id"], principal, row["username"], row["org_name"])


async def sign_out(session: AsyncSession, token: str | None) -> bool:
    """Ends the session of this token (its row is deleted); whether there was one."""
    if not token or len(token) > _TOKEN_MAX_LENGTH:
        return False
    conn = await db.raw_connection(session)
    row = await repository.find(conn, _digest(token))
    return row is not None and await repository.delete(conn, row["id"])


async def end_all(session: AsyncSession, staff_user_id: uuid.UUID) -> int:
    """Revokes every browser session of an account; how many ended."""
    return await repository.delete_for_staff(await db.raw_connection(session), staff_user_id)


async def end_all_of(session: AsyncSession, username: str) -> int:
    """Revokes every browser session of the account with this username; how many ended."""
    return await repository.delete_for_username(await db.raw_connection(session), username)


async def exists(session: AsyncSession, session_id: uuid.UUID) -> bool:
    return await repository.exists(await db.raw_connection(session), session_id)


async def purge_expired(session: AsyncSession) -> int:
    """Deletes the sessions past their idle or absolute lifetime (the job runs this)."""
    settings = get_settings()
    now = clock.real_now()  # sessions keep the real time, whatever the sandbox clock says
    idle_before = now - timedelta(minutes=settings.web_session_idle_minutes)
    return await repository.purge(await db.raw_connection(session), now, idle_before)
