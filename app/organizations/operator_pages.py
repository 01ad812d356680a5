"""The operators' console: its landing page (``/operator``) and the keys (``/operator/keys``).

Keys are listed with their last use; the organisation's admin registers one from an uploaded PEM
public key or a pasted JWK or PEM (the same checks as ``POST /v1/organizations/{id}/keys``: EC P-256
or RSA of 2,048 bits or more, public members only) and revokes one after a confirmation page.
"""

import json
from typing import Annotated

from fastapi import Depends, Form, Path, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from starlette.datastructures import UploadFile

from app.auth.dependencies import Session
from app.core.types import Text
from app.organizations import service
from app.organizations.exceptions import InvalidKey, KeyExists, KeyNotFound
from app.web.dependencies import page_router, require_viewer
from app.web.exceptions import PageForbidden
from app.web.i18n import N_, gettext
from app.web.i18n import datetime_ as show_time
from app.web.sessions import Viewer
from app.web.templating import render
from app.webhooks import service as webhooks_service

router = page_router()
OperatorViewer = Annotated[Viewer, Depends(require_viewer("operator"))]
MAX_KEY_BYTES = 20_000

CARDS = (
    (
        "/operator/batches",
        N_("Batches"),
        N_("The batches you sent with their outcomes; the rejected records and why, as a download."),
    ),
    (
        "/operator/keys",
        N_("Keys"),
        N_("The public keys that sign your tokens and batches: register, revoke, last use."),
    ),
    (
        "/operator/people",
        N_("People"),
        N_("Entrusted and withdrawn per month; look a person up by your own id."),
    ),
    (
        "/operator/redemptions",
        N_("Redemptions"),
        N_("Points used in your own mall; reverse one within the window."),
    ),
    (
        "/operator/projects",
        N_("CER projects"),
        N_("Your certified emission reduction projects and their stage."),
    ),
    (
        "/webhooks",
        N_("Webhooks"),
        N_("Events posted to your systems as they happen: subscriptions, their secrets and deliveries."),
    ),
)
KEY_REFUSALS = {
    "private_key_material": N_(
        "This is a private key. It was not stored. Keep it secret and upload the public key only "
        "(openssl pkey -in private.pem -pubout)."
    ),
    "unsupported_key": N_("Only EC P-256 keys (ES256) and RSA keys (RS256) can be registered."),
    "weak_key": N_("This RSA key is too short: use at least 2,048 bits."),
    "invalid_jwk": N_("This is not a public key we can read: paste a JWK (JSON) or a PEM public key."),
}


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@router.get("/operator", name="operator_home")
async def home(request: Request, session: Session, viewer: OperatorViewer) -> Response:
    cards = [(href, gettext(title), gettext(text)) for href, title, text in CARDS]
    # the platform stopped delivering to an endpoint that failed for a day: said first, where staff look
    subscriptions = await webhooks_service.list_subscriptions(session, viewer.principal)
    disabled = [s for s in subscriptions if s.status == "disabled"]
    return render(
        request, "organizations/operator_home.html", {"section": "home", "cards": cards, "disabled": disabled}
    )


def _org(viewer: Viewer):
    assert viewer.principal.org_id is not None  # an operator's staff account has its organisation
    return viewer.principal.org_id


async def _keys_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    *,
    error: str | None = None,
    key_text: str = "",
    status: int = 200,
) -> Response:
    org_id = _org(viewer)
    keys = await service.list_keys(session, viewer.principal, org_id)
    is_admin = viewer.principal.is_org_admin
    rows = []
    for key in sorted(keys, key=lambda k: (k.revoked_at is not None, k.created_at), reverse=False):
        action: str | Markup = ""
        if key.revoked_at is None and is_admin:
            action = Markup('<a href="/operator/keys/{}/revoke">{}</a>').format(key.kid, gettext("Revoke…"))
        rows.append(
            [
                Markup('<span class="mono">{}</span>').format(key.kid),
                key.algorithm,
                show_time(key.created_at),
                show_time(key.last_used_at) if key.last_used_at else gettext("Never"),
                gettext("Revoked %(moment)s") % {"moment": show_time(key.revoked_at)}
                if key.revoked_at
                else gettext("In use"),
                action,
            ]
        )
    uris = [
        [Markup('<span class="mono">{}</span>').format(u.uri), show_time(u.created_at)]
        for u in (await service.list_redirect_uris(session, viewer.principal, org_id) if is_admin else [])
    ]
    done = {"registered": gettext("The key is registered."), "revoked": gettext("The key is revoked.")}.get(
        request.query_params.get("done", "")
    )
    return render(
        request,
        "organizations/operator_keys.html",
        {
            "section": "keys",
            "rows": rows,
            "uris": uris,
            "is_admin": is_admin,
            "error": error,
            "key_text": key_text,
            "done": done,
        },
        status_code=status,
    )


@router.get("/operator/keys", name="operator_keys")
async def keys(request: Request, session: Session, viewer: OperatorViewer) -> Response:
    return await _keys_page(request, session, viewer)


def _require_admin(viewer: Viewer) -> None:
    if not viewer.principal.is_org_admin:
        raise PageForbidden("only the organisation's admin manages its keys")


@router.post("/operator/keys")
async def register_key(
    request: Request,
    session: Session,
    viewer: OperatorViewer,
    key_text: Annotated[Text, Form(max_length=MAX_KEY_BYTES)] = "",
) -> Response:
    _require_admin(viewer)
    text = key_text.strip()
    pem_file = (await request.form()).get("pem_file")  # an upload, read below with a size bound
    if isinstance(pem_file, UploadFile) and pem_file.filename:
        raw = await pem_file.read(MAX_KEY_BYTES + 1)
        try:
            text = raw.decode("ascii").strip() if len(raw) <= MAX_KEY_BYTES else ""
        except UnicodeDecodeError:
            text = "\x00"  # not a PEM file: refused below
        if not text:
            return await _keys_page(
                request, session, viewer, error=gettext(KEY_REFUSALS["invalid_jwk"]), status=422
            )
    if not text:
        return await _keys_page(
            request, session, viewer, error=gettext("Upload a PEM file or paste a public key."), status=422
        )
    try:
        if text.startswith("{"):
            try:
                jwk = json.loads(text)
            except ValueError:
                jwk = None
            if not isinstance(jwk, dict):
                raise InvalidKey("not a JSON object", code="invalid_jwk")
            await service.register_key(session, viewer.principal, _org(viewer), jwk)
        else:
            await service.register_key_pem(session, viewer.principal, _org(viewer), text)
    except InvalidKey as exc:
        message = KEY_REFUSALS.get(exc.code, KEY_REFUSALS["invalid_jwk"])
        shown = "" if exc.code == "private_key_material" else key_text  # a private key is not echoed back
        return await _keys_page(request, session, viewer, error=gettext(message), key_text=shown, status=422)
    except KeyExists:
        return await _keys_page(
            request,
            session,
            viewer,
            error=gettext("This key is already registered."),
            key_text=key_text,
            status=409,
        )
    return _see_other("/operator/keys?done=registered")


async def _own_key(session: Session, viewer: Viewer, kid: str):
    for key in await service.list_keys(session, viewer.principal, _org(viewer)):
        if key.kid == kid:
            return key
    raise KeyNotFound()


@router.get("/operator/keys/{kid}/revoke", name="operator_key_revoke")
async def revoke_form(
    request: Request, session: Session, viewer: OperatorViewer, kid: Annotated[Text, Path(max_length=100)]
) -> Response:
    _require_admin(viewer)
    key = await _own_key(session, viewer, kid)
    if key.revoked_at is not None:
        return _see_other("/operator/keys")
    return render(request, "organizations/operator_revoke.html", {"section": "keys", "key": key})


@router.post("/operator/keys/{kid}/revoke")
async def revoke(
    request: Request, session: Session, viewer: OperatorViewer, kid: Annotated[Text, Path(max_length=100)]
) -> Response:
    _require_admin(viewer)
    await _own_key(session, viewer, kid)
    await service.revoke_key(session, viewer.principal, _org(viewer), kid)
    return _see_other("/operator/keys?done=revoked")
