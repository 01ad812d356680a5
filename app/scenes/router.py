import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, status

from app.auth.dependencies import Authority, Public, SceneOperator, Session, require
from app.auth.principal import Principal
from app.core.errors import responses
from app.core.pagination import Cursor, InvalidCursor, Limit, Page
from app.core.routing import CommitRoute
from app.core.types import Text
from app.experts.exceptions import UnknownField
from app.reviews.exceptions import InvalidPanel, NotEnoughExperts, PanelAlreadyOpen
from app.reviews.schemas import PanelRead
from app.scenes import service
from app.scenes.exceptions import (
    ChangeUnderReview,
    CoordinatesOutOfRange,
    IncompleteNearQuery,
    InvalidDivisionCode,
    InvalidEvidenceLink,
    InvalidRadius,
    InvalidTransition,
    SceneNotFound,
    UnknownBehaviourType,
    UnknownCategory,
)
from app.scenes.schemas import (
    BehaviourTypes,
    PublicScene,
    SceneCreate,
    SceneDecision,
    SceneRead,
    SceneReview,
    SceneUpdate,
)

router = APIRouter(prefix="/v1/scenes", route_class=CommitRoute, tags=["scenes"])
public_router = APIRouter(prefix="/v1/public/scenes", route_class=CommitRoute, tags=["public"])
AuthorityOrOperator = Annotated[Principal, Depends(require("authority", "scene_operator"))]
StatusFilter = Literal["draft", "submitted", "under_review", "approved", "rejected", "suspended", "revoked"]
_INVALID = (
    UnknownCategory,
    CoordinatesOutOfRange,
    InvalidDivisionCode,
    UnknownBehaviourType,
    InvalidEvidenceLink,
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SceneRead,
    responses=responses(*_INVALID),
    summary="Apply for a scene (approved scene operator)",
    description="Creates a `draft`; `POST /v1/scenes/{id}/submit` sends it to the authority. Behaviour "
    "types must be those of published scene methodologies (`GET /v1/public/scenes/behaviour-types`).",
)
async def create_scene(data: SceneCreate, session: Session, principal: SceneOperator):
    return await service.create(session, principal, data)


@router.get(
    "",
    response_model=Page[SceneRead],
    responses=responses(InvalidCursor),
    summary="List scenes: the operator's own, or all (authority)",
    description="Newest first.",
)
async def list_scenes(
    session: Session,
    principal: AuthorityOrOperator,
    status: StatusFilter | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
):
    return await service.list_(session, principal, status=status, limit=limit, cursor=cursor)


@router.get("/{scene_id}", response_model=SceneRead, responses=responses(SceneNotFound), summary="A scene")
async def get_scene(scene_id: uuid.UUID, session: Session, principal: AuthorityOrOperator):
    return await service.read(session, principal, scene_id)


@router.patch(
    "/{scene_id}",
    response_model=SceneRead,
    responses=responses(SceneNotFound, InvalidTransition, ChangeUnderReview, *_INVALID),
    summary="Edit a scene (its operator)",
    description="A `draft` or `rejected` scene is edited in place. On an `approved` scene the edit becomes a "
    "proposed change (`change`), reviewed by experts like an application; the approved version stays live "
    "until the change is approved. Editing again before the review starts replaces the proposal. Other "
    "states: 409 `invalid_transition`.",
)
async def update_scene(scene_id: uuid.UUID, data: SceneUpdate, session: Session, principal: SceneOperator):
    return await service.update(session, principal, scene_id, data)


@router.post(
    "/{scene_id}/submit",
    response_model=SceneRead,
    responses=responses(SceneNotFound, InvalidTransition),
    summary="Submit the application (its operator): draft or rejected → submitted",
)
async def submit_scene(scene_id: uuid.UUID, session: Session, principal: SceneOperator):
    return await service.submit(session, principal, scene_id)


@router.post(
    "/{scene_id}/review",
    status_code=status.HTTP_201_CREATED,
    response_model=PanelRead,
    responses=responses(
        SceneNotFound, InvalidTransition, UnknownField, InvalidPanel, NotEnoughExperts, PanelAlreadyOpen
    ),
    summary="Open the expert review (authority)",
    description="For a `submitted` application (→ `under_review`) or the proposed change of an `approved` "
    "scene. Draws the panel from the field (default by category), never an expert affiliated with the scene "
    "operator. The panel's decision (`POST /v1/reviews/{id}/decision`) approves the scene — granting its "
    "label code — or rejects it with the decision's reason; for a change, it applies or rejects the change.",
)
async def review_scene(
    scene_id: uuid.UUID, session: Session, principal: Authority, data: SceneReview | None = None
):
    return await service.open_review(session, principal, scene_id, data or SceneReview())


def _decision_route(action: str, summary: str) -> None:
    async def decide(scene_id: uuid.UUID, data: SceneDecision, session: Session, principal: Authority):
        return await service.decide(session, principal, scene_id, action, data.reason)

    router.add_api_route(
        f"/{{scene_id}}/{action}",
        decide,
        methods=["POST"],
        response_model=SceneRead,
        responses=responses(SceneNotFound, InvalidTransition),
        summary=summary,
        name=f"scene_{action}",
    )


_decision_route("suspend", "Suspend an approved scene: its behaviours are refused meanwhile (authority)")
_decision_route("reinstate", "Reinstate a suspended scene (authority)")
_decision_route("revoke", "Revoke an approved or suspended scene, for good (authority)")


@public_router.get(
    "",
    response_model=Page[PublicScene],
    dependencies=[Public],
    responses=responses(
        UnknownCategory, CoordinatesOutOfRange, IncompleteNearQuery, InvalidRadius, InvalidCursor
    ),
    summary="Approved scenes, for maps and apps (public)",
    description="Filter by `name` (contains, any case), `city_code`, `district_code`, `category`, `behaviour_type`; "
    "by label code. "
    "Near me: `lat` and `lng` (and `radius_m`, default 5,000, at most 50,000) list the scenes within the "
    "radius, nearest first, each with `distance_m` (great circle, rounded to the metre).",
)
async def public_scenes(
    session: Session,
    city_code: Annotated[Text | None, Query(max_length=6)] = None,
    district_code: Annotated[Text | None, Query(max_length=6)] = None,
    category: Annotated[Text | None, Query(max_length=30)] = None,
    behaviour_type: Annotated[Text | None, Query(max_length=50)] = None,
    lat: float | None = None,
    lng: float | None = None,
    radius_m: float | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    name: Annotated[Text | None, Query(max_length=100)] = None,
):
    return await service.public_list(
        session,
        name=name,
        city_code=city_code,
        district_code=district_code,
        category=category,
        behaviour_type=behaviour_type,
        lat=lat,
        lng=lng,
        radius_m=radius_m,
        limit=limit,
        cursor=cursor,
    )


@public_router.get(
    "/behaviour-types",
    response_model=BehaviourTypes,
    dependencies=[Public],
    summary="The behaviour types a scene may record (public)",
)
async def behaviour_types(session: Session):
    return await service.accepted_behaviour_types(session)


@public_router.get(
    "/{scene_id}",
    response_model=PublicScene,
    dependencies=[Public],
    responses=responses(SceneNotFound),
    summary="An approved scene (public)",
)
async def public_scene(scene_id: uuid.UUID, session: Session):
    return await service.public_get(session, scene_id)
