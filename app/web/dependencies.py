"""What every page route depends on, and the router factory pages use.

:func:`page_context` runs once per page request, inside its transaction: it resolves the browser
session, applies the same rate limit as the API (per signed-in organisation, else per client IP)
and refuses a state-changing request without its CSRF token. Pages add ``Viewer`` (optional) or
``require_viewer(...)`` (signed-in staff, with a role) to their parameters.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from app.auth.dependencies import Session, client_ip
from app.core import ratelimit
from app.core.config import get_settings
from app.core.routing import CommitRoute
from app.web import csrf, sessions
from app.web.exceptions import PageForbidden, SignInRequired


@dataclass
class WebState:
    """The browser's state for this request (``request.state.web``)."""

    viewer: sessions.Viewer | None
    session_token: str | None


async def page_context(request: Request, session: Session) -> WebState:
    token = request.cookies.get(sessions.COOKIE)
    viewer = await sessions.resolve(session, token) if token else None
    state = WebState(viewer, token if viewer else None)
    request.state.web = state
    if token and viewer is None:
        request.state.clear_session_cookie = True  # ended or unknown: the browser forgets it
    bucket = viewer.principal.rate_bucket if viewer else f"ip:{client_ip(request)}"
    await ratelimit.throttle(bucket, get_settings().rate_limit_per_minute)
    await csrf.check(request)
    return state


Page = Annotated[WebState, Depends(page_context)]


def require_viewer(*roles: str) -> Callable[..., Awaitable[sessions.Viewer]]:
    """A dependency: a signed-in staff account (with one of ``roles`` when given)."""

    async def dependency(request: Request, state: Page) -> sessions.Viewer:
        if state.viewer is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise SignInRequired(target)
        if roles and state.viewer.principal.role not in roles:
            raise PageForbidden(f"this page is for {' or '.join(roles)} accounts")
        return state.viewer

    return dependency


def page_router(**kwargs: Any) -> APIRouter:
    """An APIRouter for pages: one transaction a request, HTML, out of the OpenAPI document."""
    return APIRouter(
        route_class=CommitRoute,
        include_in_schema=False,
        default_response_class=HTMLResponse,
        dependencies=[Depends(page_context)],
        **kwargs,
    )


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def safe_next(value: str | None, default: str = "/") -> str:
    """A local path to return to after a form; anything else (other hosts, schemes) → ``default``."""
    if (
        not value
        or not value.startswith("/")
        or value.startswith(("//", "/\\"))
        or any(c in value for c in "\r\n\\")
    ):
        return default
    return value[:2000]
