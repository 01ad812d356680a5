"""The operators' console: the people who entrusted the operator (``/operator/people``): how many began
and withdrew each month, and a look-up by the operator's own id of a person — no other identifier."""

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.responses import Response

from app.auth.dependencies import Session
from app.core.types import Text
from app.users import service
from app.web.dependencies import page_router, require_viewer
from app.web.i18n import N_, gettext, number
from app.web.i18n import datetime_ as show_time
from app.web.sessions import Viewer
from app.web.templating import render

router = page_router()
OperatorViewer = Annotated[Viewer, Depends(require_viewer("operator"))]
CONFIRMED_BY = {
    "operator_asserted": N_("On your word (enrolled by your app)"),
    "person_otp": N_("By the person (one-time code at the platform)"),
}


@router.get("/operator/people", name="operator_people")
async def people(
    request: Request,
    session: Session,
    viewer: OperatorViewer,
    external_user_id: Annotated[Text | None, Query(max_length=200)] = None,
) -> Response:
    months = await service.enrolments_by_month(session, viewer.principal)
    wanted = (external_user_id or "").strip()
    error = None
    found = None
    if external_user_id is not None and not wanted:
        error = gettext("Enter your app's id of the person.")
    elif len(wanted) > 100:
        error = gettext("Your ids are at most 100 characters.")
    elif wanted:
        found = [
            [
                show_time(e.accepted_at),
                show_time(e.withdrawn_at) if e.withdrawn_at else gettext("Still entrusted"),
                gettext(CONFIRMED_BY.get(e.confirmed_by, e.confirmed_by)),
                e.agreement_version,
            ]
            for e in await service.find_entrustments(session, viewer.principal, wanted)
        ]
    return render(
        request,
        "users/operator_people.html",
        {
            "section": "people",
            "rows": [[m.month, number(m.enrolled), number(m.withdrawn)] for m in months],
            "totals": (sum(m.enrolled for m in months), sum(m.withdrawn for m in months)),
            "external_user_id": wanted,
            "error": error,
            "found": found,
        },
        status_code=422 if error else 200,
    )
