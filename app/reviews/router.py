import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, status

from app.auth.dependencies import Authority, Expert, Session, public, require
from app.auth.principal import Principal
from app.core.errors import responses
from app.core.pagination import Cursor, InvalidCursor, Limit, Page
from app.core.routing import CommitRoute
from app.core.types import Text
from app.experts.exceptions import UnknownField
from app.reviews import service
from app.reviews.exceptions import (
    AlreadyDeclared,
    DeclarationRequired,
    InvalidPanel,
    NotAnExpert,
    NotEnoughExperts,
    NotOnPanel,
    OpinionAlreadySubmitted,
    OpinionsMissing,
    PanelAlreadyOpen,
    PanelClosed,
    ReviewNotFound,
    SubjectManagedElsewhere,
)
from app.reviews.schemas import (
    DecisionIn,
    DeclarationIn,
    DeclarationRead,
    DrawRecord,
    Opinion,
    PanelOpen,
    PanelRead,
)

router = APIRouter(prefix="/v1/reviews", route_class=CommitRoute, tags=["reviews"])
AuthorityOrExpert = Annotated[Principal, Depends(require("authority", "expert"))]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=PanelRead,
    responses=responses(
        UnknownField, InvalidPanel, NotEnoughExperts, PanelAlreadyOpen, SubjectManagedElsewhere
    ),
    summary="Open an expert panel on a subject (authority)",
    description="Draws `size` active experts of `field` at random, leaving out anyone affiliated with the "
    "applicant (`exclude_affiliations`: org ids and/or names) or excluded explicitly. The seed, the sorted "
    "candidate list and the algorithm are recorded (`GET /v1/reviews/{id}/draw`). Fewer eligible experts "
    "than `size`: 409 `not_enough_experts`. Scenes open their reviews with `POST /v1/scenes/{id}/review`.",
)
async def open_panel(data: PanelOpen, session: Session, principal: Authority):
    return await service.open_from_request(session, principal, data)


@router.get(
    "",
    response_model=Page[PanelRead],
    responses=responses(NotAnExpert, InvalidCursor),
    summary="List panels: all (authority) or the caller's own (expert, or `mine=true`)",
    description="Newest first. An expert always sees only the panels they sit on.",
)
async def list_panels(
    session: Session,
    principal: AuthorityOrExpert,
    mine: bool = False,
    subject_type: Annotated[Text | None, Query(max_length=50)] = None,
    subject_id: Annotated[Text | None, Query(max_length=100)] = None,
    status: Literal["open", "decided"] | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
):
    return await service.list_(
        session,
        principal,
        mine=mine,
        subject_type=subject_type,
        subject_id=subject_id,
        status=status,
        limit=limit,
        cursor=cursor,
    )


@router.get(
    "/{panel_id}",
    response_model=PanelRead,
    responses=responses(ReviewNotFound),
    summary="A panel with its opinions",
    description="The authority sees every opinion; a member sees the panel and only their own opinion. "
    "Anyone else: 404.",
)
async def get_panel(panel_id: uuid.UUID, session: Session, principal: AuthorityOrExpert):
    return await service.read(session, principal, panel_id)


@router.get(
    "/{panel_id}/draw",
    response_model=DrawRecord,
    dependencies=[public(86400, immutable=True)],  # a draw never changes
    responses=responses(ReviewNotFound),
    summary="How the panel was drawn (public)",
    description="Seed, sorted candidate ids, algorithm and the chosen experts: re-running "
    "`draw(seed, candidates, size)` (rank by HMAC-SHA256(seed, id)) gives the same panel.",
)
async def get_draw(panel_id: uuid.UUID, session: Session):
    return await service.draw_record(session, panel_id)


@router.post(
    "/{panel_id}/opinions",
    status_code=status.HTTP_201_CREATED,
    response_model=PanelRead,
    responses=responses(
        ReviewNotFound, NotOnPanel, OpinionAlreadySubmitted, PanelClosed, DeclarationRequired
    ),
    summary="Give your opinion (a panel member, once)",
    description="Only after the member's declaration of interests (`POST /v1/reviews/{id}/declaration`): "
    "before it, 409 `declaration_required`; after declaring a conflict, 409 `conflict_declared`. A second "
    "opinion: 409 `opinion_already_submitted`.",
)
async def submit_opinion(panel_id: uuid.UUID, data: Opinion, session: Session, principal: Expert):
    return await service.submit_opinion(
        session, principal, panel_id, verdict=data.verdict, score=data.score, text=data.text
    )


@router.post(
    "/{panel_id}/declaration",
    status_code=status.HTTP_201_CREATED,
    response_model=DeclarationRead,
    responses=responses(ReviewNotFound, NotOnPanel, AlreadyDeclared, PanelClosed),
    summary="Declare your interests in the subject (a panel member, once, before seeing it)",
    description="Before a member sees the subject's documents or gives an opinion they declare, once, that "
    "they have no conflict of interest with the subject or its owner (`conflict: false`), or that they have "
    "one (`conflict: true`, with an optional `note`): they then stand aside, and the authority sees the "
    "declaration on the panel (`members[].conflict_declared`) to draw a replacement. A second declaration: "
    "409 `already_declared`; a decided panel: 409 `panel_closed`.",
)
async def declare(panel_id: uuid.UUID, data: DeclarationIn, session: Session, principal: Expert):
    return await service.declare(session, principal, panel_id, conflict=data.conflict, note=data.note)


@router.post(
    "/{panel_id}/decision",
    response_model=PanelRead,
    responses=responses(ReviewNotFound, OpinionsMissing, PanelClosed),
    summary="Decide the review (authority)",
    description="Allowed once the quorum of opinions (default: every member) is in; otherwise 409 "
    "`opinions_missing`. The subject follows the decision: a scene application is approved or rejected, a "
    "methodology version may be published only after `pass`.",
)
async def decide(panel_id: uuid.UUID, data: DecisionIn, session: Session, principal: Authority):
    return await service.decide(session, principal, panel_id, outcome=data.outcome, reason=data.reason)
