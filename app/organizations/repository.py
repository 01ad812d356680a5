"""All SQL of the organisations domain: ``organizations``, ``staff_users`` and ``operator_keys``.

Applications, decisions, logins and keys are the long tail: SQLAlchemy statements on the request's
session. The per-request standing of a caller is the hot path (every authenticated call reads it):
one indexed statement on the transaction's asyncpg connection.
"""

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.core import callers
from app.core.db import Conn
from app.core.pagination import keyset
from app.organizations.models import OperatorKey, Organization, RedirectUri, StaffUser
from app.organizations.schemas import OrgStatus, StaffRole

# ---- organisations ---------------------------------------------------------------------------------------


async def get(session: AsyncSession, org_id: uuid.UUID, *, fresh: bool = False) -> Organization | None:
    """The organisation, or None; ``fresh`` re-reads a row the session holds (after an UPDATE)."""
    return await session.get(Organization, org_id, populate_existing=fresh)


async def live_application_exists(session: AsyncSession, kind: str, credit_code: str) -> bool:
    """Whether an organisation of ``kind`` with this credit code exists and was not rejected."""
    query = select(Organization.id).where(
        col(Organization.kind) == kind,
        col(Organization.credit_code) == credit_code,
        col(Organization.status) != OrgStatus.rejected,
    )
    return (await session.execute(query)).first() is not None


async def insert(session: AsyncSession, org: Organization) -> Organization:
    """Write ``org`` (IntegrityError surfaces: the live credit code is unique per kind)."""
    session.add(org)
    await session.flush()
    return org


async def set_status(
    session: AsyncSession,
    org_id: uuid.UUID,
    sources: tuple[str, ...],
    target: str,
    reason: str | None,
    now: datetime,
) -> bool:
    """Move the organisation to ``target`` if it is in one of ``sources``; False when it is not (or absent)."""
    callers.standing_changed()  # what this process kept of callers' standing is read again
    result = await session.execute(
        sa.update(Organization)
        .where(col(Organization.id) == org_id, col(Organization.status).in_(sources))
        .values(status=target, reason=reason, decided_at=now)
        .returning(col(Organization.id))
    )
    return result.first() is not None


async def set_operator_settings(session: AsyncSession, org_id: uuid.UUID, **values: Any) -> None:
    """Set ``trusted_enrolment`` and/or ``allowed_scopes`` of the organisation."""
    await session.execute(
        sa.update(Organization)
        .where(col(Organization.id) == org_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def list_(
    session: AsyncSession, *, status: str | None, kind: str | None, limit: int, cursor: str | None
) -> list[Organization]:
    """Newest first, ``limit + 1`` rows after the cursor's."""
    query = select(Organization)
    if status:
        query = query.where(col(Organization.status) == status)
    if kind:
        query = query.where(col(Organization.kind) == kind)
    query = keyset(
        query, cursor, (Organization.created_at, datetime), (Organization.id, uuid.UUID), descending=True
    )
    return list((await session.execute(query.limit(limit + 1))).scalars())


async def list_approved(
    session: AsyncSession, kind: str, limit: int, cursor: str | None
) -> list[Organization]:
    """Approved organisations of ``kind`` by name, ``limit + 1`` rows after the cursor's."""
    query = select(Organization).where(
        col(Organization.kind) == kind, col(Organization.status) == OrgStatus.approved
    )
    query = keyset(query, cursor, (Organization.name, str), (Organization.id, uuid.UUID))
    return list((await session.execute(query.limit(limit + 1))).scalars())


async def count_approved(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        sa.select(col(Organization.kind), sa.func.count())
        .where(col(Organization.status) == OrgStatus.approved)
        .group_by(Organization.kind)
    )
    return {kind: n for kind, n in rows.tuples()}


async def status(conn: Conn, org_id: uuid.UUID | None) -> str | None:
    """The organisation's status, or None (the per-request check of an operator's client token)."""
    return await conn.fetchval("SELECT status FROM organizations WHERE id = $1", org_id)


# ---- staff accounts --------------------------------------------------------------------------------------


async def username_taken(session: AsyncSession, username: str) -> bool:
    return (
        await session.execute(select(StaffUser.id).where(col(StaffUser.username) == username))
    ).first() is not None


async def insert_staff_user(session: AsyncSession, user: StaffUser) -> StaffUser:
    """Write ``user`` (IntegrityError surfaces: usernames are unique)."""
    session.add(user)
    await session.flush()
    return user


async def staff_id(session: AsyncSession, username: str) -> uuid.UUID | None:
    return (await session.execute(select(StaffUser.id).where(col(StaffUser.username) == username))).scalar()


async def first_authority_id(session: AsyncSession) -> uuid.UUID | None:
    """The oldest authority account, or None when there is none."""
    query = (
        select(StaffUser.id)
        .where(col(StaffUser.role) == StaffRole.authority)
        .order_by(col(StaffUser.created_at))
        .limit(1)
    )
    return (await session.execute(query)).scalar()


async def staff_login(session: AsyncSession, username: str) -> sa.Row | None:
    """The account ``username`` with its organisation's kind and status (None for staff of no organisation)."""
    query = (
        sa.select(
            col(StaffUser.id),
            col(StaffUser.password_hash),
            col(StaffUser.role),
            col(StaffUser.org_id),
            col(StaffUser.is_org_admin),
            col(StaffUser.disabled_at),
            sa.label("org_kind", col(Organization.kind)),
            sa.label("org_status", col(Organization.status)),
        )
        .select_from(StaffUser)
        .outerjoin(Organization, col(Organization.id) == col(StaffUser.org_id))
        .where(col(StaffUser.username) == username)
    )
    return (await session.execute(query)).first()


async def staff_standing(conn: Conn, staff_id: uuid.UUID) -> asyncpg.Record | None:
    """``disabled_at`` of the account and its organisation's ``status`` (per request: one indexed read)."""
    return await conn.fetchrow(
        "SELECT s.disabled_at, o.status FROM staff_users s LEFT JOIN organizations o ON o.id = s.org_id"
        " WHERE s.id = $1",
        staff_id,
    )


# ---- keys ------------------------------------------------------------------------------------------------


async def key(session: AsyncSession, org_id: uuid.UUID, kid: str) -> OperatorKey | None:
    return await session.get(OperatorKey, (org_id, kid))


async def insert_key(session: AsyncSession, key: OperatorKey) -> OperatorKey:
    session.add(key)
    await session.flush()
    return key


async def keys(session: AsyncSession, org_id: uuid.UUID) -> list[OperatorKey]:
    """The organisation's keys, oldest first, revoked ones included."""
    query = select(OperatorKey).where(col(OperatorKey.org_id) == org_id).order_by(col(OperatorKey.created_at))
    return list((await session.execute(query)).scalars())


async def touch_key(conn: Conn, org_id: uuid.UUID, kid: str, now: datetime) -> None:
    """Set the key's ``last_used_at`` to ``now`` unless it was set within the minute before; a row another
    transaction is touching is skipped, not waited for (the hot paths never queue on it)."""
    await conn.execute(
        "UPDATE operator_keys SET last_used_at = $3 WHERE (org_id, kid) IN (SELECT org_id, kid FROM operator_keys"
        " WHERE org_id = $1 AND kid = $2 AND (last_used_at IS NULL OR last_used_at < $3::timestamptz - interval '1 minute')"
        " FOR UPDATE SKIP LOCKED)",
        org_id,
        kid,
        now,
    )


async def client_key(session: AsyncSession, org_id: uuid.UUID, kid: str) -> sa.Row | None:
    """The organisation's kind and status with its key ``kid`` (key columns None when it has no such key)."""
    query = (
        sa.select(
            col(OperatorKey.algorithm),
            col(OperatorKey.jwk),
            col(OperatorKey.revoked_at),
            col(Organization.kind),
            col(Organization.status),
        )
        .select_from(Organization)
        .outerjoin(
            OperatorKey, sa.and_(col(OperatorKey.org_id) == col(Organization.id), col(OperatorKey.kid) == kid)
        )
        .where(col(Organization.id) == org_id)
    )
    return (await session.execute(query)).first()


# ---- what other domains ask (experts, the scenes demo) ----------------------------------------------------


async def usernames(session: AsyncSession, staff_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    query = select(StaffUser.id, StaffUser.username).where(col(StaffUser.id).in_(staff_ids))
    rows = await session.execute(query)
    return {staff_id: username for staff_id, username in rows.tuples()}


async def registered(session: AsyncSession, kind: str, credit_code: str) -> bool:
    """Whether an organisation of ``kind`` with this credit code exists, whatever its status."""
    query = select(Organization.id).where(
        col(Organization.kind) == kind, col(Organization.credit_code) == credit_code
    )
    return (await session.execute(query.limit(1))).first() is not None


# ---- what the CER registry asks ---------------------------------------------------------------------------


async def names(session: AsyncSession, org_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = await session.execute(
        select(Organization.id, Organization.name).where(col(Organization.id).in_(org_ids))
    )
    return {org_id: name for org_id, name in rows.tuples()}


async def staff_org_id(session: AsyncSession, username: str) -> uuid.UUID | None:
    query = select(StaffUser.org_id).where(col(StaffUser.username) == username)
    return (await session.execute(query)).scalar()


# ---- redirect URIs of operators (the authorization code flow) --------------------------------------------


async def redirect_uris(session: AsyncSession, org_id: uuid.UUID) -> list[RedirectUri]:
    """The operator's registered redirect URIs, oldest first."""
    query = select(RedirectUri).where(col(RedirectUri.org_id) == org_id).order_by(col(RedirectUri.id))
    return list((await session.execute(query)).scalars())


async def insert_redirect_uri(
    session: AsyncSession, org_id: uuid.UUID, uri: str, now: datetime
) -> RedirectUri | None:
    """Register ``uri`` for ``org_id``; None when it is registered already."""
    statement = (
        pg_insert(RedirectUri)
        .values(org_id=org_id, uri=uri, created_at=now)
        .on_conflict_do_nothing()
        .returning(RedirectUri)
    )
    return (await session.execute(statement)).scalars().first()


async def delete_redirect_uri(session: AsyncSession, org_id: uuid.UUID, uri_id: int) -> RedirectUri | None:
    """Remove the operator's redirect URI ``uri_id``; the removed row, or None."""
    statement = (
        sa.delete(RedirectUri)
        .where(col(RedirectUri.org_id) == org_id, col(RedirectUri.id) == uri_id)
        .returning(RedirectUri)
    )
    return (await session.execute(statement)).scalars().first()


async def redirect_uri_registered(session: AsyncSession, org_id: uuid.UUID, uri: str) -> bool:
    """Whether ``uri`` is, exactly, one of the operator's registered redirect URIs."""
    query = select(RedirectUri.id).where(col(RedirectUri.org_id) == org_id, col(RedirectUri.uri) == uri)
    return (await session.execute(query)).first() is not None


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    """How many organisations are in each status (the authority's queues)."""
    rows = await session.execute(
        sa.select(col(Organization.status), sa.func.count()).group_by(col(Organization.status))
    )
    return {str(status): int(n) for status, n in rows}
