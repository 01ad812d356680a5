"""All SQL of the auth domain: the platform's signing keys and the client assertions already used.

Both are the long tail (a key rotation, one token grant): SQLAlchemy statements on the session; the one
read of every request of a person's token (:func:`family_revoked`) and the keys' periodic re-read
(:func:`verification_keys`) are on asyncpg.
"""

import uuid
from datetime import datetime
from typing import Any, cast

import asyncpg
from sqlalchemy import CursorResult, delete, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth.models import (
    AuthorizationCode,
    AuthorizationRequest,
    PlatformSigningKey,
    RefreshToken,
    UsedAssertion,
)
from app.core import callers
from app.core.db import Conn

# ---- platform signing keys -------------------------------------------------------------------------------


async def verification_keys(conn: Conn, retired_after: datetime) -> list[asyncpg.Record]:
    """The keys that still verify (unretired, or retired after ``retired_after``), oldest first.

    On asyncpg: a process re-reads them every minute from whatever request comes along, and a direct
    route's request runs its statements on a connection that is not its ORM session's."""
    return await conn.fetch(
        "SELECT kid, algorithm, private_pem, public_jwk, retired_at FROM platform_signing_keys"
        " WHERE retired_at IS NULL OR retired_at > $1 ORDER BY created_at",
        retired_after,
    )


async def has_active_key(session: AsyncSession) -> bool:
    query = select(PlatformSigningKey.kid).where(col(PlatformSigningKey.retired_at).is_(None)).limit(1)
    return (await session.execute(query)).first() is not None


async def retire_active_keys(session: AsyncSession, now: datetime) -> None:
    await session.execute(
        update(PlatformSigningKey).where(col(PlatformSigningKey.retired_at).is_(None)).values(retired_at=now)
    )


async def insert_key(session: AsyncSession, key: PlatformSigningKey) -> None:
    session.add(key)
    await session.flush()


# ---- used client assertions ------------------------------------------------------------------------------


async def use_assertion(session: AsyncSession, client_id: str, jti: str, expires_at: datetime) -> bool:
    """Remember ``jti`` of ``client_id`` until ``expires_at``; False when it was used before."""
    statement = (
        insert(UsedAssertion)
        .values(client_id=client_id, jti=jti, expires_at=expires_at)
        .on_conflict_do_nothing()
        .returning(col(UsedAssertion.jti))
    )
    return (await session.execute(statement)).first() is not None


async def purge_used_assertions(session: AsyncSession, now: datetime) -> int:
    """Forget the assertions that expired before ``now``; how many."""
    statement = delete(UsedAssertion).where(col(UsedAssertion.expires_at) < now)
    result = cast(CursorResult[Any], await session.execute(statement))
    return result.rowcount or 0


# ---- the authorization code flow: requests, codes, refresh tokens ----------------------------------------


async def insert_request(session: AsyncSession, request: AuthorizationRequest) -> None:
    session.add(request)
    await session.flush()


async def request_for_update(session: AsyncSession, request_id: uuid.UUID) -> AuthorizationRequest | None:
    query = (
        select(AuthorizationRequest)
        .where(col(AuthorizationRequest.id) == request_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(query)).scalars().first()


async def insert_code(session: AsyncSession, code: AuthorizationCode) -> None:
    session.add(code)
    await session.flush()


async def code_for_update(session: AsyncSession, code_sha256: bytes) -> AuthorizationCode | None:
    query = (
        select(AuthorizationCode)
        .where(col(AuthorizationCode.code_sha256) == code_sha256)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(query)).scalars().first()


async def insert_refresh_token(session: AsyncSession, token: RefreshToken) -> None:
    session.add(token)
    await session.flush()


async def refresh_token_for_update(session: AsyncSession, token_sha256: bytes) -> RefreshToken | None:
    query = (
        select(RefreshToken)
        .where(col(RefreshToken.token_sha256) == token_sha256)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(query)).scalars().first()


async def revoke_family(session: AsyncSession, family_id: uuid.UUID, now: datetime) -> int:
    """Revoke every live refresh token of the family; how many."""
    callers.standing_changed()  # what this process kept of callers' standing is read again
    statement = (
        update(RefreshToken)
        .where(col(RefreshToken.family_id) == family_id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    result = cast(CursorResult[Any], await session.execute(statement))
    return result.rowcount or 0


async def family_revoked(conn: Conn, family_id: uuid.UUID) -> bool:
    """Whether the refresh-token family was revoked (a replayed code or refresh token): per request of a
    person's token from the authorization code flow, so one indexed read on asyncpg."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM oauth_refresh_tokens WHERE family_id = $1 AND revoked_at IS NOT NULL)",
            family_id,
        )
    )


async def revoke_families_of(
    session: AsyncSession, user_id: uuid.UUID, client_id: uuid.UUID | None, now: datetime
) -> int:
    """Revoke every live refresh token of the person (with ``client_id``: only that operator's); how many."""
    callers.standing_changed()  # what this process kept of callers' standing is read again
    statement = update(RefreshToken).where(
        col(RefreshToken.user_id) == user_id, col(RefreshToken.revoked_at).is_(None)
    )
    if client_id is not None:
        statement = statement.where(col(RefreshToken.client_id) == client_id)
    result = cast(
        CursorResult[Any],
        await session.execute(statement.values(revoked_at=now).execution_options(synchronize_session=False)),
    )
    return result.rowcount or 0


async def purge_expired(session: AsyncSession, now: datetime) -> dict[str, int]:
    """Delete the authorization requests and codes that expired, and the refresh tokens past their expiry
    that were rotated or revoked; how many of each. (A revoked family keeps its newest token until it
    expires, so a user token of the family is refused for as long as it could live.)
    """
    statements = {
        "authorization_requests": delete(AuthorizationRequest).where(
            col(AuthorizationRequest.expires_at) <= now
        ),
        "authorization_codes": delete(AuthorizationCode).where(col(AuthorizationCode.expires_at) <= now),
        "refresh_tokens": delete(RefreshToken).where(
            col(RefreshToken.expires_at) <= now,
            col(RefreshToken.rotated_at).is_not(None) | col(RefreshToken.revoked_at).is_not(None),
        ),
    }
    counts = {}
    for name, statement in statements.items():
        result = cast(CursorResult[Any], await session.execute(statement))
        counts[name] = result.rowcount or 0
    return counts
