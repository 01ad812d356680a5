"""The public CER pages (no sign-in): projects with their publicity windows and a form to object during
publicity, issuances, retirements, and a certificate's verification page (where its QR code points).
Each calls the function of :mod:`app.cer.service` or :mod:`app.cer.registry` its JSON route calls."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from pydantic import ValidationError

from app.auth.dependencies import Session
from app.cer import registry, service
from app.cer.exceptions import CertificateNotFound, PublicityClosed
from app.cer.schemas import ObjectionCreate
from app.core.types import Text
from app.web.dependencies import page_router
from app.web.disclosure import Column, Listing, respond
from app.web.i18n import N_, date_, datetime_, gettext, number, tonnes
from app.web.templating import render

router = page_router()

PROJECT_STATUSES = {
    "publicity": N_("In publicity"),
    "submitted": N_("Submitted"),
    "verification": N_("Being verified"),
    "verified": N_("Verified"),
    "under_review": N_("Under expert review"),
    "reviewed": N_("Reviewed"),
    "filed": N_("Filed"),
    "issued": N_("Issued"),
    "rejected": N_("Rejected"),
    "frozen": N_("Frozen"),
}
BENEFICIARY_KINDS = {"event": N_("Event"), "organization": N_("Organisation"), "person": N_("Person")}
OBJECTION_ERRORS = {
    "name": N_("At most 200 characters."),
    "contact": N_("At most 200 characters."),
    "text": N_("Write your objection (at most 5,000 characters)."),
}


def _status(code: str) -> str:
    return gettext(PROJECT_STATUSES[code]) if code in PROJECT_STATUSES else code


def _link(url: str, text: str) -> Markup:
    return Markup('<a href="{}">{}</a>').format(url, text)


def _validity(flagged: bool) -> str:
    return gettext("Flagged") if flagged else gettext("Valid")


@router.get("/cer/projects", name="public_cer_projects")
async def projects(request: Request, session: Session):
    columns = [
        Column(gettext("Project"), lambda p: _link(f"/cer/projects/{p.id}", p.name), lambda p: p.name),
        Column(gettext("Owner"), lambda p: p.owner_name),
        Column(
            gettext("Period"),
            lambda p: f"{date_(p.period_start)} – {date_(p.period_end)}",
            lambda p: f"{p.period_start.isoformat()}/{p.period_end.isoformat()}",
        ),
        Column(gettext("Methodologies"), lambda p: ", ".join(p.methodology_codes)),
        Column(gettext("Claimed reduction (t CO₂e)"), lambda p: tonnes(p.claimed_g), lambda p: p.claimed_g),
        Column(gettext("Status"), lambda p: _status(p.status), lambda p: p.status),
        Column(
            gettext("Publicity"),
            lambda p: f"{date_(p.publicity_starts_on)} – {date_(p.publicity_ends_on)}",
            lambda p: f"{p.publicity_starts_on.isoformat()}/{p.publicity_ends_on.isoformat()}",
        ),
        Column(gettext("Objections"), lambda p: number(p.objections), lambda p: p.objections),
    ]
    return await respond(
        request,
        "cer/projects.html",
        columns,
        lambda cursor, limit: service.list_(
            session, None, status=None, owner_org_id=None, limit=limit, cursor=cursor
        ),
        Listing(gettext("CER projects"), "cer-projects.csv"),
    )


def _project_page(
    request: Request,
    project: Any,
    objections: list[Any],
    values: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "cer/project.html",
        {
            "project": project,
            "status_label": _status(project.status),
            "objections": objections,
            "open": project.publicity == "in_progress",
            "values": values,
            "errors": errors,
            "filed": request.query_params.get("filed") == "1",
        },
        status_code=status_code,
    )


@router.get("/cer/projects/{project_id}", name="public_cer_project")
async def project(request: Request, session: Session, project_id: uuid.UUID):
    found, objections = await service.public_project(session, project_id)
    return _project_page(request, found, objections, {}, {})


@router.post("/cer/projects/{project_id}/objections")
async def object_to(
    request: Request,
    session: Session,
    project_id: uuid.UUID,
    text: Annotated[Text, Form(max_length=20_000)] = "",
    name: Annotated[Text, Form(max_length=2_000)] = "",
    contact: Annotated[Text, Form(max_length=2_000)] = "",
):
    values = {"text": text, "name": name, "contact": contact}
    try:
        data = ObjectionCreate(text=text.strip(), name=name.strip() or None, contact=contact.strip() or None)
        await service.file_objection(session, project_id, data, "public")
    except ValidationError as exc:
        errors = {str(e["loc"][0]): gettext(OBJECTION_ERRORS[str(e["loc"][0])]) for e in exc.errors()}
        found, objections = await service.public_project(session, project_id)
        return _project_page(request, found, objections, values, errors, status_code=422)
    except PublicityClosed:
        found, objections = await service.public_project(session, project_id)
        errors = {"closed": gettext("The publicity of this project has ended: objections are closed.")}
        return _project_page(request, found, objections, values, errors, status_code=409)
    return RedirectResponse(f"/cer/projects/{project_id}?filed=1#objections", status_code=303)


@router.get("/cer/issuances", name="public_cer_issuances")
async def issuances(request: Request, session: Session):
    columns = [
        Column(gettext("Serial numbers"), lambda i: i.serials or "—", lambda i: i.serials or ""),
        Column(
            gettext("Project"),
            lambda i: _link(f"/cer/projects/{i.project_id}", i.project_name),
            lambda i: i.project_name,
        ),
        Column(gettext("Owner"), lambda i: i.owner_name),
        Column(gettext("Vintage"), lambda i: i.vintage),
        Column(gettext("Tonnes issued (t CO₂e)"), lambda i: number(i.tonnes), lambda i: i.tonnes),
        Column(gettext("Issued at"), lambda i: datetime_(i.issued_at), lambda i: i.issued_at.isoformat()),
    ]
    return await respond(
        request,
        "cer/issuances.html",
        columns,
        lambda cursor, limit: registry.list_issuances(session, limit=limit, cursor=cursor),
        Listing(gettext("CER issuances"), "cer-issuances.csv"),
    )


@router.get("/cer/retirements", name="public_cer_retirements")
async def retirements(request: Request, session: Session):
    columns = [
        Column(
            gettext("Certificate"),
            lambda r: _link(f"/certificates/{r.certificate_number}", r.certificate_number),
            lambda r: r.certificate_number,
        ),
        Column(gettext("Tonnes retired (t CO₂e)"), lambda r: number(r.tonnes), lambda r: r.tonnes),
        Column(gettext("Beneficiary"), lambda r: r.beneficiary.name),
        Column(gettext("Purpose"), lambda r: r.purpose),
        Column(gettext("Serial numbers"), lambda r: ", ".join(r.serials), lambda r: " ".join(r.serials)),
        Column(gettext("Retired at"), lambda r: datetime_(r.retired_at), lambda r: r.retired_at.isoformat()),
        Column(
            gettext("Status"),
            lambda r: _validity(r.fraud_flagged),
            lambda r: "flagged" if r.fraud_flagged else "valid",
        ),
    ]
    return await respond(
        request,
        "cer/retirements.html",
        columns,
        lambda cursor, limit: registry.list_retirements(session, None, limit=limit, cursor=cursor),
        Listing(gettext("CER retirements"), "cer-retirements.csv"),
    )


@router.get("/certificates/{number}", name="certificate_page")
async def certificate(request: Request, session: Session, number: Text):
    try:
        cert = await registry.public_certificate(session, number)
    except CertificateNotFound:
        return render(request, "cer/certificate_missing.html", {"number": number}, status_code=404)
    content = cert.content
    kind = content["beneficiary"]["kind"]
    return render(
        request,
        "cer/certificate.html",
        {
            "cert": cert,
            "content": content,
            "beneficiary_kind": gettext(BENEFICIARY_KINDS[kind]) if kind in BENEFICIARY_KINDS else kind,
            "retired_at": datetime.fromisoformat(content["retired_at"]),
            "pdf_path": f"/v1/public/certificates/{cert.number}.pdf",
            "json_path": f"/v1/public/certificates/{cert.number}",
        },
    )
