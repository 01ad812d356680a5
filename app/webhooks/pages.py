"""Webhook subscriptions in the browser (``/webhooks``), for the staff of every kind of organisation that
receives events: operators inside their console, merchants, scene operators, verifiers and buyers from
their portal or account page.

The same service functions as ``/v1/webhooks/…``: the list (URL, event types, status, failing since,
why the platform disabled it), a new subscription (the types the organisation's kind receives, with what
each tells; the secret shown once), pause and resume, a new secret after a confirmation (shown once; the
old one signs too for 24 hours), deletion after a confirmation, and a subscription's deliveries with every
attempt and a redelivery of a failed one. Only the organisation's admin changes anything; other staff read.
"""

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from app.auth.dependencies import Session
from app.core.pagination import Cursor
from app.core.types import Int64, Text
from app.web.dependencies import page_router, require_viewer
from app.web.exceptions import PageForbidden
from app.web.i18n import N_, gettext
from app.web.portals import portal
from app.web.sessions import Viewer
from app.web.templating import render
from app.webhooks import delivery, service
from app.webhooks.delivery_schemas import DeliveryStatus
from app.webhooks.exceptions import (
    EventTypeNotAllowed,
    InvalidSubscriptionState,
    InvalidWebhookUrl,
    TooManySubscriptions,
    UnknownEventType,
)
from app.webhooks.schemas import MAX_URL_LENGTH, SubscriptionCreate, SubscriptionRead, SubscriptionWithSecret

router = page_router()
OrgViewer = Annotated[Viewer, Depends(require_viewer(*sorted(service.ORG_KINDS)))]
SubscriptionId = Annotated[uuid.UUID, Path()]
DeliveryId = Annotated[Int64, Path()]
PAGE_SIZE = 20
NO_STORE = {"Cache-Control": "no-store"}

TYPE_TEXTS = {
    "entrustment.withdrawn": N_(
        "A person withdrew their entrustment of your app (through your API or on their own page, or by "
        "deleting their account): submit nothing more for them."
    ),
    "points.expiring": N_(
        "Every morning: your people whose points expire in the next days, by your own ids, with amounts "
        "and dates."
    ),
    "points.expired": N_("Points expired: which of your people lost how many."),
    "order.created": N_("A person ordered an item (to the merchant, and to the app that placed the order)."),
    "order.redeemed": N_("The merchant redeemed an order's voucher."),
    "order.cancelled": N_("The person cancelled an unused order; the points went back."),
    "order.expired": N_("An order's voucher expired unused."),
    "operator_redemption.reversed": N_("A redemption in your own mall was reversed; the points went back."),
    "scene.decided": N_("The authority decided a scene application or a change to a scene."),
    "cer_project.stage_changed": N_(
        "A certified emission reduction project moved to another stage (to its owner and its verifier)."
    ),
    "cer.units_received": N_(
        "Certified emission reduction units were transferred into your registry account."
    ),
    "organization.suspended": N_(
        "The authority suspended your organisation: its tokens stop working until it is reinstated."
    ),
}
"""What each event type of :data:`app.webhooks.service.EVENT_TYPES` tells, in the reader's language."""

URL_REFUSALS = (
    ("at most", N_("The address is too long: at most 2,000 characters.")),
    ("no spaces", N_("The address may not contain spaces, control characters or backslashes.")),
    ("not a URL", N_("This is not a web address the platform can read.")),
    (
        "no user name",
        N_("Leave the user name and password out of the address: the signature shows the platform sent it."),
    ),
    ("no fragment", N_("Leave out the part from # on.")),
    ("the URL names its host", N_("The address names no host.")),
    (
        "the platform posts only to public",
        N_("The platform posts only to public addresses, never to private or loopback ones."),
    ),
    (
        "the URL uses https (or http",
        N_("The address starts with https:// (on a test platform also http:// to this computer, 127.0.0.1)."),
    ),
    ("the URL uses https", N_("The address starts with https://.")),
)
"""The refusals of :func:`app.webhooks.service.check_url`, by the start of their detail."""

FIELD_ERRORS = {
    "url": N_("Enter the address the events are posted to (at most 2,000 characters)."),
    "event_types": N_("Choose at least one event type."),
    "description": N_("At most 200 characters."),
}
DONE = {
    "paused": N_("The subscription is paused: new events are not sent to it."),
    "resumed": N_("The subscription is active again: new events are sent to it."),
    "deleted": N_("The subscription is deleted."),
    "redelivered": N_("The event will be sent again within seconds."),
}


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _require_admin(viewer: Viewer) -> None:
    if not viewer.principal.is_org_admin:
        raise PageForbidden("only the organisation's admin changes its webhook subscriptions")


def _page(
    request: Request,
    viewer: Viewer,
    template: str,
    values: dict[str, Any],
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """A page in the organisation's own frame: the operators' console, or a link back to the portal."""
    role = viewer.principal.role
    frame = {
        "layout": "organizations/operator_layout.html" if role == "operator" else "webhooks/layout.html",
        "section": "webhooks",
        "portal": portal(viewer.principal),
        "is_admin": viewer.principal.is_org_admin,
        "done": gettext(DONE[request.query_params["done"]])
        if request.query_params.get("done") in DONE
        else None,
    }
    return render(request, template, {**frame, **values}, status_code=status, headers=headers)


def _types(role: str) -> list[tuple[str, str]]:
    """The event types organisations of ``role`` receive, with what each tells."""
    return [(t.type, gettext(TYPE_TEXTS.get(t.type, t.description))) for t in service.event_types(role)]


def _url_refusal(exc: InvalidWebhookUrl) -> str:
    detail = str(exc.detail)
    for start, message in URL_REFUSALS:
        if detail.startswith(start):
            return gettext(message)
    return gettext(FIELD_ERRORS["url"])


# ---- the list ---------------------------------------------------------------------------------------------


@router.get("/webhooks", name="webhooks")
async def subscriptions(request: Request, session: Session, viewer: OrgViewer) -> Response:
    return _page(
        request,
        viewer,
        "webhooks/list.html",
        {"subscriptions": await service.list_subscriptions(session, viewer.principal)},
    )


# ---- a new subscription -----------------------------------------------------------------------------------


def _form_page(
    request: Request,
    viewer: Viewer,
    values: dict[str, Any],
    errors: dict[str, str],
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    return _page(
        request,
        viewer,
        "webhooks/new.html",
        {
            "form": values,
            "errors": errors,
            "error": error,
            "types": _types(viewer.principal.role),
            "max_url": MAX_URL_LENGTH,
        },
        status=status,
    )


@router.get("/webhooks/new", name="webhook_new")
async def new_form(request: Request, viewer: OrgViewer) -> Response:
    _require_admin(viewer)
    return _form_page(request, viewer, {"url": "", "event_types": [], "description": ""}, {})


@router.post("/webhooks/new")
async def create(
    request: Request,
    session: Session,
    viewer: OrgViewer,
    url: Annotated[Text, Form(max_length=10_000)] = "",
    event_types: Annotated[list[Text], Form()] = [],  # noqa: B006  # FastAPI copies a form default
    description: Annotated[Text, Form(max_length=10_000)] = "",
) -> Response:
    _require_admin(viewer)
    values = {"url": url.strip(), "event_types": event_types[:50], "description": description.strip()}
    errors: dict[str, str] = {}
    error = None
    status = 400
    try:
        data = SubscriptionCreate.model_validate(values)
    except ValidationError as exc:
        for problem in exc.errors():
            name = str(problem["loc"][0])
            errors.setdefault(name, gettext(FIELD_ERRORS.get(name, FIELD_ERRORS["url"])))
        if "url" not in errors:  # the address's own refusal too, in the same answer as the other mistakes
            try:
                service.check_url(url.strip())
            except InvalidWebhookUrl as url_refused:
                errors["url"] = _url_refusal(url_refused)
    else:
        try:
            created = await service.create_subscription(session, viewer.principal, data)
        except InvalidWebhookUrl as exc:
            errors["url"] = _url_refusal(exc)
        except (UnknownEventType, EventTypeNotAllowed):
            errors["event_types"] = gettext(
                "Choose event types from this list: your organisation receives these."
            )
        except TooManySubscriptions:
            error = gettext(
                "Your organisation has 10 subscriptions already: delete one before adding another."
            )
            status = 409
        else:
            return _secret_page(request, viewer, created, rotated=False)
    return _form_page(request, viewer, values, errors, error=error, status=status)


def _secret_page(request: Request, viewer: Viewer, s: SubscriptionWithSecret, *, rotated: bool) -> Response:
    return _page(
        request,
        viewer,
        "webhooks/secret.html",
        {"subscription": s, "rotated": rotated},
        headers=NO_STORE,
    )


# ---- one subscription: its facts, its deliveries ------------------------------------------------------------


async def _detail_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    subscription_id: uuid.UUID,
    *,
    status_filter: DeliveryStatus | None = None,
    cursor: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    s = await service.get_subscription(session, viewer.principal, subscription_id)
    result = await delivery.list_deliveries(
        session,
        viewer.principal.org_id,
        subscription_id,
        status=status_filter,
        limit=PAGE_SIZE,
        cursor=cursor,
    )
    path = f"/webhooks/{s.id}"
    kept = {"status": status_filter.value} if status_filter else {}
    nxt = result["next_cursor"]
    return _page(
        request,
        viewer,
        "webhooks/detail.html",
        {
            "subscription": s,
            "deliveries": result["items"],
            "status_filter": status_filter.value if status_filter else "",
            "statuses": [
                ("", gettext("All")),
                ("pending", gettext("Waiting to be delivered")),
                ("delivered", gettext("Delivered")),
                ("failed", gettext("Not delivered")),
            ],
            "next_url": f"{path}?{urlencode({**kept, 'cursor': nxt})}#deliveries" if nxt else None,
            "first_url": (f"{path}?{urlencode(kept)}#deliveries" if kept else f"{path}#deliveries")
            if cursor
            else None,
            "error": error,
        },
        status=status,
    )


@router.get("/webhooks/{subscription_id}", name="webhook")
async def detail(
    request: Request,
    session: Session,
    viewer: OrgViewer,
    subscription_id: SubscriptionId,
    status: Annotated[DeliveryStatus | None, Query()] = None,
    cursor: Cursor = None,
) -> Response:
    return await _detail_page(request, session, viewer, subscription_id, status_filter=status, cursor=cursor)


@router.post("/webhooks/{subscription_id}/pause")
async def pause(
    request: Request, session: Session, viewer: OrgViewer, subscription_id: SubscriptionId
) -> Response:
    _require_admin(viewer)
    try:
        await service.pause(session, viewer.principal, subscription_id)
    except InvalidSubscriptionState:
        return await _detail_page(
            request,
            session,
            viewer,
            subscription_id,
            error=gettext(
                "The platform disabled this subscription: resume it once its endpoint works again."
            ),
            status=409,
        )
    return _see_other(f"/webhooks/{subscription_id}?done=paused")


@router.post("/webhooks/{subscription_id}/resume")
async def resume(
    request: Request, session: Session, viewer: OrgViewer, subscription_id: SubscriptionId
) -> Response:
    _require_admin(viewer)
    await service.resume(session, viewer.principal, subscription_id)
    return _see_other(f"/webhooks/{subscription_id}?done=resumed")


# ---- a new secret, deletion: each after a confirmation --------------------------------------------------------


async def _confirm(
    request: Request, session: Session, viewer: Viewer, subscription_id: uuid.UUID, action: str
) -> Response:
    _require_admin(viewer)
    s: SubscriptionRead = await service.get_subscription(session, viewer.principal, subscription_id)
    return _page(request, viewer, "webhooks/confirm.html", {"subscription": s, "action": action})


@router.get("/webhooks/{subscription_id}/rotate-secret", name="webhook_rotate")
async def rotate_form(
    request: Request, session: Session, viewer: OrgViewer, subscription_id: SubscriptionId
) -> Response:
    return await _confirm(request, session, viewer, subscription_id, "rotate")


@router.post("/webhooks/{subscription_id}/rotate-secret")
async def rotate(
    request: Request, session: Session, viewer: OrgViewer, subscription_id: SubscriptionId
) -> Response:
    _require_admin(viewer)
    rotated = await service.rotate_secret(session, viewer.principal, subscription_id)
    return _secret_page(request, viewer, rotated, rotated=True)


@router.get("/webhooks/{subscription_id}/delete", name="webhook_delete")
async def delete_form(
    request: Request, session: Session, viewer: OrgViewer, subscription_id: SubscriptionId
) -> Response:
    return await _confirm(request, session, viewer, subscription_id, "delete")


@router.post("/webhooks/{subscription_id}/delete")
async def delete(
    request: Request, session: Session, viewer: OrgViewer, subscription_id: SubscriptionId
) -> Response:
    _require_admin(viewer)
    await service.delete(session, viewer.principal, subscription_id)
    return _see_other("/webhooks?done=deleted")


# ---- one delivery with every attempt; sending it again ----------------------------------------------------------


@router.get("/webhooks/{subscription_id}/deliveries/{delivery_id}", name="webhook_delivery")
async def delivery_detail(
    request: Request,
    session: Session,
    viewer: OrgViewer,
    subscription_id: SubscriptionId,
    delivery_id: DeliveryId,
) -> Response:
    s = await service.get_subscription(session, viewer.principal, subscription_id)
    found = await delivery.get_delivery(session, viewer.principal.org_id, subscription_id, delivery_id)
    return _page(request, viewer, "webhooks/delivery.html", {"subscription": s, "delivery": found})


@router.post("/webhooks/{subscription_id}/deliveries/{delivery_id}/redeliver")
async def redeliver(
    request: Request,
    session: Session,
    viewer: OrgViewer,
    subscription_id: SubscriptionId,
    delivery_id: DeliveryId,
) -> Response:
    _require_admin(viewer)
    await delivery.redeliver(
        session, viewer.principal.actor, viewer.principal.org_id, subscription_id, delivery_id
    )
    return _see_other(f"/webhooks/{subscription_id}/deliveries/{delivery_id}?done=redelivered")
