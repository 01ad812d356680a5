"""CER projects (SZ 15–17, JX 12–17, HB 11): aggregation, publicity, verification, review, filing.

Lifecycle: publicity (from creation, ≥ 7 working days; objections filed and answered) → submitted
(by the owner, once the publicity is over and every objection answered) → verification (the
authority assigns a verifier that neither owns nor compiled the report) → verified (the verifier's
figure, ≤ claimed) → under_review (an expert panel of the field "verification") → reviewed |
rejected (the panel's decision, through the hook at the bottom) → filed | rejected (the
authority's filing decision, which needs the review passed) → issued (:mod:`app.cer.registry`).
Any project can be frozen by a clawback (JX 26).

Design choices:
- a project covers a period that is over (its last day before today) and aggregates, set-based
  and once, the owner's records of that period for its methodology codes;
- a second project of the same owner whose period and methodology codes overlap an earlier
  one's is refused (``overlapping_project``), whatever became of the earlier one: records stay in
  the project they were first counted in, so a late record of an already covered period is never
  counted (conservative, JX 28);
- the report is recomputed from the stored membership and the rules recorded with the project,
  so its SHA-256 can be checked at any time (``GET /v1/cer/projects/{id}/report``).
"""

import hashlib
import json
import uuid
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.cer import calendar, repository
from app.cer.exceptions import (
    InvalidDocumentLink,
    InvalidPeriod,
    InvalidProjectState,
    NoEligibleRecords,
    NotAssignedVerifier,
    NotAVerifier,
    NotFiled,
    NotOwner,
    ObjectionAlreadyAnswered,
    ObjectionNotFound,
    ObjectionsUnanswered,
    OverlappingProject,
    ProjectNotFound,
    PublicityClosed,
    PublicityNotOver,
    SelfVerification,
    UnknownMethodology,
    UnknownOrganization,
    VerifiedExceedsClaimed,
)
from app.cer.models import CerObjection, CerProject, ProjectStatus, Publicity
from app.cer.schemas import (
    ObjectionCreate,
    ObjectionRead,
    ProjectCreate,
    ProjectRead,
    ReportCheck,
    ReviewOpen,
    VerificationIn,
)
from app.core import audit, clock, db
from app.core.config import get_settings
from app.core.pagination import Page, decode_cursor, page
from app.methodologies import service as methodologies_service
from app.organizations import service as org_service
from app.organizations.exceptions import OrganizationNotFound
from app.reviews import service as reviews_service
from app.reviews.schemas import PanelRead
from app.webhooks import service as webhooks_service

SUBJECT_TYPE = "cer_project"
EARLIEST_PERIOD_START = date(2000, 1, 1)
REVIEW_FIELD = "verification"


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_of(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


def local_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=clock.zone())


# --- reading --------------------------------------------------------------------------------


async def get(
    session: AsyncSession, project_id: uuid.UUID, *, principal: Principal | None = None, lock: bool = False
) -> CerProject:
    """The project; with ``principal``, only if the caller may act on it (authority, owner, its verifier)."""
    project = await repository.project(session, project_id, lock=lock)
    if project is None:
        raise ProjectNotFound()
    if (
        principal is not None
        and principal.role != "authority"
        and principal.org_id
        not in (
            project.owner_org_id,
            project.verifier_org_id,
        )
    ):
        raise ProjectNotFound()
    return project


def publicity_state(project: CerProject, today: date) -> Publicity:
    in_progress = project.status == ProjectStatus.publicity and today <= project.publicity_ends_on
    return Publicity.in_progress if in_progress else Publicity.ended


async def views(session: AsyncSession, projects: list[CerProject]) -> list[ProjectRead]:
    ids = [p.id for p in projects]
    names = await org_service.names(session, [p.owner_org_id for p in projects])
    objections = await repository.objection_counts(session, ids)
    issued = await repository.issued_tonnes(session, ids)
    today = clock.today()
    out = []
    for p in projects:
        total, unanswered = objections.get(p.id, (0, 0))
        out.append(
            ProjectRead.model_validate(
                {
                    **p.model_dump(),
                    "owner_name": names.get(p.owner_org_id, ""),
                    "publicity": publicity_state(p, today),
                    "objections": total,
                    "objections_unanswered": unanswered,
                    "issued_tonnes": issued.get(p.id),
                }
            )
        )
    return out


async def view(session: AsyncSession, project: CerProject) -> ProjectRead:
    return (await views(session, [project]))[0]


async def read(session: AsyncSession, principal: Principal | None, project_id: uuid.UUID) -> ProjectRead:
    return await view(session, await get(session, project_id, principal=principal))


async def list_(
    session: AsyncSession,
    principal: Principal | None,
    *,
    status: str | None,
    owner_org_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
) -> Page[ProjectRead]:
    """Newest first. ``principal`` None: the public list (every project is public from its publicity on)."""
    party = principal.org_id if principal is not None and principal.role != "authority" else None
    rows = await repository.projects_page(
        session,
        party=party,
        status=status,
        owner_org_id=owner_org_id,
        after=decode_cursor(cursor, datetime, uuid.UUID),
        limit=limit,
    )
    result = page(rows, limit, lambda p: [p.created_at, p.id])
    return Page[ProjectRead](items=await views(session, result["items"]), next_cursor=result["next_cursor"])


# --- creation and the report ----------------------------------------------------------------


async def _approved_org(session: AsyncSession, org_id: uuid.UUID) -> Any:
    try:
        org = await org_service.get(session, org_id)
    except OrganizationNotFound as exc:
        raise UnknownOrganization(f"no organisation {org_id}") from exc
    if org.status != "approved":
        raise UnknownOrganization(f"the organisation {org_id} is {org.status}")
    return org


async def _compute_report(session: AsyncSession, project: CerProject) -> dict[str, Any]:
    """The report (the JSON document its SHA-256 is over), from the stored membership and the
    rules the project was built with."""
    rules = {k: project.exclusions[k] for k in ("cutoff_date", "region_code", "timezone")}
    counts = await repository.report_counts(await db.raw_connection(session), project.id, rules["timezone"])
    by_version = {v.methodology_version_id: v for v in counts.by_version}
    versions = await methodologies_service.versions_by_id(session, list(by_version))  # by code, version
    return {
        "project_id": str(project.id),
        "owner_org_id": str(project.owner_org_id),
        "methodology_codes": list(project.methodology_codes),
        "period_start": project.period_start.isoformat(),
        "period_end": project.period_end.isoformat(),
        "rules": rules,
        "totals": {"records": counts.records, "reduction_g": counts.reduction_g, "users": counts.users},
        "by_methodology_version": [
            {
                "methodology_version_id": str(m.id),
                "code": m.code,
                "version": int(m.version),
                "behaviour_type": m.behaviour_type,
                "records": by_version[m.id].records,
                "reduction_g": by_version[m.id].reduction_g,
            }
            for m in versions
        ],
        "by_month": [
            {"month": m.month, "records": m.records, "reduction_g": m.reduction_g} for m in counts.by_month
        ],
    }


async def create(session: AsyncSession, principal: Principal, data: ProjectCreate) -> ProjectRead:
    owner_id = principal.org_id
    assert owner_id is not None
    codes = sorted({c.strip() for c in data.methodology_codes if c.strip()})
    today = clock.today()
    if not codes:
        raise UnknownMethodology("name at least one methodology code")
    if data.period_start > data.period_end:
        raise InvalidPeriod("period_start is after period_end")
    if data.period_start < EARLIEST_PERIOD_START:
        raise InvalidPeriod(f"a period starts on {EARLIEST_PERIOD_START} or later")
    if data.period_end >= today:
        raise InvalidPeriod(f"a project covers a period that is over: its last day must be before {today}")
    versions = await methodologies_service.versions_by_code(session, codes)
    known = {v.code for v in versions if v.status in methodologies_service.PUBLIC_STATUSES}
    unknown = sorted(set(codes) - known)
    if unknown:
        raise UnknownMethodology(f"no published methodology has the code {', '.join(unknown)}", codes=unknown)
    if data.compiled_by_org_id is not None:
        await _approved_org(session, data.compiled_by_org_id)

    await repository.lock_owner(session, owner_id)
    overlapping = await repository.overlapping_projects(
        session, owner_id, codes, data.period_start, data.period_end
    )
    if overlapping:
        raise OverlappingProject(
            "a project of yours already covers part of this period for these methodologies",
            projects=[str(p) for p in overlapping],
        )
    settings = get_settings()
    overrides = await repository.calendar_overrides(session, *calendar.span_for_publicity(today))
    now = clock.now()
    project = CerProject(
        owner_org_id=owner_id,
        name=data.name,
        description=data.description,
        benefit_sharing=data.benefit_sharing,
        methodology_codes=codes,
        period_start=data.period_start,
        period_end=data.period_end,
        compiled_by_org_id=data.compiled_by_org_id,
        record_count=0,
        claimed_g=0,
        report={},
        report_sha256="",
        exclusions={
            "cutoff_date": settings.cer_cutoff_date.isoformat(),
            "region_code": settings.region_code,
            "timezone": settings.timezone,
        },
        publicity_starts_on=today,
        publicity_ends_on=calendar.publicity_end(today, overrides),
        created_at=now,
        updated_at=now,
    )
    await repository.add(session, project)
    counts = await repository.aggregate(
        await db.raw_connection(session),
        project.id,
        owner_id,
        [v.id for v in versions],
        local_midnight(data.period_start),
        local_midnight(data.period_end + timedelta(days=1)),
        local_midnight(settings.cer_cutoff_date),
        settings.region_code,
    )
    if counts.included == 0:
        raise NoEligibleRecords(
            "none of your records of the period is eligible",
            candidates=counts.candidates,
            before_cutoff=counts.before_cutoff,
            outside_region=counts.outside_region,
            included=counts.included,
            in_other_projects=counts.in_other_projects,
        )
    report = await _compute_report(session, project)
    project.exclusions = {**project.exclusions, **asdict(counts)}
    project.report = report
    project.report_sha256 = sha256_of(report)
    project.record_count = report["totals"]["records"]
    project.claimed_g = report["totals"]["reduction_g"]
    await session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="cer.project_created",
        subject_type=SUBJECT_TYPE,
        subject_id=project.id,
        data={
            "codes": codes,
            "period": [data.period_start, data.period_end],
            "records": project.record_count,
            "claimed_g": project.claimed_g,
            "report_sha256": project.report_sha256,
            "exclusions": project.exclusions,
            "publicity_ends_on": project.publicity_ends_on,
        },
    )
    return await view(session, project)


async def check_report(
    session: AsyncSession, principal: Principal | None, project_id: uuid.UUID
) -> ReportCheck:
    project = await get(session, project_id, principal=principal)
    report = await _compute_report(session, project)
    recomputed = sha256_of(report)
    return ReportCheck.model_validate(
        {
            "stored_sha256": project.report_sha256,
            "recomputed_sha256": recomputed,
            "match": recomputed == project.report_sha256,
            "report": report,
        }
    )


# --- publicity and objections ---------------------------------------------------------------


def _objection_view(o: CerObjection, *, private: bool) -> ObjectionRead:
    return ObjectionRead.model_validate({**o.model_dump(), "contact": o.contact if private else None})


async def file_objection(
    session: AsyncSession, project_id: uuid.UUID, data: ObjectionCreate, actor: str
) -> ObjectionRead:
    """Anyone may object while the project is in publicity."""
    project = await get(session, project_id)
    if publicity_state(project, clock.today()) != Publicity.in_progress:
        raise PublicityClosed(f"the publicity ended on {project.publicity_ends_on}")
    objection = CerObjection(
        project_id=project.id, name=data.name, contact=data.contact, text=data.text, filed_at=clock.now()
    )
    await repository.add(session, objection)
    audit.record(
        session,
        actor=actor,
        action="cer.objection_filed",
        subject_type=SUBJECT_TYPE,
        subject_id=project.id,
        data={"objection_id": str(objection.id)},
    )
    return _objection_view(objection, private=False)


async def list_objections(
    session: AsyncSession, principal: Principal | None, project_id: uuid.UUID
) -> list[ObjectionRead]:
    project = await get(session, project_id, principal=principal)
    private = principal is not None and principal.role in ("authority", "operator")
    return [_objection_view(o, private=private) for o in await repository.objections(session, project.id)]


async def public_project(
    session: AsyncSession, project_id: uuid.UUID
) -> tuple[ProjectRead, list[ObjectionRead]]:
    """A project as the public sees it, with its objections and the owner's answers (no contacts)."""
    project = await get(session, project_id)
    objections = [_objection_view(o, private=False) for o in await repository.objections(session, project.id)]
    return await view(session, project), objections


def _require_owner(principal: Principal, project: CerProject) -> None:
    if principal.org_id != project.owner_org_id:
        raise NotOwner()


async def answer_objection(
    session: AsyncSession, principal: Principal, project_id: uuid.UUID, objection_id: uuid.UUID, answer: str
) -> ObjectionRead:
    project = await get(session, project_id, principal=principal)
    _require_owner(principal, project)
    objection = await repository.answer_objection(
        session, project.id, objection_id, answer, principal.actor, clock.now()
    )
    if objection is None:
        existing = await repository.objection(session, objection_id)
        if existing is None or existing.project_id != project.id:
            raise ObjectionNotFound()
        raise ObjectionAlreadyAnswered()
    audit.record(
        session,
        actor=principal.actor,
        action="cer.objection_answered",
        subject_type=SUBJECT_TYPE,
        subject_id=project.id,
        data={"objection_id": str(objection_id), "answer": answer},
    )
    return _objection_view(objection, private=True)


# --- submission, verification, review, filing -----------------------------------------------


def _require_state(project: CerProject, *states: str) -> None:
    if project.status not in states:
        raise InvalidProjectState(
            f"the project is {project.status}; this needs it {' or '.join(states)}", status_now=project.status
        )


def _touch(project: CerProject, **changes: Any) -> None:
    for key, value in changes.items():
        setattr(project, key, value)
    project.updated_at = clock.now()


async def stage_changed(session: AsyncSession, project: CerProject, previous: str) -> None:
    """``cer_project.stage_changed`` to the project's owner, and to its verifier once one is assigned."""
    payload = {
        "project_id": project.id,
        "name": project.name,
        "from": str(previous),
        "to": str(project.status),
        "verifier_org_id": project.verifier_org_id,
        "reason": project.decision_reason if project.status == ProjectStatus.rejected else None,
        "changed_at": project.updated_at,
    }
    recipients = [project.owner_org_id, *([project.verifier_org_id] if project.verifier_org_id else [])]
    await webhooks_service.emit_all(
        session,
        [
            webhooks_service.Emission(
                org, "cer_project.stage_changed", SUBJECT_TYPE, str(project.id), payload
            )
            for org in recipients
        ],
    )


async def submit(session: AsyncSession, principal: Principal, project_id: uuid.UUID) -> ProjectRead:
    project = await get(session, project_id, principal=principal, lock=True)
    _require_owner(principal, project)
    _require_state(project, ProjectStatus.publicity)
    if clock.today() <= project.publicity_ends_on:
        raise PublicityNotOver(f"the publicity lasts until {project.publicity_ends_on} included")
    unanswered = (await repository.objection_counts(session, [project.id])).get(project.id, (0, 0))[1]
    if unanswered:
        raise ObjectionsUnanswered(f"{unanswered} objections await your answer", unanswered=unanswered)
    _touch(project, status=ProjectStatus.submitted, submitted_at=clock.now())
    await session.flush()
    await stage_changed(session, project, ProjectStatus.publicity)
    audit.record(
        session,
        actor=principal.actor,
        action="cer.project_submitted",
        subject_type=SUBJECT_TYPE,
        subject_id=project.id,
        data={},
    )
    return await view(session, project)


async def assign_verifier(
    session: AsyncSession, principal: Principal, project_id: uuid.UUID, verifier_org_id: uuid.UUID
) -> ProjectRead:
    project = await get(session, project_id, lock=True)
    _require_state(project, ProjectStatus.submitted, ProjectStatus.verification)
    try:
        org = await org_service.get(session, verifier_org_id)
    except OrganizationNotFound as exc:
        raise NotAVerifier(f"no organisation {verifier_org_id}") from exc
    if org.kind != "verifier" or org.status != "approved":
        raise NotAVerifier(f"{org.name} is a {org.status} {org.kind}, not an approved verifier")
    if org.id == project.owner_org_id:
        raise SelfVerification("the project owner cannot verify its own project")
    if org.id == project.compiled_by_org_id:
        raise SelfVerification("this verifier compiled the project's report (JX 15)")
    previous = project.status
    _touch(
        project, status=ProjectStatus.verification, verifier_org_id=org.id, verifier_assigned_at=clock.now()
    )
    await session.flush()
    await stage_changed(session, project, previous)
    audit.record(
        session,
        actor=principal.actor,
        action="cer.verifier_assigned",
        subject_type=SUBJECT_TYPE,
        subject_id=project.id,
        data={"verifier_org_id": str(org.id)},
    )
    return await view(session, project)


def _check_links(links: list[str]) -> list[str]:
    for link in links:
        parts = urlsplit(link)
        if parts.scheme not in ("http", "https") or not parts.netloc or len(link) > 2000:
            raise InvalidDocumentLink(f"{link!r} is not an http(s) URL")
    return links


async def record_verification(
    session: AsyncSession, principal: Principal, project_id: uuid.UUID, data: VerificationIn
) -> ProjectRead:
    project = await get(session, project_id, principal=principal, lock=True)
    if principal.org_id is None or principal.org_id != project.verifier_org_id:
        raise NotAssignedVerifier()
    _require_state(project, ProjectStatus.verification)
    if data.verified_g > project.claimed_g:
        raise VerifiedExceedsClaimed(
            f"{data.verified_g} g verified, {project.claimed_g} g claimed", claimed_g=project.claimed_g
        )
    _touch(
        project,
        status=ProjectStatus.verified,
        verified_g=data.verified_g,
        verification_statement=data.statement,
        verification_documents=_check_links(data.documents),
        verified_at=clock.now(),
    )
    await session.flush()
    await stage_changed(session, project, ProjectStatus.verification)
    audit.record(
        session,
        actor=principal.actor,
        action="cer.project_verified",
        subject_type=SUBJECT_TYPE,
        subject_id=project.id,
        data={"verified_g": data.verified_g, "documents": data.documents},
    )
    return await view(session, project)


async def open_review(
    session: AsyncSession, principal: Principal, project_id: uuid.UUID, data: ReviewOpen
) -> PanelRead:
    project = await get(session, project_id, lock=True)
    _require_state(project, ProjectStatus.verified)
    involved = [project.owner_org_id, project.verifier_org_id, project.compiled_by_org_id]
    names = await org_service.names(session, involved)
    affiliations = {str(i) for i in involved if i} | set(names.values())
    panel = await reviews_service.open_panel(
        session,
        principal,
        subject_type=SUBJECT_TYPE,
        subject_id=str(project.id),
        field=REVIEW_FIELD,
        size=data.size,
        quorum=data.quorum,
        seed=data.seed,
        exclude_affiliations=affiliations,
        exclude_experts={str(e) for e in data.exclude_experts},
    )
    _touch(project, status=ProjectStatus.under_review, review_panel_id=panel.id)
    await session.flush()
    await stage_changed(session, project, ProjectStatus.verified)
    audit.record(
        session,
        actor=principal.actor,
        action="cer.review_opened",
        subject_type=SUBJECT_TYPE,
        subject_id=project.id,
        data={"panel_id": str(panel.id)},
    )
    return await reviews_service.view(session, principal, panel)


@dataclass(frozen=True)
class ReviewDocuments:
    """What a CER project's review panel reads: the project with its report, and who verified it."""

    project: ProjectRead
    verifier_name: str | None


@reviews_service.describes(SUBJECT_TYPE)
async def _describe_for_review(session: AsyncSession, subject_id: str) -> reviews_service.Subject:
    project = await view(session, await get(session, uuid.UUID(subject_id)))
    names = await org_service.names(session, [project.verifier_org_id])
    documents = ReviewDocuments(
        project, names.get(project.verifier_org_id) if project.verifier_org_id else None
    )
    return reviews_service.Subject(SUBJECT_TYPE, subject_id, project.name, project.owner_name, documents)


@reviews_service.on_decision(SUBJECT_TYPE)
async def _on_review_decided(
    session: AsyncSession, principal: Principal, decision: reviews_service.PanelDecision
) -> None:
    project = await get(session, uuid.UUID(decision.subject_id), lock=True)
    if project.status != ProjectStatus.under_review:
        return
    if decision.passed:
        _touch(project, status=ProjectStatus.reviewed)
    else:
        _touch(project, status=ProjectStatus.rejected, decision_reason=decision.reason)
    await session.flush()
    await stage_changed(session, project, ProjectStatus.under_review)


async def file(
    session: AsyncSession, principal: Principal, project_id: uuid.UUID, outcome: str, reason: str
) -> ProjectRead:
    """The authority's filing decision (备案): filed needs the expert review passed."""
    project = await get(session, project_id, lock=True)
    _require_state(project, ProjectStatus.verified, ProjectStatus.under_review, ProjectStatus.reviewed)
    previous = project.status
    if outcome == ProjectStatus.filed:
        await reviews_service.require_passed(session, SUBJECT_TYPE, str(project.id))
        _touch(project, status=ProjectStatus.filed, filed_at=clock.now(), decision_reason=reason)
    else:
        _touch(project, status=ProjectStatus.rejected, decision_reason=reason)
    await session.flush()
    await stage_changed(session, project, previous)
    audit.record(
        session,
        actor=principal.actor,
        action=f"cer.project_{outcome}",
        subject_type=SUBJECT_TYPE,
        subject_id=project.id,
        data={"reason": reason},
    )
    return await view(session, project)


async def project_to_issue(session: AsyncSession, project_id: uuid.UUID) -> CerProject:
    project = await get(session, project_id, lock=True)
    if project.status == ProjectStatus.issued:
        raise InvalidProjectState("the project's reductions were issued already", status_now=project.status)
    if project.status != ProjectStatus.filed:
        raise NotFiled(
            f"the project is {project.status}: only a filed project is issued", status_now=project.status
        )
    return project


# --- the authority's queues -----------------------------------------------------------------


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    """Projects by status: ``{"publicity": 2, "verified": 1, …}`` (absent: none)."""
    return await repository.count_projects_by_status(session)


async def with_unanswered_objections(session: AsyncSession, *, limit: int = 100) -> list[ProjectRead]:
    """Projects with an objection still to answer, oldest objection first."""
    return await views(session, await repository.projects_with_unanswered_objections(session, limit))
