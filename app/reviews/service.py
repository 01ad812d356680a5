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
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.core import audit, clock
from app.core.pagination import Page, page
from app.experts import service as experts_service
from app.experts.service import normalise_affiliation
from app.reviews import repository
from app.reviews.draw import ALGORITHM, draw
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
    ReviewNotPassed,
    SubjectManagedElsewhere,
)
from app.reviews.models import PanelMember, PanelStatus, ReviewPanel, Verdict
from app.reviews.schemas import DeclarationRead, DrawRecord, MemberRead, PanelOpen, PanelRead


@dataclass(frozen=True)
class PanelDecision:
    """What a subject domain's hook learns of the decision on its subject."""

    id: uuid.UUID
    subject_type: str
    subject_id: str
    outcome: str
    reason: str

    @property
    def passed(self) -> bool:
        return self.outcome == Verdict.passed


DecisionHook = Callable[[AsyncSession, Principal, PanelDecision], Awaitable[None]]
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
) -> ReviewPanel:
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

    if await repository.open_panel_of(session, subject_type, subject_id) is not None:
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
        await repository.insert_panel(session, panel)
    except IntegrityError as exc:
        raise PanelAlreadyOpen(f"{subject_type} {subject_id} already has an open panel") from exc
    await repository.insert_members(session, panel.id, [uuid.UUID(eid) for eid in chosen])
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


async def open_from_request(session: AsyncSession, principal: Principal, data: PanelOpen) -> PanelRead:
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


async def get(session: AsyncSession, panel_id: uuid.UUID, *, lock: str | None = None) -> ReviewPanel:
    """The panel; ``lock``: ``"update"`` or ``"share"`` locks its row."""
    panel = await repository.get(session, panel_id, lock=lock)
    if panel is None:
        raise ReviewNotFound()
    return panel


async def _caller_expert_id(session: AsyncSession, principal: Principal) -> uuid.UUID | None:
    if principal.role != "expert":
        return None
    expert = await experts_service.for_staff_user(session, principal.subject)
    return expert.id if expert else None


def _member(m: PanelMember, name: str, *, with_opinion: bool) -> MemberRead:
    if not with_opinion:
        return MemberRead(
            expert_id=m.expert_id, name=name, position=m.position, submitted=m.submitted_at is not None
        )
    declaration = parse_declaration(m.declaration) if m.declared_at is not None else None
    return MemberRead(
        expert_id=m.expert_id,
        name=name,
        position=m.position,
        submitted=m.submitted_at is not None,
        verdict=m.verdict,
        score=m.score,
        text=m.text,
        submitted_at=m.submitted_at,
        declared_at=m.declared_at,
        conflict_declared=None if declaration is None else declaration[0],
        declaration_note=None if declaration is None else declaration[1],
    )


async def _views(session: AsyncSession, principal: Principal, panels: list[ReviewPanel]) -> list[PanelRead]:
    """Panels as the caller may see them: the authority sees every opinion, a member only their own."""
    if not panels:
        return []
    by_panel = await repository.members(session, [p.id for p in panels])
    me = await _caller_expert_id(session, principal)
    sees_all = principal.role == "authority"
    names = await experts_service.names(session, list({m.expert_id for ms in by_panel.values() for m in ms}))
    out = []
    for panel in panels:
        members = by_panel[panel.id]
        if not sees_all and me not in {m.expert_id for m in members}:
            raise ReviewNotFound()
        shown = [
            _member(m, names.get(m.expert_id, ""), with_opinion=sees_all or m.expert_id == me)
            for m in members
        ]
        out.append(
            PanelRead(
                id=panel.id,
                subject_type=panel.subject_type,
                subject_id=panel.subject_id,
                field=panel.field,
                size=panel.size,
                quorum=panel.quorum,
                status=panel.status,
                opinions_in=sum(1 for m in members if m.submitted_at is not None),
                members=shown,
                outcome=panel.outcome,
                reason=panel.reason,
                opened_by=panel.opened_by,
                created_at=panel.created_at,
                decided_by=panel.decided_by,
                decided_at=panel.decided_at,
            )
        )
    return out


async def view(session: AsyncSession, principal: Principal, panel: ReviewPanel) -> PanelRead:
    return (await _views(session, principal, [panel]))[0]


async def read(session: AsyncSession, principal: Principal, panel_id: uuid.UUID) -> PanelRead:
    return await view(session, principal, await get(session, panel_id))


async def draw_record(session: AsyncSession, panel_id: uuid.UUID) -> DrawRecord:
    panel = await get(session, panel_id)
    return DrawRecord(
        panel_id=panel.id,
        subject_type=panel.subject_type,
        subject_id=panel.subject_id,
        field=panel.field,
        algorithm=panel.algorithm,
        seed=panel.seed,
        size=panel.size,
        candidates=panel.candidates,
        chosen=panel.chosen,
        excluded=panel.excluded,
        exclude_affiliations=panel.exclude_affiliations,
        created_at=panel.created_at,
    )


async def submit_opinion(
    session: AsyncSession, principal: Principal, panel_id: uuid.UUID, *, verdict: str, score: int, text: str
) -> PanelRead:
    """One opinion per member, once. The panel row is share-locked so a decision cannot slip between."""
    panel = await get(session, panel_id, lock="share")
    me = await _caller_expert_id(session, principal)
    if me is None:
        raise NotOnPanel("your account is not linked to an expert of the pool")
    if panel.status != PanelStatus.open:
        raise PanelClosed("the panel has been decided; opinions are closed")
    member = await repository.member(session, panel_id, me)
    if member is None:
        raise NotOnPanel()
    if member.submitted_at is None:
        _require_no_conflict(member)
    recorded = await repository.record_opinion(
        session, panel_id, me, verdict=verdict, score=score, text=text, at=clock.now()
    )
    if not recorded:
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
) -> PanelRead:
    """The authority's decision, once the quorum of opinions is in; the subject's hook runs with it."""
    panel = await get(session, panel_id, lock="update")
    if panel.status != PanelStatus.open:
        raise PanelClosed(f"the panel was already decided: {panel.outcome}")
    members = (await repository.members(session, [panel_id]))[panel_id]
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
        decision = PanelDecision(panel.id, panel.subject_type, panel.subject_id, outcome, reason)
        await hook(session, principal, decision)
    return await view(session, principal, panel)


@dataclass(frozen=True)
class PanelProgress:
    """How far a review has come, as the applicant may follow it: no expert is named, no opinion shown."""

    id: uuid.UUID
    size: int
    quorum: int
    opinions_in: int
    status: str
    outcome: str | None
    reason: str | None
    opened_at: datetime
    decided_at: datetime | None


async def progress(session: AsyncSession, panel_id: uuid.UUID) -> PanelProgress:
    """The panel's progress for the applicant (scene operators follow their scene's review with it)."""
    panel = await get(session, panel_id)
    members = (await repository.members(session, [panel_id]))[panel_id]
    return PanelProgress(
        id=panel.id,
        size=panel.size,
        quorum=panel.quorum,
        opinions_in=sum(1 for m in members if m.submitted_at is not None),
        status=panel.status,
        outcome=panel.outcome,
        reason=panel.reason,
        opened_at=panel.created_at,
        decided_at=panel.decided_at,
    )


async def latest_panel(session: AsyncSession, subject_type: str, subject_id: str) -> ReviewPanel | None:
    return await repository.latest_panel(session, subject_type, subject_id)


async def require_passed(session: AsyncSession, subject_type: str, subject_id: str) -> None:
    """Raise ``review_not_passed`` (409) unless the subject's latest panel was decided "pass"."""
    panel = await latest_panel(session, subject_type, subject_id)
    if panel is None:
        raise ReviewNotPassed(f"{subject_type} {subject_id} has not been reviewed by an expert panel")
    if panel.status != PanelStatus.decided:
        raise ReviewNotPassed(f"the expert review of {subject_type} {subject_id} is still open")
    if panel.outcome != Verdict.passed:
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
) -> Page[PanelRead]:
    me = None
    if principal.role == "expert" or mine:
        me = await _caller_expert_id(session, principal)
        if me is None:
            raise NotAnExpert()
    panels = await repository.page(
        session,
        member_id=me,
        subject_type=subject_type,
        subject_id=subject_id,
        status=status,
        cursor=cursor,
        limit=limit,
    )
    result = page(panels, limit, lambda p: [p.created_at, p.id])
    items = await _views(session, principal, result["items"])
    return Page[PanelRead](items=items, next_cursor=result["next_cursor"])


# --- the expert's declaration of interests ---------------------------------------------------
#
# Before an expert sees a subject's documents they declare whether they have a conflict of interest
# with the subject or its owner. The answer is kept in the member's row: ``declared_at`` (when) and
# ``declaration``, a marker — ``no_conflict`` or ``conflict`` — followed, after a newline, by the
# expert's optional note. ``declared_at`` null: not declared yet. An expert who declares a conflict
# stands aside: they never see the documents nor give an opinion, and the authority sees the
# declaration on the panel (and in the audit log) to draw a replacement.

NO_CONFLICT, CONFLICT = "no_conflict", "conflict"


def parse_declaration(text: str | None) -> tuple[bool, str]:
    """``(conflict, note)`` of a stored declaration."""
    marker, _, note = (text or "").partition("\n")
    return marker != NO_CONFLICT, note


def _require_no_conflict(member: PanelMember) -> None:
    if member.declared_at is None:
        raise DeclarationRequired(
            "declare whether you have a conflict of interest first: POST /v1/reviews/{id}/declaration"
        )
    if parse_declaration(member.declaration)[0]:
        raise DeclarationRequired(
            "you declared a conflict of interest with this subject", code="conflict_declared"
        )


async def _my_membership(
    session: AsyncSession, principal: Principal, panel_id: uuid.UUID
) -> tuple[ReviewPanel, PanelMember]:
    """The panel and the caller's seat on it; anyone not on it: ``not_on_panel``."""
    panel = await get(session, panel_id, lock="share")
    me = await _caller_expert_id(session, principal)
    member = None if me is None else await repository.member(session, panel_id, me)
    if member is None:
        raise NotOnPanel()
    return panel, member


async def declare(
    session: AsyncSession, principal: Principal, panel_id: uuid.UUID, *, conflict: bool, note: str
) -> DeclarationRead:
    """The member's declaration of interests, once, while the panel is open."""
    panel, member = await _my_membership(session, principal, panel_id)
    if panel.status != PanelStatus.open:
        raise PanelClosed("the panel has been decided")
    if member.declared_at is not None:
        raise AlreadyDeclared()
    note = note.strip()
    text = (CONFLICT if conflict else NO_CONFLICT) + (f"\n{note}" if note else "")
    now = clock.now()
    if not await repository.record_declaration(session, panel_id, member.expert_id, declaration=text, at=now):
        raise AlreadyDeclared()
    audit.record(
        session,
        actor=principal.actor,
        action="review.conflict_declared" if conflict else "review.no_conflict_declared",
        subject_type="review_panel",
        subject_id=panel_id,
        data={"expert_id": str(member.expert_id), "conflict": conflict, "note": note},
    )
    return DeclarationRead(
        panel_id=panel_id, expert_id=member.expert_id, conflict=conflict, note=note, declared_at=now
    )


# --- what a panel reviews, as its domain describes it ----------------------------------------


@dataclass(frozen=True)
class Subject:
    """A panel's subject as its domain describes it to the experts: the name and the owner's name (all
    an expert sees before declaring) and the domain's own read model of its documents."""

    type: str
    id: str
    name: str
    owner: str | None
    documents: Any = None


SubjectDescriber = Callable[[AsyncSession, str], Awaitable[Subject]]
_subjects: dict[str, SubjectDescriber] = {}


def describes(subject_type: str) -> Callable[[SubjectDescriber], SubjectDescriber]:
    """Register how the subject domain describes one of its subjects to a panel."""

    def register(fn: SubjectDescriber) -> SubjectDescriber:
        _subjects[subject_type] = fn
        return fn

    return register


async def describe(session: AsyncSession, subject_type: str, subject_id: str) -> Subject:
    """The subject; a type no domain describes (a panel opened on any subject): its id, no documents."""
    describer = _subjects.get(subject_type)
    if describer is None:
        return Subject(subject_type, subject_id, subject_id, None)
    return await describer(session, subject_id)


# --- the expert's workspace --------------------------------------------------------------------


@dataclass(frozen=True)
class ExpertPanel:
    """A panel as one of its experts sees it: the panel (with only their own opinion), their seat,
    and the subject — without its documents until they declared no conflict of interest."""

    panel: PanelRead
    me: MemberRead
    subject: Subject

    @property
    def declared(self) -> bool:
        return self.me.declared_at is not None

    @property
    def conflict(self) -> bool:
        return bool(self.me.conflict_declared)


async def _expert_panel(
    session: AsyncSession, principal: Principal, panel: PanelRead, *, documents: bool
) -> ExpertPanel:
    me = await _caller_expert_id(session, principal)
    mine = next(m for m in panel.members if m.expert_id == me)
    if documents and mine.declared_at is None:
        raise DeclarationRequired()
    if documents and mine.conflict_declared:
        raise DeclarationRequired("you declared a conflict of interest", code="conflict_declared")
    subject = await describe(session, panel.subject_type, panel.subject_id)
    if not documents:
        subject = Subject(subject.type, subject.id, subject.name, subject.owner)
    return ExpertPanel(panel, mine, subject)


@dataclass(frozen=True)
class ExpertPanels:
    items: list[ExpertPanel]
    next_cursor: str | None


async def expert_panels(
    session: AsyncSession, principal: Principal, *, status: str, limit: int, cursor: str | None
) -> ExpertPanels:
    """The caller's panels of one status, newest first, each with its subject's name (no documents)."""
    result = await list_(
        session,
        principal,
        mine=True,
        subject_type=None,
        subject_id=None,
        status=status,
        limit=limit,
        cursor=cursor,
    )
    items = [await _expert_panel(session, principal, p, documents=False) for p in result.items]
    return ExpertPanels(items, result.next_cursor)


async def expert_panel(
    session: AsyncSession, principal: Principal, panel_id: uuid.UUID, *, documents: bool
) -> ExpertPanel:
    """One of the caller's panels (anyone else's: ``review_not_found``). With ``documents``, the subject's
    documents too — refused with ``declaration_required`` until the expert declared no conflict
    (``conflict_declared`` after declaring one)."""
    return await _expert_panel(
        session, principal, await read(session, principal, panel_id), documents=documents
    )
