"""The authority's console (``/console``): the queues with their counts, and a page for each decision.

Every page needs a signed-in authority account. Each decision calls the service function its JSON
route calls (``POST /v1/organizations/{id}/approve`` → :func:`app.organizations.service.decide`, …),
re-renders the form with the error beside its field, shows a refusal of the service as a message
(never a 500) and redirects after success, to the subject's page, where the decision and its audit
entry are shown. The dashboards, the audit viewer, ledger health and the sandbox clock are
``/console/dashboards``, ``/console/audit``, ``/console/health`` and ``/console/clock``.
"""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from app.auth.dependencies import Session
from app.cer import prices, registry
from app.cer import service as cer_service
from app.cer.schemas import PriceIn, ReviewOpen
from app.core import audit, clock
from app.core.errors import DomainError
from app.core.types import Text
from app.dashboards import service as dashboards_service
from app.experts import service as experts_service
from app.experts.schemas import ExpertCreate, ExpertUpdate
from app.methodologies import service as methodologies_service
from app.methodologies.schemas import ExchangeRuleCreate, MethodologyCreate
from app.organizations import service as org_service
from app.points import service as points_service
from app.reviews import service as reviews_service
from app.reviews.draw import draw
from app.reviews.schemas import PanelOpen
from app.scenes import service as scenes_service
from app.scenes.pages import DISTRICTS, FIELD_LABELS, behaviour_label, category_label
from app.scenes.schemas import SceneReview
from app.users import me
from app.users.pages import behaviour_rows, history_rows
from app.web import paging
from app.web.dependencies import page_router, require_viewer, safe_next
from app.web.i18n import N_, gettext, zone
from app.web.sessions import Viewer
from app.web.templating import render

router = page_router()
Authority = Annotated[Viewer, Depends(require_viewer("authority"))]
PAGE_SIZE = 50
PERSON_PAGE_SIZE = 20  # a person's history and behaviours, two lists on one page
QUEUE_SIZE = 100
Reason = Annotated[Text, Form(max_length=6000)]

# The service's refusals, in the words of the console (by problem code); others show their own detail.
REFUSALS = {
    "invalid_transition": N_(
        "This is not possible in the subject's present state. Reload the page to see it."
    ),
    "invalid_project_state": N_(
        "The project is not at the stage this step needs. Reload the page to see it."
    ),
    "not_enough_experts": N_(
        "There are not enough eligible experts in this field for a panel of this size. Choose a smaller panel "
        "or another field, or add experts to the pool."
    ),
    "panel_already_open": N_("A panel is already open on this subject."),
    "opinions_missing": N_("Not every opinion the panel needs is in yet."),
    "panel_closed": N_("This panel has already been decided."),
    "overlapping_effective_period": N_(
        "Its period overlaps another published version: change the period first."
    ),
    "review_not_passed": N_("The expert review has not passed (yet), so this step cannot be taken."),
    "not_filed": N_("The project is not filed yet, so nothing can be issued."),
    "self_verification": N_("This verifier is the project's owner or the report's compiler: choose another."),
    "not_a_verifier": N_("This organisation is not an approved verifier."),
    "insufficient_points": N_("The account does not hold that many points."),
    "account_not_found": N_("There is no points account with this id."),
    "not_a_trading_day": N_("That day is a weekend or a holiday: no closing price is recorded for it."),
    "future_date": N_("That day has not come yet."),
    "invalid_price": N_("Enter the price in yuan with at most two decimals, e.g. 78.45."),
    "username_taken": N_("This username is taken: choose another."),
    "unknown_field": N_("Choose a field of expertise from the list."),
    "version_exists": N_("That version exists already."),
}

ORG_KINDS = {
    "operator": N_("App operator"),
    "merchant": N_("Merchant"),
    "scene_operator": N_("Scene operator"),
    "verifier": N_("Verifier"),
    "buyer": N_("Buyer"),
}
ORG_DECISIONS = {
    # decision: (label, from which statuses, reason required)
    "approve": (N_("Approve"), ("pending",), False),
    "reject": (N_("Reject"), ("pending",), True),
    "suspend": (N_("Suspend"), ("approved",), True),
    "reinstate": (N_("Reinstate"), ("suspended",), True),
}
VERSION_ACTIONS = {
    # action: (label, from which status)
    "submit": (N_("Submit for review"), "draft"),
    "publish": (N_("Publish"), "under_review"),
    "retire": (N_("Retire"), "published"),
}
VERSION_STATUSES = ("draft", "under_review", "published", "retired")
FIELD_NAMES = {
    "travel": N_("Green travel"),
    "buildings": N_("Buildings"),
    "energy": N_("Energy"),
    "forestry": N_("Forestry"),
    "retail": N_("Retail and catering"),
    "waste": N_("Waste"),
    "agriculture": N_("Agriculture"),
    "ocean": N_("Ocean"),
    "verification": N_("Verification"),
    "data": N_("Data"),
}
# The CER project's stages as the home page counts them: (key, label, statuses).
CER_STAGES = (
    ("publicity", N_("In publicity"), ("publicity",)),
    ("verification", N_("Verification"), ("submitted", "verification")),
    ("review", N_("Expert review"), ("verified", "under_review")),
    ("filing", N_("Filing"), ("reviewed",)),
    ("issuance", N_("Issuance"), ("filed",)),
    ("issued", N_("Issued"), ("issued",)),
)
CER_STAGE_OF = {key: (label, statuses) for key, label, statuses in CER_STAGES}
CER_STATUS = {
    "publicity": N_("In publicity"),
    "submitted": N_("Waiting for a verifier"),
    "verification": N_("Being verified"),
    "verified": N_("Verified: open the expert review"),
    "under_review": N_("Expert review under way"),
    "reviewed": N_("Reviewed: file or reject"),
    "filed": N_("Filed: issue"),
    "issued": N_("Issued"),
    "rejected": N_("Rejected"),
    "frozen": N_("Frozen (clawed back)"),
}
# Home counts that are a state, not a queue of work waiting (never in the amber "due" style).
STANDING = frozenset(("/console/organizations?status=approved", "/console/organizations?status=suspended"))
SCENE_DECISIONS = {
    # decision: (label, from which statuses) — the authority's decisions on an approved scene
    "suspend": (N_("Suspend"), ("approved",)),
    "reinstate": (N_("Reinstate"), ("suspended",)),
    "revoke": (N_("Revoke for good"), ("approved", "suspended")),
}
# What a review panel reviews, in words (the panel's subject_type).
PANEL_SUBJECTS = {
    "scene": N_("Scene application"),
    "scene_change": N_("Change request"),
    "cer_project": N_("CER project"),
    "methodology_version": N_("Methodology version"),
}
SCENE_QUEUES = {
    "applications": N_("Applications waiting for a panel"),
    "review": N_("Applications under review"),
    "changes": N_("Change requests"),
}


def district_label(code: str) -> str:
    """A Shenzhen district by its name (南山区), any other code as it is."""
    return next((gettext(name) for value, name in DISTRICTS if value == code), code)


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def refusal(exc: DomainError) -> str:
    """A service's refusal as the console says it."""
    message = REFUSALS.get(exc.code)
    if message:
        return gettext(message)
    return gettext("The platform refused this: %(detail)s") % {"detail": exc.detail}


def _labels(table: dict[str, str]) -> dict[str, str]:
    return {key: gettext(label) for key, label in table.items()}


# Actors that are no account: who they are in words.
ACTOR_WORDS = {
    "public": N_("An applicant (not signed in)"),
    "platform": N_("The platform (automatic)"),
}


@dataclass(frozen=True)
class Trail:
    """The audit entries about a subject, and each actor as people read it (a name, not role:uuid)."""

    entries: list[audit.SubjectEntry]
    actors: dict[str, str]


async def _trail(session: Any, subject_type: str, *ids: Any) -> Trail:
    entries = await audit.entries_for(session, subject_type, [str(i) for i in ids if i is not None])
    names = await dashboards_service.actor_names(session, [e.actor for e in entries])
    for e in entries:
        if e.actor in ACTOR_WORDS:
            names[e.actor] = gettext(ACTOR_WORDS[e.actor])
    return Trail(entries, names)


def _reason_error(reason: str, required: bool = True) -> str | None:
    if required and not reason.strip():
        return gettext("Give the reason: it is recorded with the decision and shown to the applicant.")
    if len(reason.strip()) > 5000:
        return gettext("The reason can be at most 5,000 characters.")
    return None


def _local_moment(value: str) -> datetime | None:
    """A ``datetime-local`` value read in the platform's time zone; None when empty; ValueError when wrong."""
    value = value.strip()
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=zone())


def _local_input(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(zone()).strftime("%Y-%m-%dT%H:%M")


def _whole(value: str, low: int, high: int) -> int | None:
    try:
        n = int(value.strip())
    except ValueError:
        return None
    return n if low <= n <= high else None


# ---- home ------------------------------------------------------------------------------------------------


@router.get("/console", name="console_home")
async def home(request: Request, session: Session, viewer: Authority) -> Response:
    orgs = await org_service.count_by_status(session)
    versions = await methodologies_service.count_by_status(session)
    scenes = await scenes_service.queue_counts(session)
    projects = await cer_service.count_by_status(session)
    objections = await cer_service.with_unanswered_objections(session, limit=QUEUE_SIZE)
    queues = [
        (gettext("Organisations"), [
            (gettext("Applications to decide"), orgs.get("pending", 0), "/console/organizations?status=pending"),
            (gettext("Suspended"), orgs.get("suspended", 0), "/console/organizations?status=suspended"),
            (gettext("Approved"), orgs.get("approved", 0), "/console/organizations?status=approved"),
        ]),
        (gettext("Methodologies and the exchange rule"), [
            (gettext("Methodology versions under review"), versions["methodology"].get("under_review", 0),
             "/console/methodologies?status=under_review"),
            (gettext("Methodology drafts"), versions["methodology"].get("draft", 0),
             "/console/methodologies?status=draft"),
            (gettext("Exchange-rule versions under review"), versions["exchange_rule"].get("under_review", 0),
             "/console/exchange-rules?status=under_review"),
        ]),
        (gettext("Scenes"), [
            (gettext("Applications waiting for a panel"), scenes.get("submitted", 0),
             "/console/scenes?queue=applications"),
            (gettext("Panels waiting for a decision"), scenes.get("under_review", 0), "/console/scenes?queue=review"),
            (gettext("Change requests"), scenes["change_submitted"] + scenes["change_under_review"],
             "/console/scenes?queue=changes"),
        ]),
        (gettext("Certified emission reductions"), [
            *[
                (gettext(label), sum(projects.get(s, 0) for s in statuses), f"/console/cer?stage={key}")
                for key, label, statuses in CER_STAGES
                if key != "issued"
            ],
            (gettext("Projects with objections to answer"), len(objections), "/console/cer?stage=objections"),
        ]),
    ]  # fmt: skip
    # A count is amber only when it is work waiting: the standing counts are shown plainly.
    marked = [
        (title, [(label, count, href, href not in STANDING) for label, count, href in items])
        for title, items in queues
    ]
    return render(request, "console/home.html", {"queues": marked})


# ---- organisations ---------------------------------------------------------------------------------------


@router.get("/console/organizations", name="console_organizations")
async def organizations(
    request: Request,
    session: Session,
    viewer: Authority,
    status: Annotated[Text | None, Query(max_length=20)] = "pending",
    kind: Annotated[Text | None, Query(max_length=30)] = None,
    cursor: Annotated[Text | None, Query(max_length=500)] = None,
) -> Response:
    status = status if status in ("pending", "approved", "rejected", "suspended") else None
    kind = kind if kind in ORG_KINDS else None
    result = await org_service.list_(session, status=status, kind=kind, limit=PAGE_SIZE, cursor=cursor)
    return render(
        request,
        "console/organizations.html",
        {
            "orgs": result["items"],
            "status": status,
            "kind": kind,
            "kinds": _labels(ORG_KINDS),
            **paging.links(
                request.url.path, {"status": status or "", "kind": kind}, result["next_cursor"], cursor
            ),
        },
    )


async def _organization_page(
    request: Request, session: Any, org_id: uuid.UUID, *, errors: dict | None = None, status: int = 200
) -> Response:
    org = await org_service.get(session, org_id)
    decisions = [
        (name, gettext(label), needs_reason)
        for name, (label, sources, needs_reason) in ORG_DECISIONS.items()
        if org.status in sources
    ]
    return render(
        request,
        "console/organization.html",
        {
            "org": org,
            "kind_name": gettext(ORG_KINDS.get(org.kind, org.kind)),
            "decisions": decisions,
            "errors": errors or {},
            "trail": await _trail(session, "organization", org.id),
        },
        status_code=status,
    )


@router.get("/console/organizations/{org_id}", name="console_organization")
async def organization(request: Request, session: Session, viewer: Authority, org_id: uuid.UUID) -> Response:
    return await _organization_page(request, session, org_id)


@router.post("/console/organizations/{org_id}/{decision}")
async def decide_organization(
    request: Request,
    session: Session,
    viewer: Authority,
    org_id: uuid.UUID,
    decision: Text,
    reason: Reason = "",
) -> Response:
    if decision not in ORG_DECISIONS:
        return await _organization_page(
            request, session, org_id, errors={"form": gettext("Unknown decision.")}, status=404
        )
    error = _reason_error(reason, ORG_DECISIONS[decision][2])
    if error:
        return await _organization_page(
            request, session, org_id, errors={f"reason_{decision}": error}, status=400
        )
    try:
        await org_service.decide(session, viewer.principal, org_id, decision, reason.strip() or None)
    except DomainError as exc:
        return await _organization_page(
            request, session, org_id, errors={"form": refusal(exc)}, status=exc.status
        )
    return _see_other(f"/console/organizations/{org_id}")


# ---- methodologies and exchange rules ----------------------------------------------------------------------


@router.get("/console/methodologies", name="console_methodologies")
async def methodologies(
    request: Request,
    session: Session,
    viewer: Authority,
    status: Annotated[Text | None, Query(max_length=20)] = "published",
    cursor: Annotated[Text | None, Query(max_length=500)] = None,
) -> Response:
    status = status if status in VERSION_STATUSES else "published"
    result = await methodologies_service.list_methodologies(
        session,
        viewer.principal,
        status=status,
        behaviour_type=None,
        code=None,
        limit=PAGE_SIZE,
        cursor=cursor,
    )
    counts = (await methodologies_service.count_by_status(session))["methodology"]
    return render(
        request,
        "console/methodologies.html",
        {
            "kind": "methodology",
            "versions": result.items,
            "behaviour_names": {v.behaviour_type: behaviour_label(v.behaviour_type) for v in result.items},
            "status": status,
            "counts": counts,
            **paging.links(request.url.path, {"status": status}, result.next_cursor, cursor),
        },
    )


@router.get("/console/exchange-rules", name="console_exchange_rules")
async def exchange_rules(
    request: Request,
    session: Session,
    viewer: Authority,
    status: Annotated[Text | None, Query(max_length=20)] = "published",
    cursor: Annotated[Text | None, Query(max_length=500)] = None,
) -> Response:
    status = status if status in VERSION_STATUSES else "published"
    result = await methodologies_service.list_exchange_rules(
        session, viewer.principal, status=status, limit=PAGE_SIZE, cursor=cursor
    )
    counts = (await methodologies_service.count_by_status(session))["exchange_rule"]
    return render(
        request,
        "console/methodologies.html",
        {
            "kind": "exchange_rule",
            "versions": result.items,
            "status": status,
            "counts": counts,
            **paging.links(request.url.path, {"status": status}, result.next_cursor, cursor),
        },
    )


METHODOLOGY_FIELDS = {
    "code": N_("Enter the methodology's code: letters, digits, - and _ (e.g. sz-metro)."),
    "behaviour_type": N_("Enter the behaviour type in lower-case snake_case (e.g. metro)."),
    "category": N_("Choose travel or scene."),
    "name": N_("Enter a name of 1 to 200 characters."),
    "unit": N_("Enter the unit: a letter then letters, digits, - or _ (e.g. km)."),
    "net_factor_g": N_("Enter grams of CO2e per unit, a number above 0 with at most 4 decimals."),
    "max_quantity_per_record": N_("Enter the most units one record may claim (at most 4 decimals)."),
    "max_quantity_per_day": N_("Enter the most units a person may claim a day, or leave it empty."),
    "citation": N_("The citation can be at most 10,000 characters."),
    "effective_from": N_("Enter the date and time the version comes into force."),
    "effective_to": N_("Enter a date and time after the start, or leave it empty."),
}
RULE_FIELDS = {
    "name": N_("Enter a name of 1 to 200 characters."),
    "points_per_gram": N_("Enter points per gram CO2e, a number above 0 with at most 6 decimals."),
    "daily_cap_points": N_("Enter a whole number of points, or leave it empty for no cap."),
    "lot_lifetime_days": N_("Enter a whole number of days from 1 to 3,650."),
    "effective_from": N_("Enter the date and time the version comes into force."),
    "effective_to": N_("Enter a date and time after the start, or leave it empty."),
}


# The service's refusals of a draft that concern one field: shown beside it, in the form's words.
DRAFT_REFUSAL_FIELDS = {
    "invalid_behaviour_type": "behaviour_type",
    "invalid_code": "code",
    "code_behaviour_type_mismatch": "behaviour_type",
    "non_positive_net_factor": "net_factor_g",
    "invalid_factor": "net_factor_g",
    "invalid_bounds": "max_quantity_per_record",
    "invalid_effective_period": "effective_to",
    "non_positive_rate": "points_per_gram",
    "invalid_cap": "daily_cap_points",
    "invalid_lifetime": "lot_lifetime_days",
    "lifetime_too_long": "lot_lifetime_days",
}


def _draft_refusal(exc: DomainError, messages: dict[str, str]) -> dict[str, str]:
    """A refused draft's error: beside its field when it concerns one, else above the form."""
    name = DRAFT_REFUSAL_FIELDS.get(exc.code)
    if name in messages:
        return {name: gettext(messages[name])}
    return {"form": refusal(exc)}


def _validate(model: Any, raw: dict[str, Any], messages: dict[str, str]) -> tuple[Any, dict[str, str]]:
    """``model`` validated from the form's values, or the errors beside each field."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name in ("effective_from", "effective_to"):
            try:
                values[name] = _local_moment(value)
            except ValueError:
                errors[name] = gettext(messages[name])
        elif isinstance(value, str) and value.strip() == "" and name not in ("citation", "derivation"):
            values[name] = None
        else:
            values[name] = value.strip() if isinstance(value, str) else value
    values = {k: v for k, v in values.items() if v is not None}
    try:
        data = model.model_validate(values)
    except ValidationError as exc:
        data = None
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "form"
            errors.setdefault(field, gettext(messages.get(field, N_("Check this value."))))
    return (None if errors else data), errors


def _version_form(request: Request, kind: str, values: dict, errors: dict, status: int = 200) -> Response:
    return render(
        request,
        "console/version_form.html",
        {"kind": kind, "values": values, "errors": errors},
        status_code=status,
    )


async def _create_version(
    request: Request,
    kind: str,
    raw: dict[str, Any],
    model: Any,
    messages: dict[str, str],
    create: Callable[[Any], Awaitable[Any]],
    listing: str,
) -> Response:
    """A draft version from the form: its page once created, else the form with each error beside its field."""
    data, errors = _validate(model, raw, messages)
    if data is not None:
        try:
            created = await create(data)
        except DomainError as exc:
            errors.update(_draft_refusal(exc, messages))
        else:
            return _see_other(f"{listing}/{created.id}")
    return _version_form(request, kind, raw, errors, status=400)


@router.get("/console/methodologies/new")
async def new_methodology(request: Request, viewer: Authority) -> Response:
    return _version_form(request, "methodology", {"category": "travel"}, {})


@router.post("/console/methodologies/new")
async def create_methodology(
    request: Request,
    session: Session,
    viewer: Authority,
    code: Annotated[Text, Form(max_length=300)] = "",
    behaviour_type: Annotated[Text, Form(max_length=300)] = "",
    category: Annotated[Text, Form(max_length=20)] = "travel",
    name: Annotated[Text, Form(max_length=300)] = "",
    unit: Annotated[Text, Form(max_length=50)] = "",
    net_factor_g: Annotated[Text, Form(max_length=50)] = "",
    max_quantity_per_record: Annotated[Text, Form(max_length=50)] = "",
    max_quantity_per_day: Annotated[Text, Form(max_length=50)] = "",
    citation: Annotated[Text, Form(max_length=10000)] = "",
    derivation: Annotated[Text, Form(max_length=10000)] = "",
    effective_from: Annotated[Text, Form(max_length=40)] = "",
    effective_to: Annotated[Text, Form(max_length=40)] = "",
) -> Response:
    raw = {
        "code": code,
        "behaviour_type": behaviour_type,
        "category": category,
        "name": name,
        "unit": unit,
        "net_factor_g": net_factor_g,
        "max_quantity_per_record": max_quantity_per_record,
        "max_quantity_per_day": max_quantity_per_day,
        "citation": citation,
        "derivation": derivation,
        "effective_from": effective_from,
        "effective_to": effective_to,
    }
    return await _create_version(
        request, "methodology", raw, MethodologyCreate, METHODOLOGY_FIELDS,
        lambda data: methodologies_service.create_methodology(session, viewer.principal, data),
        "/console/methodologies",
    )  # fmt: skip


@router.get("/console/exchange-rules/new")
async def new_exchange_rule(request: Request, viewer: Authority) -> Response:
    return _version_form(request, "exchange_rule", {}, {})


@router.post("/console/exchange-rules/new")
async def create_exchange_rule(
    request: Request,
    session: Session,
    viewer: Authority,
    name: Annotated[Text, Form(max_length=300)] = "",
    points_per_gram: Annotated[Text, Form(max_length=50)] = "",
    daily_cap_points: Annotated[Text, Form(max_length=50)] = "",
    lot_lifetime_days: Annotated[Text, Form(max_length=50)] = "",
    effective_from: Annotated[Text, Form(max_length=40)] = "",
    effective_to: Annotated[Text, Form(max_length=40)] = "",
) -> Response:
    raw = {
        "name": name,
        "points_per_gram": points_per_gram,
        "daily_cap_points": daily_cap_points,
        "lot_lifetime_days": lot_lifetime_days,
        "effective_from": effective_from,
        "effective_to": effective_to,
    }
    return await _create_version(
        request, "exchange_rule", raw, ExchangeRuleCreate, RULE_FIELDS,
        lambda data: methodologies_service.create_exchange_rule(session, viewer.principal, data),
        "/console/exchange-rules",
    )  # fmt: skip


async def _version_page(
    request: Request,
    session: Any,
    viewer: Viewer,
    kind: str,
    version_id: uuid.UUID,
    *,
    error: str | None = None,
    values: dict | None = None,
    errors: dict | None = None,
    status: int = 200,
) -> Response:
    panel = None
    if kind == "methodology":
        latest = await reviews_service.latest_panel(session, "methodology_version", str(version_id))
        panel = await reviews_service.view(session, viewer.principal, latest) if latest else None
    if kind == "methodology":
        version: Any = await methodologies_service.get_methodology(session, viewer.principal, version_id)
    else:
        version = await methodologies_service.get_exchange_rule(session, viewer.principal, version_id)
    actions = [
        (name, gettext(label))
        for name, (label, source) in VERSION_ACTIONS.items()
        if version.status == source
    ]
    return render(
        request,
        "console/version.html",
        {
            "kind": kind,
            "version": version,
            "behaviour_name": behaviour_label(version.behaviour_type) if kind == "methodology" else None,
            "actions": actions,
            "error": error,
            "panel": panel,
            "needs_review": kind == "methodology"
            and version.status == "under_review"
            and (panel is None or (panel.status == "decided" and panel.outcome == "fail")),
            "fields": [(f, gettext(FIELD_NAMES.get(f, f))) for f in experts_service.FIELDS],
            "values": values or {"size": "3", "field": "travel"},
            "errors": errors or {},
            "trail": await _trail(session, kind, version.id),
        },
        status_code=status,
    )


@router.get("/console/methodologies/{version_id}")
async def methodology(
    request: Request, session: Session, viewer: Authority, version_id: uuid.UUID
) -> Response:
    return await _version_page(request, session, viewer, "methodology", version_id)


@router.get("/console/exchange-rules/{version_id}")
async def exchange_rule(
    request: Request, session: Session, viewer: Authority, version_id: uuid.UUID
) -> Response:
    return await _version_page(request, session, viewer, "exchange_rule", version_id)


VERSION_CALLS = {
    ("methodology", "submit"): methodologies_service.submit_methodology,
    ("methodology", "publish"): methodologies_service.publish_methodology,
    ("methodology", "retire"): methodologies_service.retire_methodology,
    ("exchange_rule", "submit"): methodologies_service.submit_exchange_rule,
    ("exchange_rule", "publish"): methodologies_service.publish_exchange_rule,
    ("exchange_rule", "retire"): methodologies_service.retire_exchange_rule,
}


async def _version_action(
    request: Request, session: Any, viewer: Viewer, kind: str, version_id: uuid.UUID, action: str
) -> Response:
    path = "methodologies" if kind == "methodology" else "exchange-rules"
    call = VERSION_CALLS.get((kind, action))
    if call is None:
        return await _version_page(
            request, session, viewer, kind, version_id, error=gettext("Unknown action."), status=404
        )
    try:
        await call(session, viewer.principal, version_id)
    except DomainError as exc:
        if exc.status == 404:
            raise
        return await _version_page(
            request, session, viewer, kind, version_id, error=refusal(exc), status=exc.status
        )
    return _see_other(f"/console/{path}/{version_id}")


@router.post("/console/methodologies/{version_id}/review")
async def open_methodology_review(
    request: Request,
    session: Session,
    viewer: Authority,
    version_id: uuid.UUID,
    field: Annotated[Text, Form(max_length=30)] = "",
    size: Annotated[Text, Form(max_length=20)] = "3",
    quorum: Annotated[Text, Form(max_length=20)] = "",
    seed: Annotated[Text, Form(max_length=300)] = "",
) -> Response:
    """The expert review a methodology version needs before it is published (SZ 12–13)."""
    version = await methodologies_service.get_methodology(session, viewer.principal, version_id)
    values = {"field": field, "size": size, "quorum": quorum, "seed": seed}
    parsed, errors = _panel_form(size, quorum, seed)
    if field not in experts_service.FIELDS:
        errors["field"] = gettext("Choose a field of expertise from the list.")
    if errors:
        return await _version_page(
            request, session, viewer, "methodology", version_id, values=values, errors=errors, status=400
        )
    try:
        data = PanelOpen(
            subject_type="methodology_version", subject_id=str(version.id), field=field, **parsed
        )
        panel = await reviews_service.open_from_request(session, viewer.principal, data)
    except DomainError as exc:
        return await _version_page(
            request,
            session,
            viewer,
            "methodology",
            version_id,
            values=values,
            error=refusal(exc),
            status=exc.status,
        )
    return _see_other(
        f"/console/panels/{panel.id}?{urlencode({'back': f'/console/methodologies/{version_id}'})}"
    )


@router.post("/console/methodologies/{version_id}/{action}")
async def methodology_action(
    request: Request, session: Session, viewer: Authority, version_id: uuid.UUID, action: Text
) -> Response:
    return await _version_action(request, session, viewer, "methodology", version_id, action)


@router.post("/console/exchange-rules/{version_id}/{action}")
async def exchange_rule_action(
    request: Request, session: Session, viewer: Authority, version_id: uuid.UUID, action: Text
) -> Response:
    return await _version_action(request, session, viewer, "exchange_rule", version_id, action)


# ---- scenes and their panels -----------------------------------------------------------------------------


@router.get("/console/scenes", name="console_scenes")
async def scenes(
    request: Request,
    session: Session,
    viewer: Authority,
    queue: Annotated[Text | None, Query(max_length=20)] = "applications",
    cursor: Annotated[Text | None, Query(max_length=500)] = None,
) -> Response:
    queue = queue if queue in SCENE_QUEUES else "applications"
    next_cursor = None
    if queue == "changes":
        found = await scenes_service.with_changes_waiting(session, limit=QUEUE_SIZE)
    else:
        status = "submitted" if queue == "applications" else "under_review"
        result = await scenes_service.list_(
            session, viewer.principal, status=status, limit=PAGE_SIZE, cursor=cursor
        )
        found, next_cursor = result.items, result.next_cursor
    counts = await scenes_service.queue_counts(session)
    return render(
        request,
        "console/scenes.html",
        {
            "scenes": found,
            "queue": queue,
            "queues": _labels(SCENE_QUEUES),
            "counts": {
                "applications": counts.get("submitted", 0),
                "review": counts.get("under_review", 0),
                "changes": counts["change_submitted"] + counts["change_under_review"],
            },
            "names": await org_service.names(session, [s.operator_id for s in found]),
            "districts": {s.district_code: district_label(s.district_code) for s in found},
            **paging.links(request.url.path, {"queue": queue}, next_cursor, cursor),
        },
    )


async def _scene_page(
    request: Request,
    session: Any,
    viewer: Viewer,
    scene_id: uuid.UUID,
    *,
    values: dict | None = None,
    errors: dict | None = None,
    status: int = 200,
) -> Response:
    scene = await scenes_service.read(session, viewer.principal, scene_id)
    change = scene.change
    panel_id = (
        change.review_panel_id
        if change is not None and change.status in ("submitted", "under_review")
        else scene.review_panel_id
    )
    panel = await reviews_service.read(session, viewer.principal, panel_id) if panel_id else None
    can_open = scene.status == "submitted" or (
        scene.status == "approved" and change is not None and change.status == "submitted"
    )
    return render(
        request,
        "console/scene.html",
        {
            "scene": scene,
            "category_name": category_label(scene.category),
            "behaviour_names": [behaviour_label(b) for b in scene.behaviour_types],
            "district_name": district_label(scene.district_code),
            "change": change,
            "change_labels": {key: gettext(label) for key, label in FIELD_LABELS.items()},
            "operator": await org_service.get(session, scene.operator_id),
            "panel": panel,
            "can_open": can_open,
            "decisions": [
                (name, gettext(label))
                for name, (label, sources) in SCENE_DECISIONS.items()
                if scene.status in sources
            ],
            "fields": [(f, gettext(FIELD_NAMES.get(f, f))) for f in experts_service.FIELDS],
            "values": values or {"size": "3", "field": ""},
            "errors": errors or {},
            "trail": await _trail(session, "scene", scene.id),
        },
        status_code=status,
    )


@router.get("/console/scenes/{scene_id}", name="console_scene")
async def scene(request: Request, session: Session, viewer: Authority, scene_id: uuid.UUID) -> Response:
    return await _scene_page(request, session, viewer, scene_id)


def _panel_form(size: str, quorum: str, seed: str) -> tuple[dict[str, Any], dict[str, str]]:
    errors: dict[str, str] = {}
    n = _whole(size, 1, 25)
    if n is None:
        errors["size"] = gettext("Enter the panel's size: a whole number from 1 to 25.")
    q = None
    if quorum.strip():
        q = _whole(quorum, 1, 25)
        if q is None or (n is not None and q > n):
            errors["quorum"] = gettext(
                "Enter how many opinions are needed, from 1 to the panel's size, or leave it empty."
            )
    seed = seed.strip()
    if seed and not (8 <= len(seed) <= 200 and seed.isprintable()):
        errors["seed"] = gettext("A seed has 8 to 200 printable characters; leave it empty to draw one.")
    return {"size": n, "quorum": q, "seed": seed or None}, errors


@router.post("/console/scenes/{scene_id}/review")
async def open_scene_review(
    request: Request,
    session: Session,
    viewer: Authority,
    scene_id: uuid.UUID,
    field: Annotated[Text, Form(max_length=30)] = "",
    size: Annotated[Text, Form(max_length=20)] = "3",
    quorum: Annotated[Text, Form(max_length=20)] = "",
    seed: Annotated[Text, Form(max_length=300)] = "",
) -> Response:
    values = {"field": field, "size": size, "quorum": quorum, "seed": seed}
    parsed, errors = _panel_form(size, quorum, seed)
    if field and field not in experts_service.FIELDS:
        errors["field"] = gettext("Choose a field of expertise from the list.")
    if errors:
        return await _scene_page(request, session, viewer, scene_id, values=values, errors=errors, status=400)
    try:
        panel = await scenes_service.open_review(
            session, viewer.principal, scene_id, SceneReview(field=field or None, **parsed)
        )
    except DomainError as exc:
        if exc.status == 404:
            raise
        errors["form"] = refusal(exc)
        return await _scene_page(
            request, session, viewer, scene_id, values=values, errors=errors, status=exc.status
        )
    return _see_other(f"/console/panels/{panel.id}?{urlencode({'back': f'/console/scenes/{scene_id}'})}")


@router.post("/console/scenes/{scene_id}/{decision}")
async def decide_scene(
    request: Request,
    session: Session,
    viewer: Authority,
    scene_id: uuid.UUID,
    decision: Text,
    reason: Reason = "",
) -> Response:
    """Suspend, reinstate or revoke an approved scene, with its reason (``POST /v1/scenes/{id}/{decision}``)."""
    if decision not in SCENE_DECISIONS:
        return await _scene_page(
            request, session, viewer, scene_id, errors={"form": gettext("Unknown decision.")}, status=404
        )
    if error := _reason_error(reason):
        return await _scene_page(
            request, session, viewer, scene_id, values={"reason_" + decision: reason},
            errors={f"reason_{decision}": error}, status=400,
        )  # fmt: skip
    try:
        await scenes_service.decide(session, viewer.principal, scene_id, decision, reason.strip())
    except DomainError as exc:
        if exc.status == 404:
            raise
        return await _scene_page(
            request, session, viewer, scene_id, errors={"form": refusal(exc)}, status=exc.status
        )
    return _see_other(f"/console/scenes/{scene_id}")


async def _panel_page(
    request: Request,
    session: Any,
    viewer: Viewer,
    panel_id: uuid.UUID,
    back: str | None,
    *,
    check: bool = False,
    values: dict | None = None,
    errors: dict | None = None,
    status: int = 200,
) -> Response:
    panel = await reviews_service.read(session, viewer.principal, panel_id)
    record = await reviews_service.draw_record(session, panel_id)
    names = await experts_service.names(session, [uuid.UUID(c) for c in record.candidates])
    rerun = draw(record.seed, record.candidates, record.size) if check else None
    back = safe_next(back, "")
    if not back and panel.subject_type == "cer_project":
        back = f"/console/cer/{panel.subject_id}"
    elif not back and panel.subject_type == "scene":
        back = f"/console/scenes/{panel.subject_id}"
    opened_by = (await dashboards_service.actor_names(session, [panel.opened_by])).get(panel.opened_by)
    return render(
        request,
        "console/panel.html",
        {
            "panel": panel,
            "subject_name": gettext(PANEL_SUBJECTS.get(panel.subject_type, panel.subject_type)),
            "opened_by": opened_by or panel.opened_by,
            "record": record,
            "names": {str(k): v for k, v in names.items()},
            "rerun": rerun,
            "same": rerun == record.chosen if rerun is not None else None,
            "back": back or "/console",
            "values": values or {},
            "errors": errors or {},
            "field_name": gettext(FIELD_NAMES.get(panel.field, panel.field)),
            "trail": await _trail(session, "review_panel", panel.id),
        },
        status_code=status,
    )


@router.get("/console/panels/{panel_id}", name="console_panel")
async def panel(
    request: Request,
    session: Session,
    viewer: Authority,
    panel_id: uuid.UUID,
    back: Annotated[Text | None, Query(max_length=2000)] = None,
    check: Annotated[Text | None, Query(max_length=5)] = None,
) -> Response:
    return await _panel_page(request, session, viewer, panel_id, back, check=bool(check))


@router.post("/console/panels/{panel_id}/decision")
async def decide_panel(
    request: Request,
    session: Session,
    viewer: Authority,
    panel_id: uuid.UUID,
    outcome: Annotated[Text, Form(max_length=10)] = "",
    reason: Reason = "",
    back: Annotated[Text, Form(max_length=2000)] = "",
) -> Response:
    errors: dict[str, str] = {}
    if outcome not in ("pass", "fail"):
        errors["outcome"] = gettext("Choose whether the subject passes or fails.")
    if error := _reason_error(reason):
        errors["reason"] = error
    values = {"outcome": outcome, "reason": reason}
    if not errors:
        try:
            await reviews_service.decide(
                session, viewer.principal, panel_id, outcome=outcome, reason=reason.strip()
            )
        except DomainError as exc:
            if exc.status == 404:
                raise
            errors["form"] = refusal(exc)
            return await _panel_page(
                request, session, viewer, panel_id, back, values=values, errors=errors, status=exc.status
            )
        target = f"/console/panels/{panel_id}"
        return _see_other(f"{target}?{urlencode({'back': back})}" if back else target)
    return await _panel_page(
        request, session, viewer, panel_id, back, values=values, errors=errors, status=400
    )


# ---- the expert pool -------------------------------------------------------------------------------------


@router.get("/console/experts", name="console_experts")
async def experts(
    request: Request,
    session: Session,
    viewer: Authority,
    field: Annotated[Text | None, Query(max_length=30)] = None,
    cursor: Annotated[Text | None, Query(max_length=500)] = None,
) -> Response:
    field = field if field in experts_service.FIELDS else None
    result = await experts_service.list_(session, field=field, active=None, limit=PAGE_SIZE, cursor=cursor)
    return render(
        request,
        "console/experts.html",
        {
            "experts": result.items,
            "field": field,
            "fields": [(f, gettext(FIELD_NAMES.get(f, f))) for f in experts_service.FIELDS],
            "field_names": _labels(FIELD_NAMES),
            **paging.links(request.url.path, {"field": field}, result.next_cursor, cursor),
        },
    )


EXPERT_FIELDS = {
    "name": N_("Enter the expert's name (1 to 200 characters)."),
    "fields": N_("Tick at least one field of expertise (at most 10)."),
    "affiliation": N_("Enter the organisation the expert works for (1 to 200 characters)."),
    "affiliation_org_id": N_("Enter the organisation's platform id (a UUID), or leave it empty."),
    "username": N_("Choose a username of 3 to 100 characters: letters, digits and . _ @ - only."),
    "password": N_("Choose a password of at least 10 characters."),
}


def _expert_form(
    request: Request, expert: Any, values: dict, errors: dict, trail: Trail | None = None, status: int = 200
) -> Response:
    return render(
        request,
        "console/expert.html",
        {
            "expert": expert,
            "values": values,
            "errors": errors,
            "fields": [(f, gettext(FIELD_NAMES.get(f, f))) for f in experts_service.FIELDS],
            "trail": trail or Trail([], {}),
        },
        status_code=status,
    )


def _expert_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        field = (
            "affiliation_org_id"
            if loc[:2] == ["affiliation", "org_id"]
            else loc[-1]
            if loc[0] == "account"
            else loc[0]
        )
        errors.setdefault(field, gettext(EXPERT_FIELDS.get(field, N_("Check this value."))))
    return errors


@router.get("/console/experts/new")
async def new_expert(request: Request, viewer: Authority) -> Response:
    return _expert_form(request, None, {"fields": []}, {})


@router.post("/console/experts/new")
async def create_expert(
    request: Request,
    session: Session,
    viewer: Authority,
    name: Annotated[Text, Form(max_length=300)] = "",
    fields: Annotated[list[Text], Form(max_length=20)] = [],  # noqa: B006 - FastAPI copies defaults
    affiliation: Annotated[Text, Form(max_length=300)] = "",
    affiliation_org_id: Annotated[Text, Form(max_length=100)] = "",
    username: Annotated[Text, Form(max_length=200)] = "",
    password: Annotated[Text, Form(max_length=400)] = "",
) -> Response:
    values = {
        "name": name.strip(),
        "fields": fields,
        "affiliation": affiliation.strip(),
        "affiliation_org_id": affiliation_org_id.strip(),
        "username": username.strip(),
    }
    try:
        data = ExpertCreate.model_validate(
            {
                "name": values["name"],
                "fields": fields,
                "affiliation": {
                    "name": values["affiliation"],
                    "org_id": values["affiliation_org_id"] or None,
                },
                "account": {"username": values["username"], "password": password},
            }
        )
    except ValidationError as exc:
        return _expert_form(request, None, values, _expert_errors(exc), status=400)
    try:
        created = await experts_service.create(session, viewer.principal, data)
    except DomainError as exc:
        field = {"username_taken": "username", "unknown_field": "fields"}.get(exc.code, "form")
        return _expert_form(request, None, values, {field: refusal(exc)}, status=exc.status)
    return _see_other(f"/console/experts/{created.id}")


@router.get("/console/experts/{expert_id}", name="console_expert")
async def expert(request: Request, session: Session, viewer: Authority, expert_id: uuid.UUID) -> Response:
    found = await experts_service.read(session, expert_id)
    values = {
        "name": found.name,
        "fields": found.fields,
        "affiliation": found.affiliation.name,
        "affiliation_org_id": str(found.affiliation.org_id or ""),
    }
    return _expert_form(request, found, values, {}, await _trail(session, "expert", found.id))


@router.post("/console/experts/{expert_id}")
async def edit_expert(
    request: Request,
    session: Session,
    viewer: Authority,
    expert_id: uuid.UUID,
    name: Annotated[Text, Form(max_length=300)] = "",
    fields: Annotated[list[Text], Form(max_length=20)] = [],  # noqa: B006 - FastAPI copies defaults
    affiliation: Annotated[Text, Form(max_length=300)] = "",
    affiliation_org_id: Annotated[Text, Form(max_length=100)] = "",
) -> Response:
    found = await experts_service.read(session, expert_id)
    values = {
        "name": name.strip(),
        "fields": fields,
        "affiliation": affiliation.strip(),
        "affiliation_org_id": affiliation_org_id.strip(),
    }
    trail = await _trail(session, "expert", found.id)
    try:
        data = ExpertUpdate.model_validate(
            {
                "name": values["name"],
                "fields": fields,
                "affiliation": {
                    "name": values["affiliation"],
                    "org_id": values["affiliation_org_id"] or None,
                },
            }
        )
    except ValidationError as exc:
        return _expert_form(request, found, values, _expert_errors(exc), trail, status=400)
    try:
        await experts_service.update(session, viewer.principal, expert_id, data)
    except DomainError as exc:
        return _expert_form(request, found, values, {"form": refusal(exc)}, trail, status=exc.status)
    return _see_other(f"/console/experts/{expert_id}")


@router.post("/console/experts/{expert_id}/active")
async def set_expert_active(
    request: Request,
    session: Session,
    viewer: Authority,
    expert_id: uuid.UUID,
    active: Annotated[Text, Form(max_length=5)] = "",
) -> Response:
    await experts_service.update(session, viewer.principal, expert_id, ExpertUpdate(active=active == "true"))
    return _see_other(f"/console/experts/{expert_id}")


# ---- CER projects ----------------------------------------------------------------------------------------


@router.get("/console/cer", name="console_cer")
async def cer_projects(
    request: Request,
    session: Session,
    viewer: Authority,
    stage: Annotated[Text | None, Query(max_length=20)] = "publicity",
) -> Response:
    counts = await cer_service.count_by_status(session)
    objections = await cer_service.with_unanswered_objections(session, limit=QUEUE_SIZE)
    if stage == "objections":
        found = objections
    else:
        stage = stage if stage in CER_STAGE_OF else "publicity"
        found = []
        for status in CER_STAGE_OF[stage][1]:
            result = await cer_service.list_(
                session, viewer.principal, status=status, owner_org_id=None, limit=QUEUE_SIZE, cursor=None
            )
            found.extend(result.items)
    stages = [
        (key, gettext(label), sum(counts.get(s, 0) for s in statuses)) for key, label, statuses in CER_STAGES
    ]
    stages.insert(1, ("objections", gettext("Objections to answer"), len(objections)))
    return render(
        request,
        "console/cer.html",
        {"projects": found, "stage": stage, "stages": stages, "statuses": _labels(CER_STATUS)},
    )


async def _project_page(
    request: Request,
    session: Any,
    viewer: Viewer,
    project_id: uuid.UUID,
    *,
    values: dict | None = None,
    errors: dict | None = None,
    status: int = 200,
) -> Response:
    project = await cer_service.read(session, viewer.principal, project_id)
    verifiers: list[Any] = []
    if project.status in ("submitted", "verification"):
        verifiers = (
            await org_service.list_(session, status="approved", kind="verifier", limit=200, cursor=None)
        )["items"]
    panel = (
        await reviews_service.read(session, viewer.principal, project.review_panel_id)
        if project.review_panel_id
        else None
    )
    names = await org_service.names(session, [project.verifier_org_id])
    trail = await _trail(session, "cer_project", project.id)
    return render(
        request,
        "console/cer_project.html",
        {
            "project": project,
            "status_label": gettext(CER_STATUS.get(project.status, project.status)),
            "verifiers": [
                (str(v.id), v.name)
                for v in verifiers
                if v.id not in (project.owner_org_id, project.compiled_by_org_id)
            ],
            "verifier_name": names.get(project.verifier_org_id) if project.verifier_org_id else None,
            "objections": await cer_service.list_objections(session, viewer.principal, project_id),
            "panel": panel,
            "values": values or {"size": "3"},
            "errors": errors or {},
            "trail": trail,
            "clawback": next((e.data for e in trail.entries if e.action == "cer.clawback"), None),
        },
        status_code=status,
    )


@router.get("/console/cer/{project_id}", name="console_cer_project")
async def cer_project(
    request: Request, session: Session, viewer: Authority, project_id: uuid.UUID
) -> Response:
    return await _project_page(request, session, viewer, project_id)


async def _project_step(
    request: Request, session: Any, viewer: Viewer, project_id: uuid.UUID, values: dict, step: Any
) -> Response:
    """Run one of the authority's steps on the project; its refusal is shown on the project's page."""
    try:
        await step
    except DomainError as exc:
        if exc.status == 404 and exc.code == "project_not_found":
            raise
        return await _project_page(
            request,
            session,
            viewer,
            project_id,
            values=values,
            errors={"form": refusal(exc)},
            status=exc.status,
        )
    return _see_other(f"/console/cer/{project_id}")


@router.post("/console/cer/{project_id}/verifier")
async def assign_verifier(
    request: Request,
    session: Session,
    viewer: Authority,
    project_id: uuid.UUID,
    verifier_org_id: Annotated[Text, Form(max_length=100)] = "",
) -> Response:
    try:
        verifier = uuid.UUID(verifier_org_id.strip())
    except ValueError:
        return await _project_page(
            request, session, viewer, project_id,
            errors={"verifier_org_id": gettext("Choose the verifier.")}, status=400,
        )  # fmt: skip
    return await _project_step(
        request, session, viewer, project_id, {},
        cer_service.assign_verifier(session, viewer.principal, project_id, verifier),
    )  # fmt: skip


@router.post("/console/cer/{project_id}/review")
async def open_project_review(
    request: Request,
    session: Session,
    viewer: Authority,
    project_id: uuid.UUID,
    size: Annotated[Text, Form(max_length=20)] = "3",
    quorum: Annotated[Text, Form(max_length=20)] = "",
    seed: Annotated[Text, Form(max_length=300)] = "",
) -> Response:
    values = {"size": size, "quorum": quorum, "seed": seed}
    parsed, errors = _panel_form(size, quorum, seed)
    if errors:
        return await _project_page(
            request, session, viewer, project_id, values=values, errors=errors, status=400
        )
    return await _project_step(
        request, session, viewer, project_id, values,
        cer_service.open_review(session, viewer.principal, project_id, ReviewOpen(**parsed)),
    )  # fmt: skip


@router.post("/console/cer/{project_id}/filing")
async def file_project(
    request: Request,
    session: Session,
    viewer: Authority,
    project_id: uuid.UUID,
    outcome: Annotated[Text, Form(max_length=10)] = "",
    reason: Reason = "",
) -> Response:
    values = {"outcome": outcome, "reason": reason}
    errors: dict[str, str] = {}
    if outcome not in ("filed", "rejected"):
        errors["outcome"] = gettext("Choose to file the project or to reject it.")
    if error := _reason_error(reason):
        errors["reason"] = error
    if errors:
        return await _project_page(
            request, session, viewer, project_id, values=values, errors=errors, status=400
        )
    return await _project_step(
        request, session, viewer, project_id, values,
        cer_service.file(session, viewer.principal, project_id, outcome, reason.strip()),
    )  # fmt: skip


@router.post("/console/cer/{project_id}/issue")
async def issue_project(
    request: Request, session: Session, viewer: Authority, project_id: uuid.UUID
) -> Response:
    return await _project_step(
        request, session, viewer, project_id, {}, registry.issue(session, viewer.principal, project_id)
    )


# ---- clawback: CER units and points ----------------------------------------------------------------------


async def _cer_clawback_page(
    request: Request,
    session: Any,
    project_id: uuid.UUID,
    reason: str,
    *,
    preview: bool,
    error: str | None = None,
    status: int = 200,
) -> Response:
    try:
        found = await registry.clawback_preview(session, project_id)
    except DomainError as exc:
        if exc.status == 404:
            raise
        return _see_other(f"/console/cer/{project_id}")
    return render(
        request,
        "console/cer_clawback.html",
        {"preview": found if preview else None, "project": found.project, "reason": reason, "error": error},
        status_code=status,
    )


@router.get("/console/cer/{project_id}/clawback")
async def cer_clawback_form(
    request: Request, session: Session, viewer: Authority, project_id: uuid.UUID
) -> Response:
    return await _cer_clawback_page(request, session, project_id, "", preview=False)


@router.post("/console/cer/{project_id}/clawback/preview")
async def cer_clawback_preview(
    request: Request, session: Session, viewer: Authority, project_id: uuid.UUID, reason: Reason = ""
) -> Response:
    if error := _reason_error(reason):
        return await _cer_clawback_page(
            request, session, project_id, reason, preview=False, error=error, status=400
        )
    return await _cer_clawback_page(request, session, project_id, reason.strip(), preview=True)


@router.post("/console/cer/{project_id}/clawback")
async def cer_clawback(
    request: Request, session: Session, viewer: Authority, project_id: uuid.UUID, reason: Reason = ""
) -> Response:
    if error := _reason_error(reason):
        return await _cer_clawback_page(
            request, session, project_id, reason, preview=False, error=error, status=400
        )
    return await _project_step(
        request, session, viewer, project_id, {},
        registry.clawback(session, viewer.principal, project_id, reason.strip()),
    )  # fmt: skip


def _points_form(
    request: Request, values: dict, errors: dict, preview: Any = None, status: int = 200
) -> Response:
    return render(
        request,
        "console/points_clawback.html",
        {"values": values, "errors": errors, "preview": preview},
        status_code=status,
    )


def _points_input(user_id: str, points: str, reason: str) -> tuple[uuid.UUID | None, int | None, dict]:
    errors: dict[str, str] = {}
    try:
        person: uuid.UUID | None = uuid.UUID(user_id.strip())
    except ValueError:
        person = None
        errors["user_id"] = gettext("Enter the person's account id (a UUID, as on the ledger).")
    amount = _whole(points, 1, 10**12)
    if amount is None:
        errors["points"] = gettext("Enter the points to claw back: a whole number above 0.")
    if error := _reason_error(reason):
        errors["reason"] = error
    return person, amount, errors


@router.get("/console/clawback", name="console_clawback")
async def points_clawback_form(request: Request, viewer: Authority) -> Response:
    return _points_form(request, {}, {})


@router.post("/console/clawback/preview")
async def points_clawback_preview(
    request: Request,
    session: Session,
    viewer: Authority,
    user_id: Annotated[Text, Form(max_length=100)] = "",
    points: Annotated[Text, Form(max_length=30)] = "",
    reason: Reason = "",
) -> Response:
    values = {"user_id": user_id.strip(), "points": points.strip(), "reason": reason.strip()}
    person, amount, errors = _points_input(user_id, points, reason)
    if errors or person is None or amount is None:
        return _points_form(request, values, errors, status=400)
    account = await points_service.account(session, person)
    if account.lifetime_points == 0 and account.balance == 0:
        return _points_form(request, values, {"user_id": refusal_code("account_not_found")}, status=404)
    if amount > account.balance:
        errors["points"] = gettext(
            "The account holds %(balance)s points now: claw back at most that many."
        ) % {"balance": account.balance}
        return _points_form(request, values, errors, status=409)
    taken, left = [], amount
    for lot in account.expiring:
        if left <= 0:
            break
        part = min(left, lot.points)
        taken.append((lot.expires_at, part))
        left -= part
    preview = {"account": account, "points": amount, "after": account.balance - amount, "lots": taken}
    return _points_form(request, values, {}, preview)


def refusal_code(code: str) -> str:
    return gettext(REFUSALS[code])


@router.post("/console/clawback")
async def points_clawback(
    request: Request,
    session: Session,
    viewer: Authority,
    user_id: Annotated[Text, Form(max_length=100)] = "",
    points: Annotated[Text, Form(max_length=30)] = "",
    reason: Reason = "",
) -> Response:
    values = {"user_id": user_id.strip(), "points": points.strip(), "reason": reason.strip()}
    person, amount, errors = _points_input(user_id, points, reason)
    if errors or person is None or amount is None:
        return _points_form(request, values, errors, status=400)
    try:
        await points_service.clawback(session, viewer.principal, person, amount, reason.strip())
    except DomainError as exc:
        return _points_form(request, values, {"form": refusal(exc)}, status=exc.status)
    return _see_other(f"/console/people/{person}")


@router.get("/console/people/{user_id}", name="console_person")
async def person(
    request: Request,
    session: Session,
    viewer: Authority,
    user_id: uuid.UUID,
    history: Annotated[Text | None, Query(max_length=500)] = None,
    behaviours: Annotated[Text | None, Query(max_length=500)] = None,
) -> Response:
    """A person's account as the authority reviews it (before a clawback, say): the figures, every change to the
    points and every behaviour recorded (each list paged by its own cursor), and the audit trail."""
    account = await points_service.account(session, user_id)
    entries = await me.history(session, user_id, PERSON_PAGE_SIZE, history)
    records = await me.behaviours(session, user_id, PERSON_PAGE_SIZE, behaviours)
    path = request.url.path
    return render(
        request,
        "console/person.html",
        {
            "account": account,
            "history_rows": history_rows(entries.items),
            "history_pages": paging.links(
                path, {"behaviours": behaviours}, entries.next_cursor, history, "history"
            ),
            "behaviour_rows": behaviour_rows(records.items),
            "behaviour_pages": paging.links(
                path, {"history": history}, records.next_cursor, behaviours, "behaviours"
            ),
            "trail": await _trail(session, "user", user_id),
        },
    )


# ---- reference prices ------------------------------------------------------------------------------------


async def _prices_page(
    request: Request, session: Any, values: dict, errors: dict, status: int = 200
) -> Response:
    today = clock.today()
    recorded = await prices.list_prices(session, today - timedelta(days=45), today)
    try:
        reference = await prices.reference_price(session, today + timedelta(days=1))
        missing: list[str] = []
    except DomainError as exc:
        reference = None
        missing = list(exc.extra.get("missing", []))
    return render(
        request,
        "console/prices.html",
        {
            "prices": recorded,
            "reference": reference,
            "missing": missing,
            "today": today,
            "values": values,
            "errors": errors,
            "trail": await _trail(session, "cer_price", *[p.date.isoformat() for p in recorded[:10]]),
        },
        status_code=status,
    )


@router.get("/console/prices", name="console_prices")
async def prices_page(request: Request, session: Session, viewer: Authority) -> Response:
    return await _prices_page(request, session, {"date": clock.today().isoformat()}, {})


@router.post("/console/prices")
async def record_price(
    request: Request,
    session: Session,
    viewer: Authority,
    day: Annotated[Text, Form(max_length=40)] = "",
    price: Annotated[Text, Form(max_length=40)] = "",
) -> Response:
    values = {"date": day.strip(), "price": price.strip()}
    errors: dict[str, str] = {}
    try:
        Decimal(values["price"])
    except InvalidOperation:
        errors["price"] = refusal_code("invalid_price")
    try:
        data = PriceIn.model_validate({"date": values["date"], "price": values["price"]})
    except ValidationError:
        errors.setdefault(
            "date", gettext("Enter a date such as %(example)s.") % {"example": clock.today().isoformat()}
        )
        data = None
    if data is None or errors:
        return await _prices_page(request, session, values, errors, status=400)
    try:
        await prices.record_price(session, viewer.principal, data)
    except DomainError as exc:
        field = "price" if exc.code == "invalid_price" else "date"
        return await _prices_page(request, session, values, {field: refusal(exc)}, status=exc.status)
    return _see_other("/console/prices")
