"""The public list of approved scenes (no sign-in): search by name, kind of place, behaviour type and
district, or near the browser's location (the near-me query of the JSON route); as a page and CSV.
The scene operator's own pages are in :mod:`app.scenes.pages`."""

from typing import Annotated

from fastapi import Query, Request

from app.auth.dependencies import Session
from app.core.types import Text
from app.scenes import service
from app.scenes.exceptions import CoordinatesOutOfRange, IncompleteNearQuery, InvalidRadius, UnknownCategory
from app.web.dependencies import page_router
from app.web.disclosure import Column, Listing, respond
from app.web.i18n import N_, date_, gettext, number

router = page_router()

CATEGORIES = {
    "business_premises": N_("Business premises (shop, café, restaurant)"),
    "public_place": N_("Public place (park, station, square)"),
    "public_institution": N_("Public institution (government office, school, hospital)"),
}
DISTRICTS = {  # Shenzhen's county-level divisions
    "440303": N_("Luohu"),
    "440304": N_("Futian"),
    "440305": N_("Nanshan"),
    "440306": N_("Bao'an"),
    "440307": N_("Longgang"),
    "440308": N_("Yantian"),
    "440309": N_("Longhua"),
    "440310": N_("Pingshan"),
    "440311": N_("Guangming"),
}
BEHAVIOURS = {
    "own_cup": N_("Own cup"),
    "no_disposable_tableware": N_("No disposable tableware"),
    "clean_plate": N_("Clean plate"),
    "paperless_receipt": N_("Paperless receipt"),
    "reusable_bag": N_("Reusable bag"),
    "refill_water": N_("Water refill"),
}


def _label(table: dict[str, str], code: str) -> str:
    return gettext(table[code]) if code in table else code


def _distance(metres: int | None) -> str:
    if metres is None:
        return "—"
    if metres < 1000:
        return gettext("%(value)s m") % {"value": number(metres)}
    return gettext("%(value)s km") % {"value": number(round(metres / 1000, 1))}


@router.get("/scenes", name="public_scenes")
async def scenes(
    request: Request,
    session: Session,
    name: Annotated[Text | None, Query(max_length=100)] = None,
    category: Annotated[Text | None, Query(max_length=30)] = None,
    behaviour_type: Annotated[Text | None, Query(max_length=50)] = None,
    district_code: Annotated[Text | None, Query(max_length=6)] = None,
    lat: Annotated[float | None, Query()] = None,
    lng: Annotated[float | None, Query()] = None,
):
    near = lat is not None or lng is not None
    columns = [
        Column(gettext("Scene"), lambda s: s.name),
        Column(gettext("Kind of place"), lambda s: _label(CATEGORIES, s.category), lambda s: s.category),
        Column(gettext("Address"), lambda s: s.address),
        Column(gettext("District"), lambda s: _label(DISTRICTS, s.district_code), lambda s: s.district_code),
        Column(
            gettext("Behaviours recorded"),
            lambda s: ", ".join(_label(BEHAVIOURS, b) for b in s.behaviour_types),
            lambda s: " ".join(s.behaviour_types),
        ),
        Column(gettext("Operator"), lambda s: s.operator_name),
        Column(gettext("Label"), lambda s: s.label_code),
        Column(gettext("Approved on"), lambda s: date_(s.approved_at), lambda s: s.approved_at.isoformat()),
    ]
    if near:
        columns.insert(
            1, Column(gettext("Distance"), lambda s: _distance(s.distance_m), lambda s: s.distance_m)
        )
    filters = {
        "name": name,
        "category": category,
        "behaviour_type": behaviour_type,
        "district_code": district_code,
        "lat": None if lat is None else f"{lat:.6f}",
        "lng": None if lng is None else f"{lng:.6f}",
    }
    options = lambda table, any_label: [("", any_label)] + [(k, gettext(v)) for k, v in table.items()]  # noqa: E731
    listing = Listing(
        gettext("Scenes"),
        "scenes.csv",
        filters=filters,
        refusals={
            UnknownCategory: ("category", N_("Choose a kind of place from the list.")),
            CoordinatesOutOfRange: (
                "near",
                N_("Your location could not be used (it is not a valid position)."),
            ),
            IncompleteNearQuery: (
                "near",
                N_("Your location could not be used (it is not a valid position)."),
            ),
            InvalidRadius: ("near", N_("Your location could not be used (it is not a valid position).")),
        },
        extra={
            "near": near,
            "category_options": options(CATEGORIES, gettext("Any kind")),
            "behaviour_options": options(BEHAVIOURS, gettext("Any behaviour")),
            "district_options": options(DISTRICTS, gettext("Any district")),
        },
    )
    return await respond(
        request,
        "scenes/public_list.html",
        columns,
        lambda cursor, limit: service.public_list(
            session,
            name=name,
            city_code=None,
            district_code=district_code or None,
            category=category or None,
            behaviour_type=behaviour_type or None,
            lat=lat,
            lng=lng,
            radius_m=None,
            limit=limit,
            cursor=cursor,
        ),
        listing,
    )
