"""Review panels, one mechanism for every subject (scene applications, methodology versions, CER…).

The authority draws N active experts of a field at random (:mod:`app.reviews.draw`), never one
affiliated with the applicant or excluded explicitly; the seed, the sorted candidate list and the
algorithm are stored, so anyone can re-run the draw. Each member gives one opinion; the authority
decides once the quorum (default: everyone) is in. Subject domains either check the outcome with
:func:`require_passed` or register a hook (:func:`on_decision`) that reacts to the decision in the
same transaction.
"""

import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth.principal import Principal
from app.core import audit, clock
from app.core.pagination import keyset, page
from app.experts import service as experts_service
from app.experts.service import normalise_affiliation
from app.reviews.draw import ALGORITHM, draw
from app.reviews.exceptions import (
    InvalidPanel,
    NotAnExpert,
    NotEnoughExperts,
    NotOnPanel,
    OpinionAlreadySubmitted,
    OpinionsMissing,
    PanelAlreadyOpen,
    PanelClosed,
    ReviewNotFound,
    ReviewNotPassed,
    SubjectManagedElsewhere,
)
from app.reviews.models import PanelMember, PanelStatus, ReviewPanel
from app.reviews.schemas import PanelOpen

Panel = ReviewPanel
DecisionHook = Callable[[AsyncSession, Principal, ReviewPanel], Awaitable[None]]
_hooks: dict[str, DecisionHook] = {}


def on_decision(subject_type: str) -> Callable[[DecisionHook], DecisionHook]:
    """Register the subject domain's reaction to a decision (runs in the deciding transaction)."""

    def register(fn: DecisionHook) -> DecisionHook:
        _hooks[subject_type] = fn
        return fn

    return register


def _exclusions(values: set[str]) -> tuple[set[uuid.UUID], set[str]]:
    org_ids: set[uuid.UUID] = set()
    names: set[str] = set()
    for value in values:
        try:
            org_ids.add(uuid.UUID(value.strip()))
            continue
        except ValueError:
            pass
        norm = normalise_affiliation(value)
        if norm:
            names.add(norm)
    return org_ids, names


async def open_panel(
    session: AsyncSession,
    principal: Principal,
    *,
    subject_type: str,
    subject_id: str,
    field: str,
    size: int,
    exclude_affiliations: set[str] | None = None,
    seed: str | None = None,
    quorum: int | None = None,
    exclude_experts: set[str] | None = None,
) -> Panel:
    """Draw ``size`` experts of ``field`` for the subject and open the panel.

    ``exclude_affiliations`` holds the applicant's organisation ids and/or names: experts affiliated
    with any of them (by org id, or by normalised name) are not eligible. ``exclude_experts`` are
    expert ids left out explicitly. Raises ``not_enough_experts`` (409) when fewer remain than ``size``.
    """
    experts_service.check_field(field)
    quorum = size if quorum is None else quorum
    if size < 1 or not 1 <= quorum <= size:
        raise InvalidPanel(f"a panel needs 1 ≤ quorum ≤ size (size {size}, quorum {quorum})")
    if seed is not None and not (1 <= len(seed) <= 200 and seed.isprintable()):
        raise InvalidPanel("the seed must be 1–200 printable characters")
    seed = seed or secrets.token_hex(16)
    affiliations = sorted(a.strip() for a in (exclude_affiliations or set()) if a and a.strip())
    org_ids, names = _exclusions(set(affiliations))
    explicit = {str(e).lower() for e in (exclude_experts or set())}

    pool = await experts_service.active_in_field(session, field)
    candidates: list[str] = []
    excluded: list[dict[str, str]] = []
    for expert in pool:
        eid = str(expert.id)
        if expert.affiliation_org_id in org_ids or expert.affiliation_norm in names:
            excluded.append({"expert_id": eid, "reason": "affiliated_with_applicant"})
        elif eid in explicit:
            excluded.append({"expert_id": eid, "reason": "excluded"})
        else:
            candidates.append(eid)
    candidates.sort()
    excluded.sort(key=lambda e: e["expert_id"])
    if len(candidates) < size:
        raise NotEnoughExperts(
            f"{len(candidates)} eligible experts in {field}, the panel needs {size}",
            eligible=len(candidates),
            needed=size,
        )
    chosen = draw(seed, candidates, size)

    if await _open_panel_of(session, subject_type, subject_id) is not None:
        raise PanelAlreadyOpen(f"{subject_type} {subject_id} already has an open panel")
    panel = ReviewPanel(
        subject_type=subject_type,
        subject_id=subject_id,
        field=field,
        size=size,
        quorum=quorum,
        seed=seed,
        algorithm=ALGORITHM,
        candidates=candidates,
        chosen=chosen,
        excluded=excluded,
        exclude_affiliations=affiliations,
        opened_by=principal.actor,
        created_at=clock.now(),
    )
    try:
        async with session.begin_nested():
            session.add(panel)
            await session.flush()
    except IntegrityError as exc:
        raise PanelAlreadyOpen(f"{subject_type} {subject_id} already has an open panel") from exc
    session.add_all(
        PanelMember(panel_id=panel.id, expert_id=uuid.UUID(eid), position=i)
        for i, eid in enumerate(chosen, 1)
    )
    await session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="review.panel_opened",
        subject_type="review_panel",
        subject_id=panel.id,
        data={
            "subject_type": subject_type,
            "subject_id": subject_id,
            "field": field,
            "size": size,
            "quorum": quorum,
            "algorithm": ALGORITHM,
            "seed": seed,
            "candidates": candidates,
            "chosen": chosen,
            "excluded": excluded,
            "exclude_affiliations": affiliations,
        },
    )
    return panel


async def open_from_request(session: AsyncSession, principal: Principal, data: PanelOpen) -> dict[str, Any]:
    if data.subject_type in _hooks:
        raise SubjectManagedElsewhere(
            f"open {data.subject_type} reviews through the {data.subject_type} routes"
        )
    panel = await open_panel(
        session,
        principal,
        subject_type=data.subject_type,
        subject_id=data.subject_id,
        field=data.field,
        size=data.size,
        quorum=data.quorum,
        exclude_affiliations=set(data.exclude_affiliations),
        exclude_experts={str(e) for e in data.exclude_experts},
        seed=data.seed,
    )
    return await view(session, principal, panel)


async def _open_panel_of(session: AsyncSession, subject_type: str, subject_id: str) -> ReviewPanel | None:
    return (
        await session.execute(
            select(ReviewPanel).where(
                ReviewPanel.subject_type == subject_type,
                ReviewPanel.subject_id == subject_id,
                ReviewPanel.status == PanelStatus.open,
            )
        )
    ).scalar_one_or_none()


async def get(session: AsyncSession, panel_id: uuid.UUID, *, lock: str | None = None) -> ReviewPanel:
    query = select(ReviewPanel).where(ReviewPanel.id == panel_id).execution_options(populate_existing=True)
    if lock == "update":
        query = query.with_for_update()
    elif lock == "share":
        query = query.with_for_update(read=True)
    panel = (await session.execute(query)).scalar_one_or_none()
    if panel is None:
        raise ReviewNotFound()
    return panel


async def _members(session: AsyncSession, panel_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[PanelMember]]:
    result = await session.execute(
        select(PanelMember)
        .where(col(PanelMember.panel_id).in_(panel_ids))
        .order_by(col(PanelMember.panel_id), col(PanelMember.position))
    )
    out: dict[uuid.UUID, list[PanelMember]] = {pid: [] for pid in panel_ids}
    for m in result.scalars():
        out[m.panel_id].append(m)
    return out


async def _caller_expert_id(session: AsyncSession, principal: Principal) -> uuid.UUID | None:
    if principal.role != "expert":
        return None
    expert = await experts_service.for_staff_user(session, principal.subject)
    return expert.id if expert else None


async def _views(
    session: AsyncSession, principal: Principal, panels: list[ReviewPanel]
) -> list[dict[str, Any]]:
    """Panels as the caller may see them: the authority sees every opinion, a member only their own."""
    if not panels:
        return []
    by_panel = await _members(session, [p.id for p in panels])
    me = await _caller_expert_id(session, principal)
    names = await experts_service.names(session, list({m.expert_id for ms in by_panel.values() for m in ms}))
    out = []
    for panel in panels:
        members = by_panel[panel.id]
        if principal.role != "authority" and me not in {m.expert_id for m in members}:
            raise ReviewNotFound()
        shown = []
        for m in members:
            item: dict[str, Any] = {
                "expert_id": m.expert_id,
                "name": names.get(m.expert_id, ""),
                "position": m.position,
                "submitted": m.submitted_at is not None,
            }
            if principal.role == "authority" or m.expert_id == me:
                item.update(verdict=m.verdict, score=m.score, text=m.text, submitted_at=m.submitted_at)
            shown.append(item)
        out.append(
            {
                "id": panel.id,
                "subject_type": panel.subject_type,
                "subject_id": panel.subject_id,
                "field": panel.field,
                "size": panel.size,
                "quorum": panel.quorum,
                "status": panel.status,
                "opinions_in": sum(1 for m in members if m.submitted_at is not None),
                "members": shown,
                "outcome": panel.outcome,
                "reason": panel.reason,
                "opened_by": panel.opened_by,
                "created_at": panel.created_at,
                "decided_by": panel.decided_by,
                "decided_at": panel.decided_at,
            }
        )
    return out


async def view(session: AsyncSession, principal: Principal, panel: ReviewPanel) -> dict[str, Any]:
    return (await _views(session, principal, [panel]))[0]


async def read(session: AsyncSession, principal: Principal, panel_id: uuid.UUID) -> dict[str, Any]:
    return await view(session, principal, await get(session, panel_id))


async def draw_record(session: AsyncSession, panel_id: uuid.UUID) -> dict[str, Any]:
    panel = await get(session, panel_id)
    return {
        "panel_id": panel.id,
        "subject_type": panel.subject_type,
        "subject_id": panel.subject_id,
        "field": panel.field,
        "algorithm": panel.algorithm,
        "seed": panel.seed,
        "size": panel.size,
        "candidates": panel.candidates,
        "chosen": panel.chosen,
        "excluded": panel.excluded,
        "exclude_affiliations": panel.exclude_affiliations,
        "created_at": panel.created_at,
    }


async def submit_opinion(
    session: AsyncSession, principal: Principal, panel_id: uuid.UUID, *, verdict: str, score: int, text: str
) -> dict[str, Any]:
    """One opinion per member, once. The panel row is share-locked so a decision cannot slip between."""
    panel = await get(session, panel_id, lock="share")
    me = await _caller_expert_id(session, principal)
    if me is None:
        raise NotOnPanel("your account is not linked to an expert of the pool")
    if panel.status != PanelStatus.open:
        raise PanelClosed("the panel has been decided; opinions are closed")
    result = await session.execute(
        sa.update(PanelMember)
        .where(
            PanelMember.panel_id == panel_id,
            PanelMember.expert_id == me,
            col(PanelMember.submitted_at).is_(None),
        )
        .values(verdict=verdict, score=score, text=text, submitted_at=clock.now())
        .returning(PanelMember.expert_id)
    )
    if result.first() is None:
        member = await session.get(PanelMember, (panel_id, me))
        if member is None:
            raise NotOnPanel()
        raise OpinionAlreadySubmitted()
    audit.record(
        session,
        actor=principal.actor,
        action="review.opinion_submitted",
        subject_type="review_panel",
        subject_id=panel_id,
        data={"expert_id": str(me), "verdict": verdict, "score": score, "text": text},
    )
    return await view(session, principal, panel)


async def decide(
    session: AsyncSession, principal: Principal, panel_id: uuid.UUID, *, outcome: str, reason: str
) -> dict[str, Any]:
    """The authority's decision, once the quorum of opinions is in; the subject's hook runs with it."""
    panel = await get(session, panel_id, lock="update")
    if panel.status != PanelStatus.open:
        raise PanelClosed(f"the panel was already decided: {panel.outcome}")
    members = (await _members(session, [panel_id]))[panel_id]
    opinions = [m for m in members if m.submitted_at is not None]
    if len(opinions) < panel.quorum:
        raise OpinionsMissing(
            f"{len(opinions)} of {panel.quorum} opinions are in",
            opinions_in=len(opinions),
            quorum=panel.quorum,
        )
    panel.status = PanelStatus.decided
    panel.outcome = outcome
    panel.reason = reason
    panel.decided_by = principal.actor
    panel.decided_at = clock.now()
    await session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="review.decided",
        subject_type="review_panel",
        subject_id=panel.id,
        data={
            "subject_type": panel.subject_type,
            "subject_id": panel.subject_id,
            "outcome": outcome,
            "reason": reason,
            "opinions": [
                {"expert_id": str(m.expert_id), "verdict": m.verdict, "score": m.score} for m in opinions
            ],
        },
    )
    hook = _hooks.get(panel.subject_type)
    if hook is not None:
        await hook(session, principal, panel)
    return await view(session, principal, panel)


async def latest_panel(session: AsyncSession, subject_type: str, subject_id: str) -> ReviewPanel | None:
    return (
        await session.execute(
            select(ReviewPanel)
            .where(ReviewPanel.subject_type == subject_type, ReviewPanel.subject_id == subject_id)
            .order_by(col(ReviewPanel.created_at).desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def require_passed(session: AsyncSession, subject_type: str, subject_id: str) -> None:
    """Raise ``review_not_passed`` (409) unless the subject's latest panel was decided "pass"."""
    panel = await latest_panel(session, subject_type, subject_id)
    if panel is None:
        raise ReviewNotPassed(f"{subject_type} {subject_id} has not been reviewed by an expert panel")
    if panel.status != PanelStatus.decided:
        raise ReviewNotPassed(f"the expert review of {subject_type} {subject_id} is still open")
    if panel.outcome != "pass":
        raise ReviewNotPassed(f"the expert review of {subject_type} {subject_id} failed: {panel.reason}")


async def list_(
    session: AsyncSession,
    principal: Principal,
    *,
    mine: bool,
    subject_type: str | None,
    subject_id: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    query = select(ReviewPanel)
    if principal.role == "expert" or mine:
        me = await _caller_expert_id(session, principal)
        if me is None:
            raise NotAnExpert()
        query = query.join(PanelMember, PanelMember.panel_id == ReviewPanel.id).where(
            PanelMember.expert_id == me
        )
    if subject_type:
        query = query.where(ReviewPanel.subject_type == subject_type)
    if subject_id:
        query = query.where(ReviewPanel.subject_id == subject_id)
    if status:
        query = query.where(ReviewPanel.status == status)
    query = keyset(query, cursor, (ReviewPanel.created_at, datetime), (ReviewPanel.id, uuid.UUID), descending=True)
    panels = list((await session.execute(query.limit(limit + 1))).scalars())
    result = page(panels, limit, lambda p: [p.created_at, p.id])
    result["items"] = await _views(session, principal, result["items"])
    return result
