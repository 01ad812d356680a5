"""Organisations: applications, the authority's decisions, staff logins and registered keys."""

import asyncio
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth.principal import Principal
from app.core import audit, clock, passwords, security
from app.core.pagination import keyset, page
from app.organizations.exceptions import (
    DuplicateOrganization,
    InvalidKey,
    InvalidTransition,
    KeyExists,
    KeyNotFound,
    NotAnOperator,
    NotYourOrganization,
    OrganizationNotFound,
    UsernameTaken,
)
from app.organizations.models import OperatorKey, Organization, OrgStatus, StaffUser
from app.organizations.schemas import OrganizationCreate

# decision → (states it may start from, state it leads to)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "approve": ((OrgStatus.pending,), OrgStatus.approved),
    "reject": ((OrgStatus.pending,), OrgStatus.rejected),
    "suspend": ((OrgStatus.approved,), OrgStatus.suspended),
    "reinstate": ((OrgStatus.suspended,), OrgStatus.approved),
}


async def create_staff_user(
    session: AsyncSession,
    username: str,
    password: str,
    role: str,
    org_id: uuid.UUID | None = None,
    is_org_admin: bool = False,
) -> StaffUser:
    taken = (await session.execute(select(StaffUser.id).where(StaffUser.username == username))).first()
    if taken:
        raise UsernameTaken(f"the username {username!r} is taken")
    user = StaffUser(
        username=username,
        password_hash=await asyncio.to_thread(passwords.hash_password, password),
        role=role,
        org_id=org_id,
        is_org_admin=is_org_admin,
        created_at=clock.now(),
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise UsernameTaken(f"the username {username!r} is taken") from exc
    return user


async def apply(session: AsyncSession, data: OrganizationCreate) -> Organization:
    existing = (
        await session.execute(
            select(Organization.id).where(
                Organization.kind == data.kind,
                Organization.credit_code == data.credit_code,
                Organization.status != OrgStatus.rejected,
            )
        )
    ).first()
    if existing:
        raise DuplicateOrganization()
    org = Organization(kind=data.kind, name=data.name, credit_code=data.credit_code, created_at=clock.now())
    session.add(org)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise DuplicateOrganization() from exc
    await create_staff_user(session, data.admin.username, data.admin.password, "org", org.id, is_org_admin=True)
    audit.record(
        session, actor="public", action="organization.applied", subject_type="organization",
        subject_id=org.id, data={"kind": org.kind, "name": org.name, "credit_code": org.credit_code},
    )
    return org


async def get(session: AsyncSession, org_id: uuid.UUID) -> Organization:
    org = await session.get(Organization, org_id)
    if org is None:
        raise OrganizationNotFound()
    return org


async def get_for(session: AsyncSession, principal: Principal, org_id: uuid.UUID) -> Organization:
    """The authority sees any organisation; staff only their own (others: 404, not 403)."""
    if principal.role != "authority" and principal.org_id != org_id:
        raise OrganizationNotFound()
    return await get(session, org_id)


async def decide(
    session: AsyncSession, principal: Principal, org_id: uuid.UUID, decision: str, reason: str | None
) -> Organization:
    sources, target = TRANSITIONS[decision]
    result = await session.execute(
        sa.update(Organization)
        .where(Organization.id == org_id, col(Organization.status).in_(sources))
        .values(status=target, reason=reason, decided_at=clock.now())
        .returning(Organization.id)
    )
    if result.first() is None:
        org = await get(session, org_id)
        raise InvalidTransition(f"cannot {decision} an organisation that is {org.status}")
    audit.record(
        session, actor=principal.actor, action=f"organization.{decision}", subject_type="organization",
        subject_id=org_id, data={"to": str(target), "reason": reason},
    )
    org = await session.get(Organization, org_id, populate_existing=True)
    assert org is not None
    return org


async def list_(
    session: AsyncSession, *, status: str | None, kind: str | None, limit: int, cursor: str | None
) -> dict:
    query = select(Organization)
    if status:
        query = query.where(Organization.status == status)
    if kind:
        query = query.where(Organization.kind == kind)
    query = keyset(query, cursor, (Organization.created_at, datetime), (Organization.id, uuid.UUID), descending=True)
    rows = list((await session.execute(query.limit(limit + 1))).scalars())
    return page(rows, limit, lambda o: [o.created_at, o.id])


def _own_org(principal: Principal, org_id: uuid.UUID) -> None:
    if principal.org_id != org_id:
        raise NotYourOrganization("only the organisation's own admin manages its keys")


async def register_key(
    session: AsyncSession, principal: Principal, org_id: uuid.UUID, jwk: dict
) -> OperatorKey:
    _own_org(principal, org_id)
    if principal.role != "operator":
        raise NotAnOperator("keys sign operators' client assertions and behaviour batches")
    try:
        public, algorithm = security.validate_public_jwk(jwk)
    except security.JoseError as exc:
        raise InvalidKey(exc.detail, code=exc.code if exc.code != "unsupported_key" else "unsupported_key") from exc
    kid = security.thumbprint(public)
    if await session.get(OperatorKey, (org_id, kid)) is not None:
        raise KeyExists(f"the key {kid} is already registered")
    key = OperatorKey(org_id=org_id, kid=kid, algorithm=algorithm, jwk=public, created_at=clock.now())
    session.add(key)
    await session.flush()
    audit.record(
        session, actor=principal.actor, action="key.registered", subject_type="organization",
        subject_id=org_id, data={"kid": kid, "algorithm": algorithm},
    )
    return key


async def list_keys(session: AsyncSession, principal: Principal, org_id: uuid.UUID) -> list[OperatorKey]:
    _own_org(principal, org_id)
    result = await session.execute(
        select(OperatorKey).where(OperatorKey.org_id == org_id).order_by(col(OperatorKey.created_at))
    )
    return list(result.scalars())


async def revoke_key(session: AsyncSession, principal: Principal, org_id: uuid.UUID, kid: str) -> OperatorKey:
    _own_org(principal, org_id)
    key = await session.get(OperatorKey, (org_id, kid))
    if key is None:
        raise KeyNotFound()
    if key.revoked_at is None:
        key.revoked_at = clock.now()
        await session.flush()
        audit.record(
            session, actor=principal.actor, action="key.revoked", subject_type="organization",
            subject_id=org_id, data={"kid": kid},
        )
    return key


async def public_key(session: AsyncSession, org_id: uuid.UUID, kid: str) -> OperatorKey | None:
    """A live key of ``org_id`` (for verifying signed submissions), or None."""
    key = await session.get(OperatorKey, (org_id, kid))
    return key if key is not None and key.revoked_at is None else None


async def authority_exists(session: AsyncSession) -> bool:
    row = (await session.execute(select(StaffUser.id).where(StaffUser.role == "authority").limit(1))).first()
    return row is not None


async def public_list(session: AsyncSession, kind: str, limit: int, cursor: str | None) -> dict:
    """Approved organisations of one kind, by name: what the public may know of them."""
    query = select(Organization).where(Organization.kind == kind, Organization.status == OrgStatus.approved)
    query = keyset(query, cursor, (Organization.name, str), (Organization.id, uuid.UUID))
    rows = list((await session.execute(query.limit(limit + 1))).scalars())
    return page(rows, limit, lambda o: [o.name, o.id])


async def count_approved(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        sa.select(Organization.kind, sa.func.count())
        .where(Organization.status == OrgStatus.approved)
        .group_by(Organization.kind)
    )
    return {kind: n for kind, n in rows.all()}
