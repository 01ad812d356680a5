"""The public portal's pages (no sign-in)."""

from fastapi import Request

from app.auth.dependencies import Session
from app.core import clock
from app.public import service
from app.web.dependencies import page_router
from app.web.i18n import N_, gettext
from app.web.templating import render

router = page_router()

ORG_KINDS = (
    ("operator", N_("App operators")),
    ("merchant", N_("Merchants")),
    ("scene_operator", N_("Scene operators")),
    ("verifier", N_("Verifiers")),
    ("buyer", N_("Buyers")),
)


@router.get("/", name="home")
async def home(request: Request, session: Session):
    totals = await service.portal_totals(session)
    org_kinds = [(kind, gettext(label)) for kind, label in ORG_KINDS]
    return render(
        request, "public/home.html", {"totals": totals, "org_kinds": org_kinds, "as_of": clock.now()}
    )
