"""Scenes (SZ 25–28): applications, expert review, labels, suspension and revocation, the public map.

Lifecycle: draft → submitted → under_review → approved (label granted, published) | rejected;
rejected → (edited) → submitted again; approved ⇄ suspended; approved | suspended → revoked (final).
A change to an approved scene is stored as a ``scene_changes`` row and reviewed like an
application; the approved version stays live until the change passes. The expert panel's decision
drives the scene through the hooks registered with :mod:`app.reviews.service` at the bottom.
"""

import math
import re
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.core import audit, clock, db
from app.core.pagination import Page, decode_cursor, page
from app.methodologies import service as methodologies_service
from app.organizations import service as org_service
from app.points import service as points_service
from app.reviews import service as reviews_service
from app.reviews.schemas import PanelRead
from app.scenes import repository
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
from app.scenes.models import ChangeStatus, Scene, SceneChange, SceneStatus
from app.scenes.schemas import (
    BehaviourTypes,
    PublicScene,
    SceneChangeRead,
    SceneCreate,
    SceneFields,
    SceneRead,
    SceneReview,
    SceneUpdate,
)
from app.webhooks import service as webhooks_service

CATEGORIES = ("business_premises", "public_place", "public_institution")
CATEGORY_FIELD = {"business_premises": "retail", "public_place": "retail", "public_institution": "buildings"}
DEFAULT_BEHAVIOUR_TYPES = (
    "own_cup",
    "no_disposable_tableware",
    "clean_plate",
    "paperless_receipt",
    "reusable_bag",
    "refill_water",
)
"""Accepted while no scene-category methodology is published."""
LABEL_PREFIX = "SZ-CJ"
EDITABLE = tuple(SceneFields.model_fields)
MAX_RADIUS_M = 50_000
DEFAULT_RADIUS_M = 5_000
_DIVISION = re.compile(r"^\d{6}$")
_SCENE_TYPE, _CHANGE_TYPE = "scene", "scene_change"
_REVOKED = "the scene was revoked"

# action → (states it may start from, state it leads to)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "suspend": ((SceneStatus.approved,), SceneStatus.suspended),
    "reinstate": ((SceneStatus.suspended,), SceneStatus.approved),
    "revoke": ((SceneStatus.approved, SceneStatus.suspended), SceneStatus.revoked),
}


# --- validation -----------------------------------------------------------------------------


async def accepted_behaviour_types(session: AsyncSession) -> BehaviourTypes:
    """Those of the published scene methodologies; the defaults while none is published."""
    published = await methodologies_service.published_behaviour_types(session, "scene")
    if published:
        return BehaviourTypes(behaviour_types=published, source="methodologies")
    return BehaviourTypes(behaviour_types=list(DEFAULT_BEHAVIOUR_TYPES), source="default")


def check_category(category: str) -> str:
    if category not in CATEGORIES:
        raise UnknownCategory(
            f"{category!r} is not one of {', '.join(CATEGORIES)}", categories=list(CATEGORIES)
        )
    return category


def check_coordinates(lat: float, lng: float) -> None:
    if not (math.isfinite(lat) and math.isfinite(lng) and -90 <= lat <= 90 and -180 <= lng <= 180):
        raise CoordinatesOutOfRange(f"({lat}, {lng}) is not a point on Earth")


def _check_divisions(city_code: str, district_code: str) -> None:
    if not _DIVISION.match(city_code) or not city_code.endswith("00") or city_code.endswith("0000"):
        raise InvalidDivisionCode(
            f"city_code {city_code!r} is not a 6-digit prefecture-level code like 440300"
        )
    if (
        not _DIVISION.match(district_code)
        or district_code.endswith("00")
        or district_code[:4] != city_code[:4]
    ):
        raise InvalidDivisionCode(
            f"district_code {district_code!r} is not a 6-digit county-level code within {city_code}"
        )


async def _validated(session: AsyncSession, values: dict[str, Any]) -> dict[str, Any]:
    check_category(values["category"])
    check_coordinates(values["lat"], values["lng"])
    _check_divisions(values["city_code"], values["district_code"])
    accepted = (await accepted_behaviour_types(session)).behaviour_types
    types = list(dict.fromkeys(values["behaviour_types"]))
    unknown = [t for t in types if t not in accepted]
    if unknown:
        raise UnknownBehaviourType(
            f"{', '.join(unknown)} cannot be recorded by scenes; accepted: {', '.join(accepted)}",
            accepted=accepted,
        )
    for link in values["evidence_links"]:
        parts = urlsplit(link)
        if parts.scheme not in ("http", "https") or not parts.netloc or len(link) > 2000:
            raise InvalidEvidenceLink(f"{link!r} is not an http(s) URL")
    return {
        **values,
        "name": values["name"].strip(),
        "address": values["address"].strip(),
        "behaviour_types": types,
    }


# --- reading --------------------------------------------------------------------------------


def _change_view(change: SceneChange | None) -> SceneChangeRead | None:
    if change is None:
        return None
    return SceneChangeRead(
        id=change.id,
        status=change.status,
        proposed=change.proposed,
        reason=change.reason,
        review_panel_id=change.review_panel_id,
        created_at=change.created_at,
        decided_at=change.decided_at,
    )


def _view(scene: Scene, change: SceneChange | None) -> SceneRead:
    out = {
        name: getattr(scene, name)
        for name in (
            *EDITABLE,
            "id",
            "operator_id",
            "status",
            "label_code",
            "reason",
            "review_panel_id",
            "created_at",
            "updated_at",
            "submitted_at",
            "approved_at",
            "decided_at",
        )
    }
    return SceneRead(**out, change=_change_view(change))


async def _views(session: AsyncSession, scenes: list[Scene]) -> list[SceneRead]:
    if not scenes:
        return []
    changes = await repository.latest_changes(session, [s.id for s in scenes])
    return [_view(s, changes.get(s.id)) for s in scenes]


async def _get(
    session: AsyncSession, principal: Principal | None, scene_id: uuid.UUID, *, lock: bool = False
) -> Scene:
    """The scene, if the caller may see it: the authority any, a scene operator only its own (else 404)."""
    scene = await repository.get(session, scene_id, lock=lock)
    if scene is None or (
        principal is not None and principal.role != "authority" and scene.operator_id != principal.org_id
    ):
        raise SceneNotFound()
    return scene


async def read(session: AsyncSession, principal: Principal, scene_id: uuid.UUID) -> SceneRead:
    return (await _views(session, [await _get(session, principal, scene_id)]))[0]


async def list_(
    session: AsyncSession, principal: Principal, *, status: str | None, limit: int, cursor: str | None
) -> Page[SceneRead]:
    """Newest first: the authority's all, a scene operator's its own."""
    operator_id = None if principal.role == "authority" else principal.org_id
    scenes = await repository.page(
        session, operator_id=operator_id, status=status, cursor=cursor, limit=limit
    )
    result = page(scenes, limit, lambda s: [s.created_at, s.id])
    return Page[SceneRead](items=await _views(session, result["items"]), next_cursor=result["next_cursor"])


# --- the operator's side --------------------------------------------------------------------


def _operator_of(principal: Principal) -> uuid.UUID:
    """The caller's organisation: the routes let only staff of an approved scene operator apply."""
    assert principal.org_id is not None
    return principal.org_id


async def create(session: AsyncSession, principal: Principal, data: SceneCreate) -> SceneRead:
    values = await _validated(session, data.model_dump())
    now = clock.now()
    scene = Scene(operator_id=_operator_of(principal), created_at=now, updated_at=now, **values)
    await repository.insert(session, scene)
    audit.record(
        session,
        actor=principal.actor,
        action="scene.created",
        subject_type="scene",
        subject_id=scene.id,
        data={"name": scene.name, "category": scene.category, "behaviour_types": scene.behaviour_types},
    )
    return _view(scene, None)


async def update(
    session: AsyncSession, principal: Principal, scene_id: uuid.UUID, data: SceneUpdate
) -> SceneRead:
    """Draft or rejected: edited in place. Approved: the change is proposed and reviewed again.

    A second edit of an approved scene before its review starts amends the pending proposal.
    """
    scene = await _get(session, principal, scene_id, lock=True)
    patch = data.model_dump(exclude_unset=True)
    now = clock.now()
    if scene.status in (SceneStatus.draft, SceneStatus.rejected):
        merged = await _validated(session, {**{k: getattr(scene, k) for k in EDITABLE}, **patch})
        for k, v in merged.items():
            setattr(scene, k, v)
        scene.updated_at = now
        await session.flush()
        audit.record(
            session,
            actor=principal.actor,
            action="scene.edited",
            subject_type="scene",
            subject_id=scene.id,
            data={"fields": sorted(patch)},
        )
        return (await _views(session, [scene]))[0]
    if scene.status != SceneStatus.approved:
        raise InvalidTransition(f"a scene that is {scene.status} cannot be edited")
    live = await repository.live_change(
        session, scene.id, [ChangeStatus.submitted, ChangeStatus.under_review]
    )
    if live is not None and live.status == ChangeStatus.under_review:
        raise ChangeUnderReview("wait for the decision on the change under review")
    base = live.proposed if live is not None else {k: getattr(scene, k) for k in EDITABLE}
    merged = await _validated(session, {**base, **patch})
    if live is None:
        live = SceneChange(scene_id=scene.id, proposed=merged, created_at=now, updated_at=now)
        await repository.insert(session, live)
    else:
        live.proposed = merged
        live.updated_at = now
        await session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="scene.change_proposed",
        subject_type="scene",
        subject_id=scene.id,
        data={"change_id": str(live.id), "fields": sorted(patch)},
    )
    return _view(scene, live)


async def submit(session: AsyncSession, principal: Principal, scene_id: uuid.UUID) -> SceneRead:
    scene = await _get(session, principal, scene_id, lock=True)
    if scene.status not in (SceneStatus.draft, SceneStatus.rejected):
        raise InvalidTransition(f"a scene that is {scene.status} cannot be submitted")
    now = clock.now()
    previous = scene.status
    scene.status, scene.submitted_at, scene.updated_at, scene.reason = SceneStatus.submitted, now, now, None
    await session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="scene.submitted",
        subject_type="scene",
        subject_id=scene.id,
        data={"from": str(previous)},
    )
    return (await _views(session, [scene]))[0]


async def apply(session: AsyncSession, principal: Principal, data: SceneCreate) -> SceneRead:
    """Create the application and submit it to the authority at once (the portal's "apply")."""
    scene = await create(session, principal, data)
    return await submit(session, principal, scene.id)


async def revise(
    session: AsyncSession, principal: Principal, scene_id: uuid.UUID, data: SceneUpdate
) -> SceneRead:
    """The portal's edit: a draft or rejected application is corrected and submitted again; on an
    approved scene the edit is proposed as a change for review (see :func:`update`)."""
    scene = await update(session, principal, scene_id, data)
    if scene.status in (SceneStatus.draft, SceneStatus.rejected):
        return await submit(session, principal, scene_id)
    return scene


@dataclass(frozen=True)
class OperatorOverview:
    """A scene as its operator follows it: the application, its reviews' progress (no expert named)
    and what was recorded there."""

    scene: SceneRead
    review: reviews_service.PanelProgress | None
    change_review: reviews_service.PanelProgress | None
    activity: points_service.SceneActivity


async def operator_overview(
    session: AsyncSession, principal: Principal, scene_id: uuid.UUID
) -> OperatorOverview:
    """The operator's own scene (else 404) with its review, its proposed change's review, its records."""
    scene = await read(session, principal, scene_id)
    review = (
        None
        if scene.review_panel_id is None
        else await reviews_service.progress(session, scene.review_panel_id)
    )
    change_panel = scene.change.review_panel_id if scene.change else None
    change_review = None if change_panel is None else await reviews_service.progress(session, change_panel)
    return OperatorOverview(
        scene, review, change_review, await points_service.scene_activity(session, scene.id)
    )


# --- the authority's side -------------------------------------------------------------------


async def open_review(
    session: AsyncSession, principal: Principal, scene_id: uuid.UUID, data: SceneReview
) -> PanelRead:
    """Draw the panel for what awaits review: the application, or a proposed change of an approved scene."""
    scene = await _get(session, principal, scene_id, lock=True)
    change: SceneChange | None = None
    if scene.status == SceneStatus.submitted:
        subject_type, subject_id, category = _SCENE_TYPE, str(scene.id), scene.category
    elif scene.status == SceneStatus.approved:
        change = await repository.live_change(session, scene.id, [ChangeStatus.submitted])
        if change is None:
            raise InvalidTransition("the approved scene has no proposed change awaiting review")
        subject_type, subject_id, category = _CHANGE_TYPE, str(change.id), change.proposed["category"]
    else:
        raise InvalidTransition(f"a scene that is {scene.status} has nothing to review")
    operator = await org_service.get(session, scene.operator_id)
    panel = await reviews_service.open_panel(
        session,
        principal,
        subject_type=subject_type,
        subject_id=subject_id,
        field=data.field or CATEGORY_FIELD[category],
        size=data.size,
        quorum=data.quorum,
        seed=data.seed,
        exclude_affiliations={str(operator.id), operator.name},
        exclude_experts={str(e) for e in data.exclude_experts},
    )
    now = clock.now()
    if change is None:
        scene.status, scene.review_panel_id = SceneStatus.under_review, panel.id
    else:
        change.status, change.review_panel_id, change.updated_at = ChangeStatus.under_review, panel.id, now
    scene.updated_at = now
    await session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="scene.review_opened",
        subject_type="scene",
        subject_id=scene.id,
        data={"panel_id": str(panel.id), "change_id": str(change.id) if change else None},
    )
    return await reviews_service.view(session, principal, panel)


async def decide(
    session: AsyncSession, principal: Principal, scene_id: uuid.UUID, action: str, reason: str
) -> SceneRead:
    sources, target = TRANSITIONS[action]
    scene = await _get(session, principal, scene_id, lock=True)
    if scene.status not in sources:
        raise InvalidTransition(f"cannot {action} a scene that is {scene.status}")
    now = clock.now()
    previous = scene.status
    scene.status, scene.reason, scene.decided_at, scene.updated_at = target, reason, now, now
    if target == SceneStatus.revoked:
        await repository.reject_submitted_changes(session, scene.id, _REVOKED, now)
    await session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action=f"scene.{action}",
        subject_type="scene",
        subject_id=scene.id,
        data={"from": str(previous), "to": str(target), "reason": reason},
    )
    await _emit_decided(session, scene, decision=action, status=target, reason=reason)
    return (await _views(session, [scene]))[0]


async def _emit_decided(
    session: AsyncSession,
    scene: Scene,
    *,
    decision: str,
    status: str,
    reason: str | None,
    change_id: uuid.UUID | None = None,
) -> None:
    """``scene.decided`` to the scene's operator: what was decided (an application, a change, or the
    authority's suspension, reinstatement or revocation), the scene's status after it, and why."""
    await webhooks_service.emit(
        session,
        org_id=scene.operator_id,
        type="scene.decided",
        subject_type="scene",
        subject_id=scene.id,
        payload={
            "scene_id": scene.id,
            "name": scene.name,
            "decision": decision,
            "change_id": change_id,
            "status": str(scene.status),
            "decided": str(status),
            "label_code": scene.label_code,
            "reason": reason,
        },
    )


async def _grant_label(session: AsyncSession) -> str:
    return f"{LABEL_PREFIX}-{clock.today().year}-{await repository.next_label_number(session):06d}"


@reviews_service.on_decision(_SCENE_TYPE)
async def _application_decided(
    session: AsyncSession, principal: Principal, panel: reviews_service.PanelDecision
) -> None:
    scene = await _get(session, None, uuid.UUID(panel.subject_id), lock=True)
    if scene.review_panel_id != panel.id or scene.status != SceneStatus.under_review:
        return
    now = clock.now()
    scene.reason, scene.decided_at, scene.updated_at = panel.reason, now, now
    if panel.passed:
        scene.status = SceneStatus.approved
        scene.label_code = scene.label_code or await _grant_label(session)
        scene.approved_at = scene.approved_at or now
    else:
        scene.status = SceneStatus.rejected
    await session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action=f"scene.{scene.status}",
        subject_type="scene",
        subject_id=scene.id,
        data={"panel_id": str(panel.id), "reason": panel.reason, "label_code": scene.label_code},
    )
    await _emit_decided(session, scene, decision="application", status=scene.status, reason=panel.reason)


@reviews_service.on_decision(_CHANGE_TYPE)
async def _change_decided(
    session: AsyncSession, principal: Principal, panel: reviews_service.PanelDecision
) -> None:
    change = await repository.change(session, uuid.UUID(panel.subject_id))
    if change is None or change.review_panel_id != panel.id or change.status != ChangeStatus.under_review:
        return
    scene = await _get(session, None, change.scene_id, lock=True)
    now = clock.now()
    passed = panel.passed and scene.status != SceneStatus.revoked
    change.status = ChangeStatus.approved if passed else ChangeStatus.rejected
    change.reason = panel.reason if scene.status != SceneStatus.revoked else _REVOKED
    change.decided_at, change.updated_at = now, now
    if passed:
        for k in EDITABLE:
            setattr(scene, k, change.proposed[k])
        scene.updated_at = now
    await session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action=f"scene.change_{change.status}",
        subject_type="scene",
        subject_id=scene.id,
        data={"change_id": str(change.id), "panel_id": str(panel.id), "reason": change.reason},
    )
    await _emit_decided(
        session, scene, decision="change", status=change.status, reason=change.reason, change_id=change.id
    )


@reviews_service.describes(_SCENE_TYPE)
async def _describe_application(session: AsyncSession, subject_id: str) -> reviews_service.Subject:
    """The application as its panel's experts read it: the scene's fields (a ``SceneRead``)."""
    scene = (await _views(session, [await _get(session, None, uuid.UUID(subject_id))]))[0]
    operator = await org_service.get(session, scene.operator_id)
    return reviews_service.Subject(_SCENE_TYPE, subject_id, scene.name, operator.name, scene)


@reviews_service.describes(_CHANGE_TYPE)
async def _describe_change(session: AsyncSession, subject_id: str) -> reviews_service.Subject:
    """A proposed change as its panel's experts read it: the scene's fields as proposed (``SceneFields``)."""
    change = await repository.change(session, uuid.UUID(subject_id))
    if change is None:
        raise SceneNotFound()
    scene = await _get(session, None, change.scene_id)
    operator = await org_service.get(session, scene.operator_id)
    proposed = SceneFields.model_validate(change.proposed)
    return reviews_service.Subject(_CHANGE_TYPE, subject_id, scene.name, operator.name, proposed)


# --- the public map -------------------------------------------------------------------------


def _public(row: asyncpg.Record, **extra: Any) -> PublicScene:
    return PublicScene(**{**row, **extra})


async def public_list(
    session: AsyncSession,
    *,
    city_code: str | None,
    district_code: str | None,
    category: str | None,
    behaviour_type: str | None,
    lat: float | None,
    lng: float | None,
    radius_m: float | None,
    limit: int,
    cursor: str | None,
    name: str | None = None,
) -> Page[PublicScene]:
    """Approved scenes by label code; near me (``lat``, ``lng``, ``radius_m``): nearest first.
    ``name``: scenes whose name contains it (any case)."""
    if category is not None:
        check_category(category)
    filters = {
        "name": name.strip() or None if name else None,
        "city_code": city_code,
        "district_code": district_code,
        "category": category,
        "behaviour_type": behaviour_type,
    }
    if lat is None and lng is None and radius_m is None:
        label = decode_cursor(cursor, str)
        conn = await db.raw_connection(session)
        rows = await repository.public_list(
            conn, **filters, after_label=label[0] if label else None, limit=limit + 1
        )
        result = page(rows, limit, lambda r: [r["label_code"]])
        return Page[PublicScene](
            items=[_public(r) for r in result["items"]], next_cursor=result["next_cursor"]
        )
    if lat is None or lng is None:
        raise IncompleteNearQuery("near me needs lat and lng (and optionally radius_m)")
    check_coordinates(lat, lng)
    radius = DEFAULT_RADIUS_M if radius_m is None else radius_m
    if not (math.isfinite(radius) and 1 <= radius <= MAX_RADIUS_M):
        raise InvalidRadius(f"radius_m {radius_m} is not within 1…{MAX_RADIUS_M}")
    after = decode_cursor(cursor, float, uuid.UUID)
    conn = await db.raw_connection(session)
    rows = await repository.public_near(
        conn, lat=lat, lng=lng, radius_m=radius, **filters, after=after, limit=limit + 1
    )
    result = page(rows, limit, lambda r: [r["distance_m"], r["id"]])
    return Page[PublicScene](
        items=[_public(r, distance_m=round(r["distance_m"])) for r in result["items"]],
        next_cursor=result["next_cursor"],
    )


async def public_get(session: AsyncSession, scene_id: uuid.UUID) -> PublicScene:
    row = await repository.public_one(await db.raw_connection(session), scene_id)
    if row is None:
        raise SceneNotFound()
    return _public(row)


# --- what batch ingestion asks (points) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SceneState:
    """A scene as ingestion checks a record made there: its status and the behaviour types it records."""

    id: uuid.UUID
    status: str
    behaviour_types: list[str] | None

    def accepts(self, behaviour_type: str) -> bool:
        """Whether a record of ``behaviour_type`` made here counts: the scene is approved and records it."""
        return self.status == SceneStatus.approved and behaviour_type in (self.behaviour_types or ())


async def scene_states(session: AsyncSession, scene_ids: Collection[uuid.UUID]) -> list[SceneState]:
    """These scenes (those that exist), one statement on the transaction's connection."""
    rows = await repository.scene_states(await db.raw_connection(session), list(scene_ids))
    return [SceneState(r["id"], r["status"], r["behaviour_types"]) for r in rows]


# --- the authority's queues -----------------------------------------------------------------


async def queue_counts(session: AsyncSession) -> dict[str, int]:
    """Scenes by status, with ``change_submitted`` / ``change_under_review`` for proposed changes."""
    counts = await repository.count_by_status(session)
    changes = await repository.count_changes_by_status(session)
    counts["change_submitted"] = changes.get(ChangeStatus.submitted, 0)
    counts["change_under_review"] = changes.get(ChangeStatus.under_review, 0)
    return counts


async def with_changes_waiting(session: AsyncSession, *, limit: int = 100) -> list[SceneRead]:
    """Approved scenes whose proposed change awaits a panel or a decision, oldest change first."""
    scenes = await repository.scenes_with_change(
        session, [ChangeStatus.submitted, ChangeStatus.under_review], limit
    )
    return await _views(session, scenes)
