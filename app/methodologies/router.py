import uuid
from enum import Enum
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, status

from app.auth.dependencies import Authority, Public, Session, optional_principal
from app.auth.exceptions import NotAuthenticated, RoleForbidden
from app.auth.principal import Principal
from app.core.errors import responses
from app.core.pagination import Cursor, InvalidCursor, Limit, Page
from app.core.routing import CommitRoute
from app.core.types import Text
from app.methodologies import service
from app.methodologies.exceptions import (
    BaselineBelowProject,
    CodeTypeMismatch,
    DraftsHidden,
    ExchangeRuleNotFound,
    IncompleteFactors,
    InconsistentNetFactor,
    InvalidBehaviourType,
    InvalidBounds,
    InvalidCap,
    InvalidCode,
    InvalidFactor,
    InvalidLifetime,
    InvalidPeriod,
    InvalidTransition,
    LifetimeTooLong,
    MethodologyNotFound,
    NaiveDatetime,
    NonPositiveNetFactor,
    NonPositiveRate,
    NoRuleInForce,
    OverlappingPeriod,
    VersionExists,
    VersionImmutable,
)
from app.methodologies.schemas import (
    ExchangeRuleCreate,
    ExchangeRuleRead,
    ExchangeRuleUpdate,
    MethodologyCreate,
    MethodologyRead,
    MethodologyUpdate,
)
from app.reviews.exceptions import ReviewNotPassed

router = APIRouter(route_class=CommitRoute)
M, R = "/v1/methodologies", "/v1/exchange-rules"
M_TAGS: list[str | Enum] = ["methodologies"]  # the element type FastAPI declares for tags
R_TAGS: list[str | Enum] = ["exchange rules"]

# The caller if a token was sent: the authority also sees drafts and versions under review.
Viewer = Annotated[Principal | None, Depends(optional_principal)]
StatusQuery = Annotated[
    Literal["draft", "under_review", "published", "retired"],
    Query(description="Versions in this state; `draft` and `under_review` need the authority's token"),
]

METHODOLOGY_RULES = (
    InvalidCode,
    InvalidBehaviourType,
    InvalidFactor,
    IncompleteFactors,
    InconsistentNetFactor,
    BaselineBelowProject,
    NonPositiveNetFactor,
    InvalidBounds,
    NaiveDatetime,
    InvalidPeriod,
)
AUTHORITY_ONLY = (NotAuthenticated, RoleForbidden)
RULE_RULES = (
    NonPositiveRate,
    InvalidCap,
    InvalidBehaviourType,
    InvalidLifetime,
    LifetimeTooLong,
    NaiveDatetime,
    InvalidPeriod,
)


# ---------------------------------------------------------------- methodologies


@router.post(
    M,
    tags=M_TAGS,
    status_code=status.HTTP_201_CREATED,
    response_model=MethodologyRead,
    responses=responses(*AUTHORITY_ONLY, *METHODOLOGY_RULES, CodeTypeMismatch, VersionExists),
    summary="Draft a methodology version (authority)",
    description="A new `code` starts at version 1; an existing `code` gets its next version (same "
    "behaviour type) — that is how a published methodology is changed. Give `baseline_factor_g` and "
    "`project_factor_g` (g CO2e per unit; the net is their difference) or `net_factor_g` directly; "
    "the net must be > 0. Times carry an offset.",
)
async def create_methodology(data: MethodologyCreate, session: Session, principal: Authority):
    return await service.create_methodology(session, principal, data)


@router.get(
    M,
    tags=M_TAGS,
    response_model=Page[MethodologyRead],
    dependencies=[Public],
    responses=responses(DraftsHidden, InvalidCursor),
    summary="List methodology versions (public)",
    description="Published versions by default, ordered by code and version. Anyone may read published "
    "and retired versions; drafts and versions under review only the authority.",
)
async def list_methodologies(
    session: Session,
    viewer: Viewer,
    limit: Limit = 50,
    cursor: Cursor = None,
    status: StatusQuery = "published",
    behaviour_type: Annotated[Text | None, Query(max_length=50)] = None,
    code: Annotated[Text | None, Query(max_length=50)] = None,
):
    return await service.list_methodologies(
        session, viewer, status=status, behaviour_type=behaviour_type, code=code, limit=limit, cursor=cursor
    )


@router.get(
    M + "/{version_id}",
    tags=M_TAGS,
    response_model=MethodologyRead,
    dependencies=[Public],
    responses=responses(MethodologyNotFound),
    summary="One methodology version (public once published)",
)
async def get_methodology(version_id: uuid.UUID, session: Session, viewer: Viewer):
    return await service.get_methodology(session, viewer, version_id)


@router.patch(
    M + "/{version_id}",
    tags=M_TAGS,
    response_model=MethodologyRead,
    responses=responses(
        *AUTHORITY_ONLY, MethodologyNotFound, VersionImmutable, *METHODOLOGY_RULES, CodeTypeMismatch
    ),
    summary="Edit a draft methodology version (authority)",
    description="Only drafts: anything submitted, published or retired answers 409 `version_immutable`. "
    "Absent fields stay; `null` clears an optional field.",
)
async def update_methodology(
    version_id: uuid.UUID, data: MethodologyUpdate, session: Session, principal: Authority
):
    return await service.update_methodology(session, principal, version_id, data)


# ---------------------------------------------------------------- exchange rules


@router.post(
    R,
    tags=R_TAGS,
    status_code=status.HTTP_201_CREATED,
    response_model=ExchangeRuleRead,
    responses=responses(*AUTHORITY_ONLY, *RULE_RULES, VersionExists),
    summary="Draft an exchange-rule version (authority)",
    description="The platform has one exchange rule; each new draft gets the next version number. "
    "points = floor(grams × `points_per_gram`), rounded down always; `lot_lifetime_days` at most 3650 "
    "(points expire at most 10 years after crediting, SZ 22).",
)
async def create_exchange_rule(data: ExchangeRuleCreate, session: Session, principal: Authority):
    return await service.create_exchange_rule(session, principal, data)


@router.get(
    R,
    tags=R_TAGS,
    response_model=Page[ExchangeRuleRead],
    dependencies=[Public],
    responses=responses(DraftsHidden, InvalidCursor),
    summary="List exchange-rule versions (public)",
    description="Published versions by default, by version number; drafts and versions under review "
    "only for the authority.",
)
async def list_exchange_rules(
    session: Session,
    viewer: Viewer,
    limit: Limit = 50,
    cursor: Cursor = None,
    status: StatusQuery = "published",
):
    return await service.list_exchange_rules(session, viewer, status=status, limit=limit, cursor=cursor)


@router.get(
    R + "/current",
    tags=R_TAGS,
    response_model=ExchangeRuleRead,
    dependencies=[Public],
    responses=responses(NoRuleInForce),
    summary="The exchange-rule version in force now (public)",
)
async def current_exchange_rule(session: Session):
    return await service.exchange_rule_in_force_now(session)


@router.get(
    R + "/{version_id}",
    tags=R_TAGS,
    response_model=ExchangeRuleRead,
    dependencies=[Public],
    responses=responses(ExchangeRuleNotFound),
    summary="One exchange-rule version (public once published)",
)
async def get_exchange_rule(version_id: uuid.UUID, session: Session, viewer: Viewer):
    return await service.get_exchange_rule(session, viewer, version_id)


@router.patch(
    R + "/{version_id}",
    tags=R_TAGS,
    response_model=ExchangeRuleRead,
    responses=responses(*AUTHORITY_ONLY, ExchangeRuleNotFound, VersionImmutable, *RULE_RULES),
    summary="Edit a draft exchange-rule version (authority)",
    description="Only drafts: anything else answers 409 `version_immutable`.",
)
async def update_exchange_rule(
    version_id: uuid.UUID, data: ExchangeRuleUpdate, session: Session, principal: Authority
):
    return await service.update_exchange_rule(session, principal, version_id, data)


# ---------------------------------------------------------------- lifecycle actions of both

_ACTIONS = {
    "submit": (
        "Submit a draft for review: draft → under_review (authority)",
        (InvalidTransition,),
        "The version can no longer be edited.",
    ),
    "publish": (
        "Publish a version under review: under_review → published (authority)",
        (InvalidTransition, OverlappingPeriod),
        "Its period may not overlap another published version ({scope}); a version in force "
        "with an open end is closed where this one starts and stays published for its period.",
    ),
    "retire": (
        "Retire a published version: published → retired (authority)",
        (InvalidTransition,),
        "Its period ends now (if it ran longer); records of its period keep using it.",
    ),
}


def _action_route(
    prefix: str, tags: list[str | Enum], action: str, fn, read, not_found, scope: str, extra=()
) -> None:
    summary, errors, description = _ACTIONS[action]
    errors = (*errors, *extra)

    async def act(version_id: uuid.UUID, session: Session, principal: Authority):
        return await fn(session, principal, version_id)

    router.add_api_route(
        prefix + "/{version_id}/" + action,
        act,
        methods=["POST"],
        tags=tags,
        response_model=read,
        responses=responses(*AUTHORITY_ONLY, not_found, *errors),
        summary=summary,
        description=description.format(scope=scope),
        name=f"{str(tags[0]).replace(' ', '_')}_{action}",
    )


for _action in _ACTIONS:
    _action_route(
        M,
        M_TAGS,
        _action,
        getattr(service, f"{_action}_methodology"),
        MethodologyRead,
        MethodologyNotFound,
        "same behaviour type",
        (ReviewNotPassed,) if _action == "publish" else (),
    )
    _action_route(
        R,
        R_TAGS,
        _action,
        getattr(service, f"{_action}_exchange_rule"),
        ExchangeRuleRead,
        ExchangeRuleNotFound,
        "the platform has one exchange rule",
    )
