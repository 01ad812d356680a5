"""The expert pool (SZ 8): the authority keeps experts, their fields, affiliations and logins."""

import re
import unicodedata
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.core import audit, clock
from app.core.pagination import Page, page
from app.experts import repository
from app.experts.exceptions import ExpertNotFound, UnknownAffiliationOrg, UnknownField
from app.experts.models import Expert
from app.experts.schemas import Affiliation, ExpertCreate, ExpertPublic, ExpertRead, ExpertUpdate
from app.organizations import service as org_service
from app.organizations.exceptions import OrganizationNotFound

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


def _affiliation_of(expert: Expert) -> Affiliation:
    return Affiliation(name=expert.affiliation_name, org_id=expert.affiliation_org_id)


def _public(expert: Expert) -> ExpertPublic:
    return ExpertPublic(
        id=expert.id, name=expert.name, fields=expert.fields, affiliation=_affiliation_of(expert)
    )


def _view(expert: Expert, username: str) -> ExpertRead:
    return ExpertRead(
        id=expert.id,
        name=expert.name,
        fields=expert.fields,
        affiliation=_affiliation_of(expert),
        active=expert.active,
        username=username,
        created_at=expert.created_at,
        updated_at=expert.updated_at,
    )


async def _views(session: AsyncSession, experts: list[Expert]) -> list[ExpertRead]:
    """The experts with their logins' usernames (the organisations domain keeps the logins)."""
    if not experts:
        return []
    usernames = await org_service.usernames(session, [e.staff_user_id for e in experts])
    return [_view(e, usernames[e.staff_user_id]) for e in experts]


async def create(session: AsyncSession, principal: Principal, data: ExpertCreate) -> ExpertRead:
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
    await repository.insert(session, expert)
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
    return _view(expert, user.username)


async def get(session: AsyncSession, expert_id: uuid.UUID, *, lock: bool = False) -> Expert:
    expert = await repository.get(session, expert_id, lock=lock)
    if expert is None:
        raise ExpertNotFound()
    return expert


async def read(session: AsyncSession, expert_id: uuid.UUID) -> ExpertRead:
    return (await _views(session, [await get(session, expert_id)]))[0]


async def update(
    session: AsyncSession, principal: Principal, expert_id: uuid.UUID, data: ExpertUpdate
) -> ExpertRead:
    expert = await get(session, expert_id, lock=True)
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
    return (await _views(session, [expert]))[0]


async def for_staff_user(session: AsyncSession, staff_user_id: uuid.UUID) -> Expert | None:
    return await repository.for_staff_user(session, staff_user_id)


async def active_in_field(session: AsyncSession, field: str) -> list[Expert]:
    """The pool a review draws from: active experts of ``field``."""
    return await repository.active_in_field(session, field)


async def names(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    return await repository.names(session, ids)


async def list_(
    session: AsyncSession, *, field: str | None, active: bool | None, limit: int, cursor: str | None
) -> Page[ExpertRead]:
    """The pool, by name (the authority's list, with logins)."""
    if field is not None:
        check_field(field)
    experts = await repository.page(session, field=field, active=active, cursor=cursor, limit=limit)
    result = page(experts, limit, lambda e: [e.name, e.id])
    return Page[ExpertRead](items=await _views(session, result["items"]), next_cursor=result["next_cursor"])


async def public_list(
    session: AsyncSession, *, field: str | None, limit: int, cursor: str | None
) -> Page[ExpertPublic]:
    """Active experts by name, as disclosed to the public (SZ 29): no logins."""
    if field is not None:
        check_field(field)
    experts = await repository.page(session, field=field, active=True, cursor=cursor, limit=limit)
    result = page(experts, limit, lambda e: [e.name, e.id])
    return Page[ExpertPublic](items=[_public(e) for e in result["items"]], next_cursor=result["next_cursor"])
