"""The pages every actor shares: sign-in and sign-out, the language switch, and the API reference
(``/docs`` with Swagger UI, ``/redoc`` with ReDoc, both from vendored files)."""

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.auth.dependencies import Session, client_ip
from app.auth.exceptions import InvalidGrant, OrganizationNotActive
from app.core.errors import RateLimited
from app.core.types import Text
from app.organizations import service as org_service
from app.web import i18n, portals, sessions
from app.web.dependencies import Page, is_https, page_router, safe_next
from app.web.i18n import gettext as _
from app.web.middleware import CSP, cookie_header
from app.web.templating import environment, render

router = page_router()
docs_router = APIRouter(include_in_schema=False)

LANGUAGE_COOKIE_MAX_AGE = 365 * 24 * 3600


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _landing(viewer: sessions.Viewer) -> str:
    """Where someone lands after signing in (without a page to return to): their portal, the organisation's
    account page (with its status) for other staff of an organisation, the home page for a person."""
    home = portals.portal(viewer.principal)
    return home[0] if home else "/"


@router.get("/sign-in", name="sign_in")
async def sign_in_form(
    request: Request, state: Page, next: Annotated[Text | None, Query(max_length=2000)] = None
) -> Response:
    if state.viewer is not None:
        return _see_other(safe_next(next))
    return render(request, "web/sign_in.html", {"next": safe_next(next), "username": "", "errors": {}})


@router.post("/sign-in")
async def sign_in(
    request: Request,
    session: Session,
    state: Page,
    username: Annotated[Text, Form(max_length=100)] = "",
    password: Annotated[Text, Form(max_length=200)] = "",
    next: Annotated[Text, Form(max_length=2000)] = "/",
) -> Response:
    username = username.strip()
    errors: dict[str, str] = {}
    if not username:
        errors["username"] = _("Enter your username.")
    if not password:
        errors["password"] = _("Enter your password.")
    status = 400
    headers = None
    application = None
    if not errors:
        try:
            new = await sessions.sign_in(
                session,
                username,
                password,
                ip=client_ip(request),
                user_agent=request.headers.get("user-agent", ""),
                replacing=state.session_token,
            )
        except InvalidGrant:
            errors["form"] = _("The username or password is wrong.")
        except OrganizationNotActive:
            errors["form"] = _(
                "Your organisation is not approved at the moment, so its accounts cannot sign in."
            )
            status = 403
            # the password was right: show where the organisation's application stands
            application = await org_service.application_of(session, username)
        except RateLimited as exc:
            errors["form"] = _("Too many sign-in attempts. Please wait a minute and try again.")
            status, headers = 429, {"Retry-After": exc.headers.get("Retry-After", "60")}
        else:
            target = safe_next(next)
            response = _see_other(_landing(new.viewer) if target == "/" else target)
            response.headers.append(
                "set-cookie",
                cookie_header(
                    sessions.COOKIE, new.token, https=is_https(request), max_age=new.max_age_seconds
                ),
            )
            return response
    return render(
        request,
        "web/sign_in.html",
        {"next": safe_next(next), "username": username, "errors": errors, "application": application},
        status_code=status,
        headers=headers,
    )


@router.post("/sign-out", name="sign_out")
async def sign_out(request: Request, session: Session, state: Page) -> Response:
    await sessions.sign_out(session, state.session_token)
    response = _see_other("/")
    response.headers.append(
        "set-cookie", cookie_header(sessions.COOKIE, "", https=is_https(request), max_age=0)
    )
    return response


@router.post("/language", name="language")
async def switch_language(
    request: Request,
    state: Page,
    lang: Annotated[Text, Form(max_length=10)] = "",
    next: Annotated[Text, Form(max_length=2000)] = "/",
) -> Response:
    language = i18n.language_for(lang)
    response = _see_other(safe_next(next))
    response.headers.append(
        "set-cookie",
        cookie_header(i18n.COOKIE, language.tag, https=is_https(request), max_age=LANGUAGE_COOKIE_MAX_AGE),
    )
    return response


# The API reference: Swagger UI runs under the pages' policy; ReDoc injects <style> elements
# (styled-components) and starts its search worker from a blob. Scripts stay 'self' only.
DOCS_CSP = CSP
REDOC_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'").replace(
    "worker-src 'self'", "worker-src 'self' blob:"
)


@docs_router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    html = environment.get_template("web/swagger_ui.html").render(openapi_url=request.app.openapi_url)
    return HTMLResponse(html, headers={"content-security-policy": DOCS_CSP})


@docs_router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    html = environment.get_template("web/redoc.html").render(openapi_url=request.app.openapi_url)
    return HTMLResponse(html, headers={"content-security-policy": REDOC_CSP})
