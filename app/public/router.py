"""Disclosure (SZ 29, JX 24–25): public, unauthenticated, cacheable lists and platform totals.

Each domain publishes its own lists (methodologies, scenes, experts, certified reductions);
this router adds the registered organisations and the platform-wide totals.
"""

import uuid
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from app.auth.dependencies import Public, Session
from app.core.errors import responses
from app.core.pagination import Cursor, InvalidCursor, Limit, Page
from app.core.routing import CommitRoute
from app.organizations import service as org_service
from app.public import service

router = APIRouter(prefix="/v1/public", route_class=CommitRoute, tags=["public"], dependencies=[Public])
KINDS = {
    "operators": "operator",
    "merchants": "merchant",
    "scene-operators": "scene_operator",
    "verifiers": "verifier",
}


class PublicOrganization(BaseModel):
    id: uuid.UUID
    kind: str
    name: str
    credit_code: str
    approved_at: datetime | None


class Totals(BaseModel):
    organisations: dict[str, int]
    people: int
    behaviours: int
    reduction_g: int
    points_credited: int
    points_used: int
    points_expired: int
    points_clawed_back: int


def _list_route(path: str, kind: str) -> None:
    async def public_organizations(session: Session, limit: Limit = 50, cursor: Cursor = None):
        result = await org_service.public_list(session, kind, limit, cursor)
        return {
            "items": [
                {
                    "id": o.id,
                    "kind": o.kind,
                    "name": o.name,
                    "credit_code": o.credit_code,
                    "approved_at": o.decided_at,
                }
                for o in result["items"]
            ],
            "next_cursor": result["next_cursor"],
        }

    router.add_api_route(
        f"/{path}",
        public_organizations,
        methods=["GET"],
        response_model=Page[PublicOrganization],
        responses=responses(InvalidCursor),
        name=f"public_{path.replace('-', '_')}",
        summary=f"Registered {path.replace('-', ' ')} (approved), by name",
    )


for _path, _kind in KINDS.items():
    _list_route(_path, _kind)


@router.get(
    "/totals",
    response_model=Totals,
    summary="Platform-wide totals: people, behaviours, grams, points",
    description="Sums of the whole ledger, read by each server process at most once a minute "
    "(`CARBON_PUBLIC_FIGURES_MAX_AGE_SECONDS`, as the answer's `Cache-Control: max-age` allows): "
    "a figure may be up to that old.",
)
async def totals(session: Session) -> dict:
    return await service.platform_totals(session)
