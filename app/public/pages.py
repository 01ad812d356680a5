"""The public portal's pages (no sign-in)."""

from typing import Any

from fastapi import Request
from starlette.exceptions import HTTPException

from app.auth.dependencies import Session
from app.core.types import Text
from app.organizations import service as org_service
from app.public import service
from app.web.dependencies import page_router
from app.web.disclosure import Column, Listing, respond
from app.web.i18n import N_, date_, gettext
from app.web.templating import render

router = page_router()

ORG_KINDS = (
    ("operator", N_("App operators")),
    ("merchant", N_("Merchants")),
    ("scene_operator", N_("Scene operators")),
    ("verifier", N_("Verifiers")),
    ("buyer", N_("Buyers")),
)


def _charts(days: list[service.PortalDay]) -> dict[str, Any]:
    """The charts of the home page as data for ``web/portal-charts.js`` (a JSON data island): labels
    translated here, values as people read them (tonnes, points)."""
    tonnes = lambda grams: round(grams / 1_000_000, 3)  # noqa: E731
    charts = [
        (
            "reductions",
            gettext("Emission reductions per day (t CO₂e)"),
            [(gettext("Reductions"), [tonnes(d.reduction_g) for d in days], "#0b6e4f")],
        ),
        (
            "behaviours",
            gettext("Low-carbon behaviours recorded per day"),
            [(gettext("Behaviours"), [d.behaviours for d in days], "#1f5fa8")],
        ),
        (
            "points",
            gettext("Carbon points per day"),
            [
                (gettext("Issued"), [d.points_earned for d in days], "#0b6e4f"),
                (gettext("Spent"), [d.points_spent for d in days], "#b35c00"),
                (gettext("Expired"), [d.points_expired for d in days], "#6b6b6b"),
            ],
        ),
        (
            "cer",
            gettext("Certified emission reductions per day (t CO₂e)"),
            [
                (gettext("Issued"), [d.cer_issued_tonnes for d in days], "#0b6e4f"),
                (gettext("Retired"), [d.cer_retired_tonnes for d in days], "#7a3e9d"),
            ],
        ),
    ]
    return {
        "days": [date_(d.day, "MMMd") for d in days],
        "charts": [
            {
                "id": key,
                "title": title,
                "datasets": [
                    {"label": label, "data": data, "color": color} for label, data, color in datasets
                ],
            }
            for key, title, datasets in charts
        ],
    }


@router.get("/", name="home")
async def home(request: Request, session: Session):
    figures = await service.portal_home(session)
    org_kinds = [(kind, gettext(label)) for kind, label in ORG_KINDS]
    charts = _charts(figures.days)
    lists = [(url, gettext(title), gettext(text)) for url, title, text in OPEN_DATA]
    return render(
        request,
        "public/home.html",
        {
            "totals": figures.totals,
            "org_kinds": org_kinds,
            "as_of": figures.as_of,
            "charts": charts,
            "lists": lists,
        },
    )


# the registered organisations of each kind (the lists of GET /v1/public/{kind}), by name
ORG_LISTS = {
    "operators": ("operator", N_("App operators")),
    "merchants": ("merchant", N_("Merchants")),
    "scene-operators": ("scene_operator", N_("Scene operators")),
    "verifiers": ("verifier", N_("Verifiers")),
}

# the open-data index: each list, its title and what it holds
OPEN_DATA = (
    ("/methodologies", N_("Methodologies"), N_("Versions, emission factors, citations and effective dates.")),
    ("/exchange-rules", N_("Exchange rule"), N_("How grams of CO₂e become carbon points, caps and expiry.")),
    ("/experts", N_("Experts"), N_("The pool of experts the review panels are drawn from.")),
    ("/organizations/operators", N_("App operators"), N_("The apps that record low-carbon behaviours.")),
    ("/organizations/merchants", N_("Merchants"), N_("Who sells goods and services for carbon points.")),
    (
        "/organizations/verifiers",
        N_("Verifiers"),
        N_("Third-party bodies that verify certified-reduction projects."),
    ),
    ("/organizations/scene-operators", N_("Scene operators"), N_("Who runs the approved low-carbon scenes.")),
    (
        "/scenes",
        N_("Scenes"),
        N_("Approved low-carbon scenes: search by name, type and district, or near you."),
    ),
    (
        "/cer/projects",
        N_("CER projects"),
        N_("Projects of certified emission reductions and their publicity windows."),
    ),
    (
        "/cer/issuances",
        N_("CER issuances"),
        N_("Certified emission reductions issued, with their serial numbers."),
    ),
    (
        "/cer/retirements",
        N_("CER retirements"),
        N_("Reductions retired for carbon neutrality, with their certificates."),
    ),
    ("/mall", N_("Rewards mall"), N_("What carbon points can buy.")),
)


@router.get("/open-data", name="open_data")
async def open_data(request: Request):
    lists = [(url, gettext(title), gettext(text)) for url, title, text in OPEN_DATA]
    return render(request, "public/open_data.html", {"lists": lists})


@router.get("/organizations/{kind}", name="public_organizations")
async def organizations(request: Request, session: Session, kind: Text):
    if kind not in ORG_LISTS:
        raise HTTPException(404)
    org_kind, title = ORG_LISTS[kind]
    columns = [
        Column(gettext("Name"), lambda o: o.name),
        Column(gettext("Unified social credit code"), lambda o: o.credit_code),
        Column(
            gettext("Approved on"),
            lambda o: date_(o.decided_at),
            lambda o: o.decided_at.isoformat() if o.decided_at else "",
        ),
    ]
    return await respond(
        request,
        "public/organizations.html",
        columns,
        lambda cursor, limit: org_service.public_list(session, org_kind, limit, cursor),
        Listing(gettext(title), f"{kind}.csv", extra={"kind": kind}),
    )
