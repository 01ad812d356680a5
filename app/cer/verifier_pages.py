"""The verifiers' workspace (``/verifier``) and the owners' read-only view of the same evidence
(``/cer/my-projects``): a project's report, its records (pseudonymous, paged, CSV), a reproducible
sample, the signed batches with their signatures verified now, and — for the assigned verifier — the
verification form. Each page calls the function of :mod:`app.cer.service` or :mod:`app.cer.evidence`
its JSON route calls."""

import secrets
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from app.auth.dependencies import Session
from app.cer import evidence, service
from app.cer.exceptions import InvalidDocumentLink, InvalidProjectState, VerifiedExceedsClaimed
from app.cer.pages import PROJECT_STATUSES
from app.cer.schemas import ProjectRead, VerificationIn
from app.core import clock
from app.core.pagination import Cursor
from app.core.types import Text
from app.scenes.pages import behaviour_label
from app.web.dependencies import page_router, require_viewer
from app.web.i18n import N_, datetime_, gettext, mass, number, quantity
from app.web.sessions import Viewer
from app.web.templating import render

router = page_router()
VerifierViewer = Annotated[Viewer, Depends(require_viewer("verifier"))]
OwnerViewer = Annotated[Viewer, Depends(require_viewer("operator"))]
RECORDS_PAGE = 50
BATCHES_PAGE = 20
REASONS = {
    "verified": N_("The signature matches the stored body."),
    "body_hash_mismatch": N_("The stored body no longer matches its recorded SHA-256."),
    "unknown_key": N_("No key with this id is registered for the operator."),
    "malformed_signature": N_("The stored signature is not a detached JWS."),
    "algorithm_not_allowed": N_("The signature names another algorithm than the registered key's."),
    "invalid_signature": N_("The signature does not match the stored body."),
}
CAP_CODES = {"capped": N_("Daily points cap"), "quantity_capped": N_("Daily quantity bound")}


@dataclass(frozen=True)
class Workspace:
    """Where a project's pages live for one audience."""

    base: str  # /verifier/projects or /cer/my-projects
    home: str
    home_label: str
    verifier: bool


VERIFIER = Workspace("/verifier/projects", "/verifier", N_("Projects to verify"), True)
OWNER = Workspace("/cer/my-projects", "/cer/my-projects", N_("Your CER projects"), False)


def _status(code: str) -> str:
    return gettext(PROJECT_STATUSES[code]) if code in PROJECT_STATUSES else code


def _context(ws: Workspace, project: ProjectRead, tab: str, **extra: Any) -> dict[str, Any]:
    return {
        "ws": ws,
        "home_label": gettext(ws.home_label),
        "project": project,
        "status_label": _status(project.status),
        "tab": tab,
        "path": f"{ws.base}/{project.id}",
        "behaviour_label": behaviour_label,
        **extra,
    }


# --- the lists of projects ------------------------------------------------------------------


async def _home(
    request: Request, session: Session, viewer: Viewer, ws: Workspace, cursor: str | None
) -> Response:
    result = await service.list_(
        session, viewer.principal, status=None, owner_org_id=None, limit=20, cursor=cursor
    )
    mine = [
        p
        for p in result.items
        if (p.verifier_org_id if ws.verifier else p.owner_org_id) == viewer.principal.org_id
    ]
    return render(
        request,
        "cer/workspace_home.html",
        {
            "ws": ws,
            "home_label": gettext(ws.home_label),
            "projects": [(p, _status(p.status)) for p in mine],
            "next_cursor": result.next_cursor,
            "first_page": cursor is None,
        },
    )


@router.get("/verifier", name="verifier_home")
async def verifier_home(request: Request, session: Session, viewer: VerifierViewer, cursor: Cursor = None):
    return await _home(request, session, viewer, VERIFIER, cursor)


@router.get("/cer/my-projects", name="owner_projects")
async def owner_home(request: Request, session: Session, viewer: OwnerViewer, cursor: Cursor = None):
    return await _home(request, session, viewer, OWNER, cursor)


# --- a project: overview and the verification ----------------------------------------------


def _form_values(project: ProjectRead) -> dict[str, str]:
    return {"verified_g": str(project.claimed_g), "statement": "", "documents": ""}


async def _overview(
    request: Request,
    session: Session,
    viewer: Viewer,
    ws: Workspace,
    project_id: uuid.UUID,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    project = await service.read(session, viewer.principal, project_id)
    can_verify = ws.verifier and project.status == "verification"
    return render(
        request,
        "cer/workspace_project.html",
        _context(
            ws,
            project,
            "overview",
            can_verify=can_verify,
            values=values or _form_values(project),
            errors=errors or {},
            recorded=request.query_params.get("verified") == "1",
        ),
        status_code=status_code,
    )


@router.get("/verifier/projects/{project_id}", name="verifier_project")
async def verifier_project(request: Request, session: Session, viewer: VerifierViewer, project_id: uuid.UUID):
    return await _overview(request, session, viewer, VERIFIER, project_id)


@router.get("/cer/my-projects/{project_id}", name="owner_project")
async def owner_project(request: Request, session: Session, viewer: OwnerViewer, project_id: uuid.UUID):
    return await _overview(request, session, viewer, OWNER, project_id)


@router.post("/verifier/projects/{project_id}/verification")
async def record_verification(
    request: Request,
    session: Session,
    viewer: VerifierViewer,
    project_id: uuid.UUID,
    verified_g: Annotated[Text, Form(max_length=100)] = "",
    statement: Annotated[Text, Form(max_length=40_000)] = "",
    documents: Annotated[Text, Form(max_length=120_000)] = "",
):
    values = {"verified_g": verified_g, "statement": statement, "documents": documents}
    errors: dict[str, str] = {}
    grams = verified_g.strip().replace(",", "").replace("，", "")
    if not grams.isdigit() or len(grams) > 17:
        errors["verified_g"] = gettext("Enter the verified reduction in whole grams, like 3000000.")
    if not statement.strip() or len(statement.strip()) > 20_000:
        errors["statement"] = gettext("Write the verification statement (at most 20,000 characters).")
    links = [line.strip() for line in documents.splitlines() if line.strip()]
    if len(links) > 50:
        errors["documents"] = gettext("At most 50 links, one a line.")
    if (
        errors and "verified_g" not in errors
    ):  # say everything wrong at once, not the grams only after a retry
        claimed = (await service.read(session, viewer.principal, project_id)).claimed_g
        if int(grams) > claimed:
            errors["verified_g"] = _exceeds(claimed)
    status_code = 422
    if not errors:
        try:
            data = VerificationIn(verified_g=int(grams), statement=statement.strip(), documents=links)
            await service.record_verification(session, viewer.principal, project_id, data)
        except VerifiedExceedsClaimed:
            errors["verified_g"] = _exceeds(
                (await service.read(session, viewer.principal, project_id)).claimed_g
            )
        except InvalidDocumentLink:
            errors["documents"] = gettext(
                "Each line must be a web address beginning with http:// or https://."
            )
        except InvalidProjectState:
            errors["state"] = gettext(
                "This project is no longer awaiting verification: nothing was recorded."
            )
            status_code = 409
        else:
            return RedirectResponse(
                f"/verifier/projects/{project_id}?verified=1#verification", status_code=303
            )
    return await _overview(
        request, session, viewer, VERIFIER, project_id, values=values, errors=errors, status_code=status_code
    )


def _exceeds(claimed: int) -> str:
    return gettext(
        "The verified reduction cannot exceed the claimed one: at most %(claimed)s g (%(mass)s)."
    ) % {"claimed": number(claimed), "mass": mass(claimed)}


# --- the records, the sample, the batches (both audiences) -----------------------------------


def _record_row(r: Any) -> list[Any]:
    return [
        r.id,
        r.record_id,
        r.person,
        behaviour_label(r.behaviour_type),
        datetime_(r.started_at),
        quantity(r.quantity, r.unit),
        number(r.reduction_g),
        f"{r.methodology_code} v{r.methodology_version}",
        gettext(CAP_CODES[r.cap_code]) if r.cap_code in CAP_CODES else "",
        f"{str(r.batch_id)[:8]}…",  # the batches tab and the CSV have the whole id
    ]


async def _records(
    request: Request,
    session: Session,
    viewer: Viewer,
    ws: Workspace,
    project_id: uuid.UUID,
    cursor: str | None,
) -> Response:
    project = await service.read(session, viewer.principal, project_id)
    result = await evidence.records(session, viewer.principal, project_id, limit=RECORDS_PAGE, cursor=cursor)
    return render(
        request,
        "cer/workspace_records.html",
        _context(
            ws,
            project,
            "records",
            records=[_record_row(r) for r in result.items],
            next_cursor=result.next_cursor,
            first_page=cursor is None,
        ),
    )


async def _records_csv(session: Session, viewer: Viewer, project_id: uuid.UUID) -> Response:
    source = await evidence.csv_source(session, viewer.principal, project_id)
    return StreamingResponse(
        evidence.records_csv(source),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="cer-project-{source}-records.csv"'},
    )


SeedParam = Annotated[Text | None, Query(max_length=100)]
SizeParam = Annotated[Text | None, Query(max_length=20)]


async def _sample(
    request: Request,
    session: Session,
    viewer: Viewer,
    ws: Workspace,
    project_id: uuid.UUID,
    seed: str | None,
    size: str | None,
) -> Response:
    project = await service.read(session, viewer.principal, project_id)
    errors: dict[str, str] = {}
    drawn = None
    seed_value = (seed or "").strip()
    size_text = "25" if size is None else size.strip()
    size_value = int(size_text) if size_text.isdigit() and len(size_text) <= 4 else 0
    if seed is not None:
        if not seed_value:
            errors["seed"] = gettext("Enter a seed: any text (note it to draw the same sample again).")
        if not 1 <= size_value <= 1000:
            errors["size"] = gettext("Draw between 1 and 1,000 records.")
        if not errors:
            drawn = await evidence.sample(
                session, viewer.principal, project_id, seed=seed_value, size=size_value
            )
    if seed is None:
        seed_value = f"{clock.today().isoformat()}-{secrets.token_hex(3)}"
    return render(
        request,
        "cer/workspace_sample.html",
        _context(
            ws,
            project,
            "sample",
            seed=seed_value,
            size=size_text,
            errors=errors,
            drawn=drawn,
            rows=[[*_record_row(r), r.draw_key[:16]] for r in drawn.items] if drawn else [],
        ),
        status_code=422 if errors else 200,
    )


async def _batches(
    request: Request,
    session: Session,
    viewer: Viewer,
    ws: Workspace,
    project_id: uuid.UUID,
    cursor: str | None,
) -> Response:
    project = await service.read(session, viewer.principal, project_id)
    result = await evidence.batches(session, viewer.principal, project_id, limit=BATCHES_PAGE, cursor=cursor)
    return render(
        request,
        "cer/workspace_batches.html",
        _context(
            ws,
            project,
            "batches",
            batches=[(b, gettext(REASONS[b.reason])) for b in result.items],
            next_cursor=result.next_cursor,
            first_page=cursor is None,
        ),
    )


@router.get("/verifier/projects/{project_id}/records", name="verifier_records")
async def verifier_records(
    request: Request, session: Session, viewer: VerifierViewer, project_id: uuid.UUID, cursor: Cursor = None
):
    return await _records(request, session, viewer, VERIFIER, project_id, cursor)


@router.get("/cer/my-projects/{project_id}/records", name="owner_records")
async def owner_records(
    request: Request, session: Session, viewer: OwnerViewer, project_id: uuid.UUID, cursor: Cursor = None
):
    return await _records(request, session, viewer, OWNER, project_id, cursor)


@router.get("/verifier/projects/{project_id}/records.csv", name="verifier_records_csv")
async def verifier_records_csv(session: Session, viewer: VerifierViewer, project_id: uuid.UUID):
    return await _records_csv(session, viewer, project_id)


@router.get("/cer/my-projects/{project_id}/records.csv", name="owner_records_csv")
async def owner_records_csv(session: Session, viewer: OwnerViewer, project_id: uuid.UUID):
    return await _records_csv(session, viewer, project_id)


@router.get("/verifier/projects/{project_id}/sample", name="verifier_sample")
async def verifier_sample(
    request: Request,
    session: Session,
    viewer: VerifierViewer,
    project_id: uuid.UUID,
    seed: SeedParam = None,
    size: SizeParam = None,
):
    return await _sample(request, session, viewer, VERIFIER, project_id, seed, size)


@router.get("/cer/my-projects/{project_id}/sample", name="owner_sample")
async def owner_sample(
    request: Request,
    session: Session,
    viewer: OwnerViewer,
    project_id: uuid.UUID,
    seed: SeedParam = None,
    size: SizeParam = None,
):
    return await _sample(request, session, viewer, OWNER, project_id, seed, size)


@router.get("/verifier/projects/{project_id}/batches", name="verifier_batches")
async def verifier_batches(
    request: Request, session: Session, viewer: VerifierViewer, project_id: uuid.UUID, cursor: Cursor = None
):
    return await _batches(request, session, viewer, VERIFIER, project_id, cursor)


@router.get("/cer/my-projects/{project_id}/batches", name="owner_batches")
async def owner_batches(
    request: Request, session: Session, viewer: OwnerViewer, project_id: uuid.UUID, cursor: Cursor = None
):
    return await _batches(request, session, viewer, OWNER, project_id, cursor)
