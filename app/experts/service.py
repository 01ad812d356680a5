"""The expert pool (SZ 8): the authority keeps experts, their fields, affiliations and logins."""

import re
import unicodedata
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth.principal import Principal
from app.core import audit, clock
from app.core.pagination import keyset, page
from app.experts.exceptions import ExpertNotFound, UnknownAffiliationOrg, UnknownField
from app.experts.models import Expert
from app.experts.schemas import Affiliation, ExpertCreate, ExpertUpdate
from app.organizations import service as org_service
from app.organizations.exceptions import OrganizationNotFound
from app.organizations.models import StaffUser

FIELDS = (
    "travel",
    "buildings",
    "energy",
    "forestry",
    "retail",
    "waste",
    "agriculture",
    "ocean",
    "verification",
    "data",
)
_NOT_NAME = re.compile(r"[\W_]+", re.UNICODE)


def normalise_affiliation(name: str) -> str:
    """Compare affiliations loosely: NFKC (full-width → ASCII), case-folded, no spaces or punctuation."""
    return _NOT_NAME.sub("", unicodedata.normalize("NFKC", name).casefold())


def check_field(field: str) -> str:
    if field not in FIELDS:
        raise UnknownField(f"{field!r} is not one of {', '.join(FIELDS)}", fields=list(FIELDS))
    return field


def _check_fields(fields: list[str]) -> list[str]:
    for f in fields:
        check_field(f)
    return sorted(set(fields))


async def _affiliation(session: AsyncSession, aff: Affiliation) -> dict[str, Any]:
    if aff.org_id is not None:
        try:
            await org_service.get(session, aff.org_id)
        except OrganizationNotFound as exc:
            raise UnknownAffiliationOrg(f"no organisation {aff.org_id}") from exc
    return {
        "affiliation_name": aff.name.strip(),
        "affiliation_norm": normalise_affiliation(aff.name),
        "affiliation_org_id": aff.org_id,
    }


def view(expert: Expert, username: str | None = None) -> dict[str, Any]:
    return {
        "id": expert.id,
        "name": expert.name,
        "fields": expert.fields,
        "affiliation": {"name": expert.affiliation_name, "org_id": expert.affiliation_org_id},
        "active": expert.active,
        "username": username,
        "created_at": expert.created_at,
        "updated_at": expert.updated_at,
    }


async def _username(session: AsyncSession, expert: Expert) -> str:
    return (
        await session.execute(select(StaffUser.username).where(StaffUser.id == expert.staff_user_id))
    ).scalar_one()


async def create(session: AsyncSession, principal: Principal, data: ExpertCreate) -> dict[str, Any]:
    fields = _check_fields(data.fields)
    aff = await _affiliation(session, data.affiliation)
    user = await org_service.create_staff_user(
        session, data.account.username, data.account.password, "expert"
    )
    now = clock.now()
    expert = Expert(
        name=data.name.strip(),
        fields=fields,
        active=data.active,
        staff_user_id=user.id,
        created_at=now,
        updated_at=now,
        **aff,
    )
    session.add(expert)
    await session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="expert.created",
        subject_type="expert",
        subject_id=expert.id,
        data={
            "name": expert.name,
            "fields": fields,
            "affiliation": expert.affiliation_name,
            "affiliation_org_id": expert.affiliation_org_id,
            "active": expert.active,
            "username": user.username,
        },
    )
    return view(expert, user.username)


async def get(session: AsyncSession, expert_id: uuid.UUID) -> Expert:
    expert = await session.get(Expert, expert_id)
    if expert is None:
        raise ExpertNotFound()
    return expert


async def read(session: AsyncSession, expert_id: uuid.UUID) -> dict[str, Any]:
    expert = await get(session, expert_id)
    return view(expert, await _username(session, expert))


async def update(
    session: AsyncSession, principal: Principal, expert_id: uuid.UUID, data: ExpertUpdate
) -> dict:
    expert = (
        await session.execute(select(Expert).where(Expert.id == expert_id).with_for_update())
    ).scalar_one_or_none()
    if expert is None:
        raise ExpertNotFound()
    changes: dict[str, Any] = {}
    if data.name is not None:
        changes["name"] = data.name.strip()
    if data.fields is not None:
        changes["fields"] = _check_fields(data.fields)
    if data.affiliation is not None:
        changes.update(await _affiliation(session, data.affiliation))
    if data.active is not None:
        changes["active"] = data.active
    changes = {k: v for k, v in changes.items() if getattr(expert, k) != v}
    if changes:
        for k, v in changes.items():
            setattr(expert, k, v)
        expert.updated_at = clock.now()
        await session.flush()
        changes.pop("affiliation_norm", None)
        audit.record(
            session,
            actor=principal.actor,
            action="expert.updated",
            subject_type="expert",
            subject_id=expert.id,
            data=changes,
        )
    return view(expert, await _username(session, expert))


async def for_staff_user(session: AsyncSession, staff_user_id: uuid.UUID) -> Expert | None:
    return (
        await session.execute(select(Expert).where(Expert.staff_user_id == staff_user_id))
    ).scalar_one_or_none()


async def active_in_field(session: AsyncSession, field: str) -> list[Expert]:
    """The pool a review draws from: active experts of ``field``."""
    result = await session.execute(
        select(Expert).where(Expert.active.is_(True), col(Expert.fields).contains([field]))  # type: ignore[attr-defined]
    )
    return list(result.scalars())


async def names(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = await session.execute(select(Expert.id, Expert.name).where(col(Expert.id).in_(ids)))
    return {r.id: r.name for r in rows}


async def list_(
    session: AsyncSession,
    *,
    field: str | None,
    active: bool | None,
    limit: int,
    cursor: str | None,
    public: bool = False,
) -> dict[str, Any]:
    query = select(Expert, StaffUser.username).join(StaffUser, StaffUser.id == Expert.staff_user_id)
    if public:
        active = True
    if field is not None:
        query = query.where(col(Expert.fields).contains([check_field(field)]))  # type: ignore[attr-defined]
    if active is not None:
        query = query.where(Expert.active.is_(active))
    query = keyset(query, cursor, (Expert.name, str), (Expert.id, uuid.UUID))
    rows = [view(e, username) for e, username in (await session.execute(query.limit(limit + 1))).all()]
    return page(rows, limit, lambda v: [v["name"], v["id"]])
