import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from app.auth.dependencies import Authority, Session, public
from app.core.errors import responses
from app.core.pagination import Cursor, InvalidCursor, Limit, Page
from app.core.routing import CommitRoute
from app.core.types import Text
from app.experts import service
from app.experts.exceptions import ExpertNotFound, UnknownAffiliationOrg, UnknownField
from app.experts.schemas import ExpertCreate, ExpertPublic, ExpertRead, ExpertUpdate
from app.organizations.exceptions import UsernameTaken

router = APIRouter(prefix="/v1/experts", route_class=CommitRoute, tags=["experts"])
public_router = APIRouter(prefix="/v1/public/experts", route_class=CommitRoute, tags=["public"])

FieldQuery = Annotated[Text | None, Query(max_length=30, description="Only experts of this field")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ExpertRead,
    responses=responses(UnknownField, UnknownAffiliationOrg, UsernameTaken),
    summary="Add an expert to the pool (authority)",
    description="Creates the expert and their login (role `expert`). Fields come from a fixed list; the "
    "affiliation (and its org id, when it is a registered organisation) keeps the expert off reviews of "
    "that organisation.",
)
async def create_expert(data: ExpertCreate, session: Session, principal: Authority):
    return await service.create(session, principal, data)


@router.get(
    "",
    response_model=Page[ExpertRead],
    responses=responses(UnknownField, InvalidCursor),
    summary="List the pool (authority)",
)
async def list_experts(
    session: Session,
    _: Authority,
    limit: Limit = 50,
    cursor: Cursor = None,
    field: FieldQuery = None,
    active: bool | None = None,
):
    return await service.list_(session, field=field, active=active, limit=limit, cursor=cursor)


@router.get(
    "/{expert_id}", response_model=ExpertRead, responses=responses(ExpertNotFound), summary="An expert"
)
async def get_expert(expert_id: uuid.UUID, session: Session, _: Authority):
    return await service.read(session, expert_id)


@router.patch(
    "/{expert_id}",
    response_model=ExpertRead,
    responses=responses(ExpertNotFound, UnknownField, UnknownAffiliationOrg),
    summary="Change an expert's name, fields, affiliation or active flag (authority)",
    description="An inactive expert is never drawn again; panels they already sit on are not affected.",
)
async def update_expert(expert_id: uuid.UUID, data: ExpertUpdate, session: Session, principal: Authority):
    return await service.update(session, principal, expert_id, data)


@public_router.get(
    "",
    response_model=Page[ExpertPublic],
    dependencies=[public(300)],
    responses=responses(UnknownField, InvalidCursor),
    summary="The expert pool, as disclosed to the public (SZ 29)",
    description="Active experts with their fields and affiliations, by name. The ids are those that appear "
    "in the review draws (`GET /v1/reviews/{id}/draw`).",
)
async def public_experts(
    session: Session, limit: Limit = 50, cursor: Cursor = None, field: FieldQuery = None
):
    return await service.public_list(session, field=field, limit=limit, cursor=cursor)
