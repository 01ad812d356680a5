"""Errors as pages for browsers; the JSON API keeps problem+json.

A request gets an HTML error page when its path is not the API's (``/v1/…``, ``/.well-known/…``,
``/openapi.json``, ``/healthz``, ``/readyz``, ``/metrics``, ``/static/…``) and it asks for HTML
(a browser's ``Accept: text/html``, or an htmx request). Every other request gets the problem+json
of :mod:`app.core.errors`, whose handlers these wrap.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.core import db
from app.core.errors import DomainError
from app.web import sessions
from app.web.exceptions import CsrfRefused, SignInRequired
from app.web.i18n import N_, gettext

log = logging.getLogger(__name__)

API_PREFIXES = ("/v1/", "/.well-known/", "/openapi.json", "/healthz", "/readyz", "/metrics", "/static/")

# status → (title, explanation), translated when the page is rendered
MESSAGES: dict[int, tuple[str, str]] = {
    400: (N_("The request could not be understood"), N_("Check what you entered and try again.")),
    403: (N_("Not allowed"), N_("Your account may not open this page or do this.")),
    404: (
        N_("Page not found"),
        N_("There is no page at this address. Check the link, or start again from the home page."),
    ),
    405: (N_("Not allowed"), N_("This page cannot be used this way.")),
    409: (
        N_("This can no longer be done"),
        N_("It has changed in the meantime. Go back and reload the page to see where it stands now."),
    ),
    413: (N_("Too much data"), N_("What was sent is larger than this platform accepts.")),
    422: (N_("The request could not be understood"), N_("Check what you entered and try again.")),
    429: (N_("Too many requests"), N_("Please wait a minute and try again.")),
    500: (
        N_("Something went wrong"),
        N_(
            "An error occurred on our side. Try again later; if it happens again, quote the request id below."
        ),
    ),
}
CSRF_MESSAGE = (
    N_("This form has expired"),
    N_(
        "The form was not sent from a page of this site, or the page was open too long. Go back, reload the page and send the form again."
    ),
)


def is_browser_path(path: str) -> bool:
    return not path.startswith(API_PREFIXES)


def wants_html(request: Request) -> bool:
    if not is_browser_path(request.url.path):
        return False
    return "text/html" in request.headers.get("accept", "") or request.headers.get("hx-request") == "true"


async def _attach_viewer(request: Request) -> None:
    """Error pages are rendered outside the page's transaction: find the viewer read-only, so the
    header and the forms' CSRF tokens are those of the browser's session."""
    if getattr(request.state, "web", None) is not None:
        return
    from app.web.dependencies import WebState

    token = request.cookies.get(sessions.COOKIE)
    viewer = None
    if token:
        try:
            async with db.sessionmaker()() as session:
                viewer = await sessions.resolve(session, token, touch=False)
                await session.rollback()
        except Exception:  # the error page must render even when the database is the problem
            log.warning("could not resolve the session for an error page", exc_info=True)
    request.state.web = WebState(viewer, token if viewer else None)


async def error_page(
    request: Request,
    status: int,
    *,
    resolve_viewer: bool = True,
    headers: dict[str, str] | None = None,
    csrf: bool = False,
) -> Response:
    from app.web.templating import render

    if resolve_viewer:
        await _attach_viewer(request)
    title, message = CSRF_MESSAGE if csrf else MESSAGES.get(status, MESSAGES[500 if status >= 500 else 400])
    return render(
        request,
        "web/error.html",
        {"status": status, "title": gettext(title), "message": gettext(message)},
        status_code=status,
        headers=headers,
    )


Handler = Callable[[Request, Any], Awaitable[Response]]


def _html_or(original: Handler, html: Handler) -> Handler:
    async def handler(request: Request, exc: Any) -> Response:
        if wants_html(request):
            return await html(request, exc)
        return await original(request, exc)

    return handler


async def _domain_page(request: Request, exc: DomainError) -> Response:
    if isinstance(exc, SignInRequired):
        from urllib.parse import urlencode

        return RedirectResponse("/sign-in?" + urlencode({"next": exc.next_url}), status_code=303)
    headers = {k: v for k, v in exc.headers.items() if k.lower() == "retry-after"}
    return await error_page(request, exc.status, headers=headers or None, csrf=isinstance(exc, CsrfRefused))


async def _validation_page(request: Request, exc: RequestValidationError) -> Response:
    return await error_page(request, 400)


async def _http_page(request: Request, exc: StarletteHTTPException) -> Response:
    return await error_page(request, exc.status_code)


def install(app: FastAPI) -> None:
    """Wraps the problem+json handlers (installed first by :func:`app.core.errors.install`)."""
    pages: dict[Any, Handler] = {
        DomainError: _domain_page,
        RequestValidationError: _validation_page,
        StarletteHTTPException: _http_page,
    }
    for key, html in pages.items():
        original = cast(Handler, app.exception_handlers[key])  # core's handlers are all async
        app.exception_handlers[key] = _html_or(original, html)
