"""The person's pages of the authorization code flow (``/oauth/authorize``), and the development SMS outbox.

A person comes from an operator's app: they give their phone number, type the one-time code sent
to it, and see what the app asks for (the consent screen); approving sends them back to the app
with a single-use code, denying with ``error=access_denied``. A request whose client or redirect
URI is not registered exactly shows an error page and never redirects (RFC 6749 §4.1.2.1).
"""

import uuid
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response

from app.auth import oauth
from app.auth.dependencies import Session, client_ip
from app.core import sms
from app.core.config import get_settings
from app.core.errors import RateLimited
from app.core.types import Text
from app.users import service as users_service
from app.users.exceptions import InvalidIdentifier
from app.web import csrf
from app.web.dependencies import page_router
from app.web.i18n import N_
from app.web.i18n import gettext as _
from app.web.middleware import CSP
from app.web.templating import render

router = page_router()

SCOPE_LABELS = {
    "behaviours:submit": N_("Report the low-carbon things you do (trips, purchases) to earn you points"),
    "account:read": N_("Read your points balance and the records it reported"),
    "mall": N_("Order in the platform's points mall for you"),
}
AUTHORIZE_FIELDS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _refused(request: Request, exc: oauth.ClientRefused) -> Response:
    message = (
        _(
            "The address this application asked to send you back to is not one it registered with the platform, "
            "so you were not sent there. Close this page and go back to the application."
        )
        if exc.code == "invalid_redirect_uri"
        else _(
            "This application is not registered with the platform, or it may not sign people in at the moment. "
            "Close this page and go back to the application."
        )
    )
    return render(request, "auth/authorize_error.html", {"message": message}, status_code=400)


def _ended(request: Request) -> Response:
    message = _(
        "This sign-in has ended (it lasts 15 minutes, works once, and only in the browser where it "
        "started). Go back to the application and start again."
    )
    return render(request, "auth/authorize_error.html", {"message": message}, status_code=404)


def _params(request: Request) -> dict[str, list[str]]:
    return {k: request.query_params.getlist(k) for k in AUTHORIZE_FIELDS if k in request.query_params}


def _phone_page(
    request: Request,
    valid: oauth.ValidRequest,
    phone: str = "",
    error: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    hidden = {
        "response_type": "code",
        "client_id": str(valid.client_id),
        "redirect_uri": valid.redirect_uri,
        "scope": valid.scope,
        "state": valid.state,
        "code_challenge": valid.code_challenge,
        "code_challenge_method": "S256",
    }
    return render(
        request,
        "auth/authorize_phone.html",
        {
            "client_name": valid.client_name,
            "hidden": hidden,
            "phone": phone,
            "errors": {"phone": error} if error else {},
        },
        status_code=status,
        # the form may be answered with a redirect to the application (an error for it): let it go there
        headers={**(headers or {}), "Content-Security-Policy": _consent_csp(valid.redirect_uri)},
    )


@router.get("/oauth/authorize", name="oauth_authorize")
async def authorize(request: Request, session: Session) -> Response:
    try:
        valid = await oauth.validate_request(session, _params(request))
    except oauth.ClientRefused as exc:
        return _refused(request, exc)
    except oauth.RedirectError as err:
        return _see_other(err.location)
    return _phone_page(request, valid)


@router.post("/oauth/authorize")
async def send_code(request: Request, session: Session) -> Response:
    form = await request.form()
    fields = {k: [str(v) for v in form.getlist(k)] for k in AUTHORIZE_FIELDS if k in form}
    try:
        valid = await oauth.validate_request(session, fields)
    except oauth.ClientRefused as exc:
        return _refused(request, exc)
    except oauth.RedirectError as err:
        return _see_other(err.location)
    phone = str(form.get("phone", "")).strip()[:40]
    if not phone:
        return _phone_page(request, valid, phone, _("Enter your mobile phone number."), 400)
    try:
        started = await oauth.start(session, valid, phone, client_ip(request), csrf.seed(request))
    except InvalidIdentifier:
        return _phone_page(request, valid, phone, _("This is not a valid mobile phone number."), 400)
    except RateLimited as exc:
        return _phone_page(
            request,
            valid,
            phone,
            _("Too many codes were asked for. Please wait a while and try again."),
            429,
            {"Retry-After": exc.headers.get("Retry-After", "60")},
        )
    except sms.SmsUnavailable:
        return _phone_page(
            request, valid, phone, _("The text message could not be sent. Please try again later."), 503
        )
    return _see_other(f"/oauth/authorize/{started.id}/code")


def _code_page(
    request: Request,
    request_id: uuid.UUID,
    name: str,
    error: str | None = None,
    status: int = 200,
    restart: bool = False,
) -> Response:
    return render(
        request,
        "auth/authorize_code.html",
        {
            "request_id": request_id,
            "client_name": name,
            "errors": {"code": error} if error else {},
            "restart": restart,
        },
        status_code=status,
    )


@router.get("/oauth/authorize/{request_id}/code", name="oauth_code")
async def code_form(request: Request, session: Session, request_id: uuid.UUID) -> Response:
    try:
        row = await oauth.pending(session, request_id, csrf.seed(request))
    except oauth.RequestNotFound:
        return _ended(request)
    if row.verified_at is not None:
        return _see_other(f"/oauth/authorize/{request_id}/consent")
    name = await oauth.client_name(session, row.client_id)
    if not await oauth.code_usable(session, row):
        message = _(
            "This code can no longer be used. Go back to the application and start again for a new code."
        )
        return _code_page(request, request_id, name, message, 410, restart=True)
    return _code_page(request, request_id, name)


@router.post("/oauth/authorize/{request_id}/code")
async def check_code(
    request: Request, session: Session, request_id: uuid.UUID, code: Annotated[Text, Form(max_length=20)] = ""
) -> Response:
    try:
        row = await oauth.pending(session, request_id, csrf.seed(request))
    except oauth.RequestNotFound:
        return _ended(request)
    name = await oauth.client_name(session, row.client_id)
    code = code.strip().replace(" ", "")
    if not code:
        return _code_page(request, request_id, name, _("Enter the 6-digit code from the text message."), 400)
    check = await oauth.verify(session, row, code)
    outcome = check.outcome
    if outcome == users_service.CodeOutcome.verified:
        return _see_other(f"/oauth/authorize/{request_id}/consent")
    request.state.keep_changes = True  # the attempt counts, though the page refuses
    if outcome == users_service.CodeOutcome.wrong:
        message = _("The code is wrong. Tries left: %(num)s.") % {"num": check.attempts_left}
        return _code_page(request, request_id, name, message, 400)
    if outcome == users_service.CodeOutcome.expired:
        message = _("The code has expired. Go back to the application and start again for a new code.")
    else:
        message = _("Too many wrong codes. Go back to the application and start again for a new code.")
    return _code_page(request, request_id, name, message, 400, restart=True)


def _consent_csp(redirect_uri: str) -> str:
    """The page's policy lets its form send the browser on to the application's registered address."""
    parts = urlsplit(redirect_uri)
    return CSP.replace("form-action 'self'", f"form-action 'self' {parts.scheme}://{parts.netloc}")


@router.get("/oauth/authorize/{request_id}/consent", name="oauth_consent")
async def consent_form(request: Request, session: Session, request_id: uuid.UUID) -> Response:
    try:
        row = await oauth.pending(session, request_id, csrf.seed(request))
    except oauth.RequestNotFound:
        return _ended(request)
    if row.verified_at is None:
        return _see_other(f"/oauth/authorize/{request_id}/code")
    return render(
        request,
        "auth/authorize_consent.html",
        {
            "request_id": request_id,
            "client_name": await oauth.client_name(session, row.client_id),
            "scopes": [(scope, _(SCOPE_LABELS[scope])) for scope in row.scope.split()],
            "agreement_version": get_settings().agreement_version,
            "redirect_host": urlsplit(row.redirect_uri).netloc,
        },
        headers={"Content-Security-Policy": _consent_csp(row.redirect_uri)},
    )


@router.post("/oauth/authorize/{request_id}/consent")
async def consent(
    request: Request,
    session: Session,
    request_id: uuid.UUID,
    decision: Annotated[Text, Form(max_length=10)] = "",
) -> Response:
    try:
        row = await oauth.pending(session, request_id, csrf.seed(request))
        if decision not in ("approve", "deny"):
            return _see_other(f"/oauth/authorize/{request_id}/consent")
        location = await oauth.decide(session, row, approve=decision == "approve")
    except oauth.RequestNotFound:
        return _ended(request)
    return _see_other(location)


@router.get("/dev/outbox", name="dev_outbox")
async def outbox(request: Request, session: Session) -> Response:
    """The development SMS outbox (``CARBON_SMS_BACKEND=outbox``); no such page in production."""
    entries = await sms.outbox(session, 50)
    return render(request, "auth/outbox.html", {"entries": entries})
