"""The scene operator's portal: apply for a scene, follow its review, see its label, request a change,
and see what was recorded there. Each page calls one function of :mod:`app.scenes.service`, the same
service the JSON routes call."""

import math
import re
import uuid
from typing import Annotated, Any

from fastapi import Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from app.auth.dependencies import Session
from app.core.errors import DomainError
from app.core.pagination import Cursor
from app.core.types import Text
from app.scenes import service
from app.scenes.exceptions import (
    ChangeUnderReview,
    CoordinatesOutOfRange,
    InvalidDivisionCode,
    InvalidEvidenceLink,
    InvalidTransition,
    UnknownBehaviourType,
    UnknownCategory,
)
from app.scenes.schemas import SceneCreate, SceneRead, SceneUpdate
from app.web.dependencies import page_router, require_viewer
from app.web.i18n import N_, gettext
from app.web.sessions import Viewer
from app.web.templating import render

router = page_router(prefix="/scene-operator")
Operator = Annotated[Viewer, Depends(require_viewer("scene_operator"))]

CATEGORIES = (
    ("business_premises", N_("Business premises"), N_("A shop, café, restaurant or other business.")),
    ("public_place", N_("Public place"), N_("A park, station, square or other place open to all.")),
    (
        "public_institution",
        N_("Public institution"),
        N_("A government office, school, hospital or canteen of one."),
    ),
)
DISTRICTS = (  # Shenzhen's county-level divisions, offered as suggestions
    ("440303", N_("Luohu")),
    ("440304", N_("Futian")),
    ("440305", N_("Nanshan")),
    ("440306", N_("Bao'an")),
    ("440307", N_("Longgang")),
    ("440308", N_("Yantian")),
    ("440309", N_("Longhua")),
    ("440310", N_("Pingshan")),
    ("440311", N_("Guangming")),
)
BEHAVIOURS = {
    "own_cup": N_("Own cup"),
    "no_disposable_tableware": N_("No disposable tableware"),
    "clean_plate": N_("Clean plate"),
    "paperless_receipt": N_("Paperless receipt"),
    "reusable_bag": N_("Reusable bag"),
    "refill_water": N_("Water refill"),
    "metro": N_("Metro"),
    "bus": N_("Bus"),
    "cycling": N_("Cycling"),
    "walking": N_("Walking"),
    "nev": N_("New-energy vehicle"),
}
FIELD_ERRORS = {
    "name": N_("Enter the scene's name (at most 200 characters)."),
    "category": N_("Choose the kind of place."),
    "address": N_("Enter the address (at most 500 characters)."),
    "city_code": N_("Enter the city's 6-digit code, like 440300 for Shenzhen."),
    "district_code": N_("Enter the district's 6-digit code, like 440305 for Nanshan."),
    "opening_hours": N_("At most 200 characters."),
    "behaviour_types": N_("Choose at least one behaviour recorded here (at most 20)."),
    "description": N_("At most 5,000 characters."),
    "evidence_links": N_("At most 20 links, one a line."),
}
_SIX_DIGITS = re.compile(r"\d{6}")
FIELD_LABELS = {
    "name": N_("Name of the scene"),
    "category": N_("Kind of place"),
    "address": N_("Address"),
    "city_code": N_("City code"),
    "district_code": N_("District code"),
    "lat": N_("Latitude"),
    "lng": N_("Longitude"),
    "opening_hours": N_("Opening hours"),
    "behaviour_types": N_("Low-carbon behaviours recorded here"),
    "description": N_("Description"),
    "evidence_links": N_("Evidence links"),
}
FIELDS = (
    "name",
    "category",
    "address",
    "city_code",
    "district_code",
    "lat",
    "lng",
    "opening_hours",
    "description",
    "evidence_links",
)


def behaviour_label(code: str) -> str:
    return gettext(BEHAVIOURS[code]) if code in BEHAVIOURS else code


def category_label(code: str) -> str:
    return next((gettext(label) for value, label, _ in CATEGORIES if value == code), code)


WEEKDAYS = (
    ("mon", N_("Mon")),
    ("tue", N_("Tue")),
    ("wed", N_("Wed")),
    ("thu", N_("Thu")),
    ("fri", N_("Fri")),
    ("sat", N_("Sat")),
    ("sun", N_("Sun")),
    ("holidays", N_("Public holidays")),
)
_DAY_HOURS = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun|holidays) (\S.*)$")


def _opening_hours(value: Any, *, labels: bool = True) -> str:
    """Opening hours as text: by weekday in order (with the days' names, or their codes for the form)."""
    if isinstance(value, dict):
        return "; ".join(
            f"{gettext(label) if labels else day} {value[day]}" for day, label in WEEKDAYS if day in value
        )
    return value or ""


def opening_hours_text(value: Any) -> str:
    """Opening hours as a reader sees them (the experts' workspace shows them too)."""
    return _opening_hours(value)


def _parse_opening_hours(text: str) -> str | dict[str, str] | None:
    """The form's text back: "mon 07:30-21:00; sat 09:00-22:00" is by weekday, anything else free text."""
    text = text.strip()
    parts = [_DAY_HOURS.match(p.strip()) for p in text.split(";")]
    if text and all(parts):
        return {m.group(1): m.group(2).strip() for m in parts if m}
    return text or None


def _values_of(scene: SceneRead) -> dict[str, Any]:
    """A scene (or its pending proposal) as the form shows it."""
    fields = (
        scene.change.proposed if scene.change and scene.change.status == "submitted" else scene.model_dump()
    )
    return {
        **{k: "" for k in FIELDS},
        **{
            k: fields.get(k)
            for k in ("name", "category", "address", "city_code", "district_code", "description")
        },
        "lat": f"{fields['lat']}",
        "lng": f"{fields['lng']}",
        "opening_hours": _opening_hours(fields.get("opening_hours"), labels=False),
        "evidence_links": "\n".join(fields.get("evidence_links") or []),
        "behaviour_types": list(fields.get("behaviour_types") or []),
    }


class _Form:
    """The scene form as posted: its values (shown again on error), the parsed fields, the errors."""

    def __init__(self, raw: dict[str, str], behaviour_types: list[str]) -> None:
        self.values: dict[str, Any] = {**raw, "behaviour_types": behaviour_types}
        self.errors: dict[str, str] = {}
        self.fields: dict[str, Any] = {}
        for key in ("lat", "lng"):
            limit = 90 if key == "lat" else 180
            text = raw[key].strip().replace("，", ".").replace(",", ".")
            try:
                number = float(text)
            except ValueError:
                self.errors[key] = gettext("Enter a number in decimal degrees, like %(example)s.") % {
                    "example": "22.54093" if key == "lat" else "113.95281"
                }
                continue
            if not math.isfinite(number) or not -limit <= number <= limit:
                self.errors[key] = (
                    gettext("The latitude must be between -90 and 90.")
                    if key == "lat"
                    else gettext("The longitude must be between -180 and 180.")
                )
                continue
            self.fields[key] = number
        self.fields.update(
            name=raw["name"].strip(),
            category=raw["category"],
            address=raw["address"].strip(),
            city_code=raw["city_code"].strip(),
            district_code=raw["district_code"].strip(),
            opening_hours=_parse_opening_hours(raw["opening_hours"]),
            behaviour_types=behaviour_types,
            description=raw["description"].strip(),
            evidence_links=[line.strip() for line in raw["evidence_links"].splitlines() if line.strip()],
        )
        for key in ("city_code", "district_code"):
            if not _SIX_DIGITS.fullmatch(self.fields[key]):
                self.errors[key] = gettext(FIELD_ERRORS[key])
        if len(raw["opening_hours"].strip()) > 200:
            self.errors["opening_hours"] = gettext(FIELD_ERRORS["opening_hours"])

    def parse(self, model: type[SceneCreate] | type[SceneUpdate]) -> Any:
        try:
            data = model.model_validate({k: v for k, v in self.fields.items() if k not in self.errors})
        except ValidationError as exc:
            for error in exc.errors():
                field = str(error["loc"][0])
                self.errors.setdefault(field, gettext(FIELD_ERRORS.get(field, N_("Check this value."))))
            return None
        return None if self.errors else data

    def refused(self, exc: DomainError) -> None:
        """The service's refusal, beside the field it is about."""
        if isinstance(exc, UnknownCategory):
            self.errors["category"] = gettext(FIELD_ERRORS["category"])
        elif isinstance(exc, CoordinatesOutOfRange):
            self.errors["lat"] = gettext("The latitude must be between -90 and 90.")
        elif isinstance(exc, InvalidDivisionCode):
            if exc.detail.startswith("city_code"):
                self.errors["city_code"] = gettext(
                    "Not a city code: 6 digits ending in 00, like 440300 for Shenzhen."
                )
            else:
                self.errors["district_code"] = gettext(
                    "Not a district of this city: 6 digits beginning like the city's, like 440305 for Nanshan."
                )
        elif isinstance(exc, UnknownBehaviourType):
            self.errors["behaviour_types"] = gettext("Choose behaviours from the list only.")
        elif isinstance(exc, InvalidEvidenceLink):
            self.errors["evidence_links"] = gettext(
                "Each line must be a web address beginning with http:// or https://."
            )
        else:
            raise exc


async def _form_context(session: Session, form: dict[str, Any], errors: dict[str, str], **extra: Any) -> dict:
    accepted = (await service.accepted_behaviour_types(session)).behaviour_types
    return {
        "form": form,
        "errors": errors,
        "categories": [(value, gettext(label), gettext(hint)) for value, label, hint in CATEGORIES],
        "districts": [(code, gettext(name)) for code, name in DISTRICTS],
        "behaviours": [(code, behaviour_label(code)) for code in accepted],
        **extra,
    }


def _empty_form() -> dict[str, Any]:
    return {
        **{k: "" for k in FIELDS},
        "city_code": "440300",
        "category": "business_premises",
        "behaviour_types": [],
    }


FormText = Annotated[Text, Form(max_length=6000)]


def _scene_form(
    name: FormText = "",
    category: FormText = "",
    address: FormText = "",
    city_code: FormText = "",
    district_code: FormText = "",
    lat: FormText = "",
    lng: FormText = "",
    opening_hours: FormText = "",
    description: FormText = "",
    evidence_links: FormText = "",
    behaviour_types: Annotated[list[Text], Form(max_length=50)] = [],  # noqa: B006 - FastAPI copies defaults
) -> _Form:
    raw = dict(
        name=name, category=category, address=address, city_code=city_code, district_code=district_code,
        lat=lat, lng=lng, opening_hours=opening_hours, description=description, evidence_links=evidence_links,
    )  # fmt: skip
    return _Form(raw, behaviour_types)


# The scene form's fields, read once for an application and for a change.
SceneForm = Annotated[_Form, Depends(_scene_form)]


@router.get("", name="scene_operator")
async def home(request: Request, session: Session, viewer: Operator, cursor: Cursor = None) -> Response:
    result = await service.list_(session, viewer.principal, status=None, limit=20, cursor=cursor)
    return render(
        request,
        "scenes/operator_home.html",
        {"scenes": result.items, "next_cursor": result.next_cursor, "first_page": cursor is None},
    )


@router.get("/scenes/new", name="scene_new")
async def new_scene_form(request: Request, session: Session, viewer: Operator) -> Response:
    return render(
        request, "scenes/scene_form.html", await _form_context(session, _empty_form(), {}, scene=None)
    )


@router.post("/scenes/new")
async def new_scene(
    request: Request,
    session: Session,
    viewer: Operator,
    form: SceneForm,
) -> Response:
    data = form.parse(SceneCreate)
    if data is not None:
        try:
            scene = await service.apply(session, viewer.principal, data)
        except DomainError as exc:
            form.refused(exc)
        else:
            return RedirectResponse(f"/scene-operator/scenes/{scene.id}?applied=1", status_code=303)
    ctx = await _form_context(session, form.values, form.errors, scene=None)
    return render(request, "scenes/scene_form.html", ctx, status_code=400)


@router.get("/scenes/{scene_id}", name="scene_detail")
async def scene_detail(
    request: Request,
    session: Session,
    viewer: Operator,
    scene_id: uuid.UUID,
    applied: Annotated[Text | None, Query(max_length=10)] = None,
    changed: Annotated[Text | None, Query(max_length=10)] = None,
) -> Response:
    overview = await service.operator_overview(session, viewer.principal, scene_id)
    scene = overview.scene
    activity = overview.activity
    proposed = scene.change.proposed if scene.change else None
    return render(
        request,
        "scenes/operator_scene.html",
        {
            "scene": scene,
            "review": overview.review,
            "change_review": overview.change_review,
            "activity": activity,
            "category": category_label(scene.category),
            "behaviours": [behaviour_label(b) for b in scene.behaviour_types],
            "opening_hours": _opening_hours(scene.opening_hours),
            "by_type": [(behaviour_label(t), n, g) for t, (n, g) in sorted(activity.by_type.items())],
            "by_month": [
                (r.month, behaviour_label(r.behaviour_type), r.records, r.reduction_g, r.points)
                for r in activity.rows
            ],
            "proposed_fields": [
                gettext(label)
                for k, label in FIELD_LABELS.items()
                if proposed and proposed.get(k) != getattr(scene, k)
            ],
            "applied": applied is not None,
            "changed": changed is not None,
        },
    )


@router.get("/scenes/{scene_id}/change", name="scene_change")
async def change_form(request: Request, session: Session, viewer: Operator, scene_id: uuid.UUID) -> Response:
    scene = await service.read(session, viewer.principal, scene_id)
    return render(
        request, "scenes/scene_form.html", await _form_context(session, _values_of(scene), {}, scene=scene)
    )


@router.post("/scenes/{scene_id}/change")
async def change(
    request: Request,
    session: Session,
    viewer: Operator,
    scene_id: uuid.UUID,
    form: SceneForm,
) -> Response:
    data = form.parse(SceneUpdate)
    refusal = None
    if data is not None:
        try:
            await service.revise(session, viewer.principal, scene_id, data)
        except ChangeUnderReview:
            refusal = gettext(
                "A change to this scene is under the experts' review: wait for its decision before proposing another."
            )
        except InvalidTransition:
            refusal = gettext("A scene in this state cannot be changed.")
        except DomainError as exc:
            form.refused(exc)
        else:
            return RedirectResponse(f"/scene-operator/scenes/{scene_id}?changed=1", status_code=303)
    scene = await service.read(session, viewer.principal, scene_id)
    ctx = await _form_context(session, form.values, form.errors, scene=scene, refusal=refusal)
    return render(request, "scenes/scene_form.html", ctx, status_code=409 if refusal else 400)
