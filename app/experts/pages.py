"""The public list of the expert pool (SZ 29), as a page and CSV."""

from typing import Annotated

from fastapi import Query, Request

from app.auth.dependencies import Session
from app.core.types import Text
from app.experts import service
from app.experts.exceptions import UnknownField
from app.web.dependencies import page_router
from app.web.disclosure import Column, Listing, respond
from app.web.i18n import N_, gettext

router = page_router()

FIELD_NAMES = {
    "travel": N_("Travel"),
    "buildings": N_("Buildings"),
    "energy": N_("Energy"),
    "forestry": N_("Forestry"),
    "retail": N_("Retail"),
    "waste": N_("Waste"),
    "agriculture": N_("Agriculture"),
    "ocean": N_("Ocean"),
    "verification": N_("Verification"),
    "data": N_("Data"),
}


def _field_name(code: str) -> str:
    return gettext(FIELD_NAMES[code]) if code in FIELD_NAMES else code


@router.get("/experts", name="public_experts")
async def experts(
    request: Request, session: Session, field: Annotated[Text | None, Query(max_length=30)] = None
):
    columns = [
        Column(gettext("Name"), lambda e: e.name),
        Column(
            gettext("Fields"),
            lambda e: ", ".join(_field_name(f) for f in e.fields),
            lambda e: " ".join(e.fields),
        ),
        Column(gettext("Affiliation"), lambda e: e.affiliation.name),
    ]
    options = [("", gettext("Any field"))] + [(code, _field_name(code)) for code in service.FIELDS]
    listing = Listing(
        gettext("Experts"),
        "experts.csv",
        filters={"field": field},
        refusals={UnknownField: ("field", gettext("Choose one of the fields in the list."))},
        extra={"field_options": options},
    )
    return await respond(
        request,
        "experts/list.html",
        columns,
        lambda cursor, limit: service.public_list(session, field=field or None, limit=limit, cursor=cursor),
        listing,
    )
