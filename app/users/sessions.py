"""A person's own sessions on the platform (``/me``): opened with their phone and a one-time code,
resolved per request, ended at sign-out, when the account is deleted, or when they expire.

The same properties as the staff's browser sessions (:mod:`app.web.sessions`): the cookie carries a
random token and the table keeps its SHA-256, so a copy of the table opens no session; an idle and an
absolute lifetime from the settings; a job purges what expired. Only such a session may export or
delete the account: an operator's user token never can.
"""

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import CallerKind, Principal
from app.core import clock, db
from app.core.config import get_settings
from app.users import repository
from app.users import service as users_service

COOKIE = "carbon_me"
TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is written at most once a minute per session
_TOKEN_MAX_LENGTH = 100


@dataclass(frozen=True)
class Person:
    """The person signed in on this browser."""

    session_id: uuid.UUID
    user_id: uuid.UUID

    @property
    def principal(self) -> Principal:
        """The person acting for themselves (audited as ``user:<id>``), never through an operator."""
        return Principal(CallerKind.user, CallerKind.user, self.user_id)


@dataclass(frozen=True)
class NewSession:
    token: str
    person: Person
    max_age_seconds: int


class NoAccount(Exception):
    """The phone number was confirmed, but no carbon account belongs to it (nothing is created here)."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def sign_in(
    session: AsyncSession,
    code_id: uuid.UUID,
    code: str,
    *,
    ip: str,
    user_agent: str,
    replacing: str | None = None,
) -> users_service.CodeCheck | NewSession:
    """Check the one-time code ``code_id``; a right one opens a session of the phone's person.

    Answers the code's check when it is not right (the attempt counts: the caller keeps the
    transaction's changes), or raises :class:`NoAccount` when the number has no account.
    ``replacing``: the browser's previous session token, ended here.
    """
    check = await users_service.check_code(session, code_id, code)
    if check.outcome != users_service.CodeOutcome.verified or check.identity_hash is None:
        return check
    user_id = await repository.person_by_identity(session, check.identity_hash)
    if user_id is None:
        raise NoAccount()
    if replacing:
        await sign_out(session, replacing)
    settings = get_settings()
    now = clock.now()
    max_age = timedelta(hours=settings.person_session_max_hours)
    token = secrets.token_urlsafe(32)
    session_id = uuid.uuid4()
    await repository.insert_person_session(
        await db.raw_connection(session),
        session_id,
        _digest(token),
        user_id,
        now,
        now + max_age,
        ip[:64],
        user_agent[:300],
    )
    return NewSession(token, Person(session_id, user_id), int(max_age.total_seconds()))


async def resolve(session: AsyncSession, token: str | None, *, touch: bool = True) -> Person | None:
    """The person of a session cookie, or ``None``. A session past its idle or absolute lifetime, or
    whose account was deleted, is deleted here."""
    if not token or len(token) > _TOKEN_MAX_LENGTH:
        return None
    conn = await db.raw_connection(session)
    row = await repository.find_person_session(conn, _digest(token))
    if row is None:
        return None
    now = clock.now()
    idle = timedelta(minutes=get_settings().person_session_idle_minutes)
    if row["deleted_at"] is not None or row["expires_at"] <= now or row["last_seen_at"] + idle <= now:
        await repository.delete_person_session(conn, row["id"])
        return None
    if touch and now - row["last_seen_at"] >= TOUCH_EVERY:
        await repository.touch_person_session(conn, row["id"], now)
    return Person(row["id"], row["user_id"])


async def sign_out(session: AsyncSession, token: str | None) -> bool:
    """Ends the session of this token (its row is deleted); whether there was one."""
    if not token or len(token) > _TOKEN_MAX_LENGTH:
        return False
    conn = await db.raw_connection(session)
    row = await repository.find_person_session(conn, _digest(token))
    return row is not None and await repository.delete_person_session(conn, row["id"])


async def end_all(session: AsyncSession, user_id: uuid.UUID) -> int:
    """Ends every session of the person; how many."""
    return await repository.delete_person_sessions_of(await db.raw_connection(session), user_id)


async def purge_expired(session: AsyncSession) -> int:
    """Deletes the sessions past their idle or absolute lifetime (the purge job runs this)."""
    now = clock.now()
    idle_before = now - timedelta(minutes=get_settings().person_session_idle_minutes)
    return await repository.purge_person_sessions(await db.raw_connection(session), now, idle_before)


async def purge_expired_codes(session: AsyncSession) -> int:
    """Deletes the one-time codes that expired (the purge job runs this)."""
    return await repository.purge_codes(await db.raw_connection(session), clock.now())
