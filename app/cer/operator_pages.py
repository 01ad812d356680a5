"""The operators' console: the CER projects the operator owns (``/operator/projects``), with their stage;
each opens on the owner's view of its evidence (``/cer/my-projects/{id}``, :mod:`app.cer.verifier_pages`)
and links its public page."""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response
from markupsafe import Markup

from app.auth.dependencies import Session
from app.cer import service
from app.core.pagination import Cursor
from app.web.dependencies import page_router, require_viewer
from app.web.i18n import N_, gettext, mass
from app.web.i18n import date_ as show_date
from app.web.sessions import Viewer
from app.web.templating import render

router = page_router()
OperatorViewer = Annotated[Viewer, Depends(require_viewer("operator"))]
PAGE_SIZE = 20
STAGES = {
    "publicity": N_("In publicity"),
    "submitted": N_("Submitted for verification"),
    "verification": N_("Being verified"),
    "verified": N_("Verified"),
    "under_review": N_("Under expert review"),
    "reviewed": N_("Reviewed"),
    "filed": N_("Filed"),
    "issued": N_("Issued"),
    "rejected": N_("Rejected"),
    "frozen": N_("Frozen"),
}


@router.get("/operator/projects", name="operator_projects")
async def projects(
    request: Request, session: Session, viewer: OperatorViewer, cursor: Cursor = None
) -> Response:
    result = await service.list_(
        session,
        viewer.principal,
        status=None,
        owner_org_id=viewer.principal.org_id,
        limit=PAGE_SIZE,
        cursor=cursor,
    )
    rows = [
        [
            Markup(
                '<a href="/cer/my-projects/{}">{}</a><a class="cell-link" href="/cer/projects/{}">{}</a>'
            ).format(p.id, p.name, p.id, gettext("Public page")),
            gettext(STAGES.get(p.status, p.status)),
            f"{show_date(p.period_start)} – {show_date(p.period_end)}",
            mass(p.claimed_g),
            f"{p.objections_unanswered} / {p.objections}",
        ]
        for p in result.items
    ]
    nxt = result.next_cursor
    return render(
        request,
        "cer/operator_projects.html",
        {
            "section": "projects",
            "rows": rows,
            "next_url": f"/operator/projects?cursor={nxt}" if nxt else None,
            "first_url": "/operator/projects" if cursor else None,
        },
    )
