"""The web middleware: the request's language, cookies the pages ask for, security headers on HTML,
and the HTML 500 page for browsers.

Pure ASGI (the context variable holding the language reaches the route in the same task). It sits
inside :class:`app.core.observability.RequestMiddleware`, so the request id is known here.
"""

import logging
from http.cookies import SimpleCookie

from starlette.datastructures import MutableHeaders
from starlette.requests import Request, cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.web import csrf, i18n, sessions
from app.web.errors import error_page, wants_html

log = logging.getLogger(__name__)

# No inline script or style anywhere: every script and stylesheet is a file under /static.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HTML_HEADERS = {
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(self), geolocation=(self), microphone=()",
}


def cookie_header(
    name: str, value: str, *, https: bool, max_age: int | None = None, http_only: bool = True
) -> str:
    cookie: SimpleCookie = SimpleCookie()
    cookie[name] = value
    morsel = cookie[name]
    morsel["path"] = "/"
    morsel["samesite"] = "Lax"
    if http_only:
        morsel["httponly"] = True
    if https:
        morsel["secure"] = True
    if max_age is not None:
        morsel["max-age"] = max_age
    return morsel.OutputString()


class WebMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        cookies: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name == b"cookie":
                cookies = cookie_parser(value.decode("latin-1"))
                break
        reset = i18n.use(i18n.language_for(cookies.get(i18n.COOKIE)))
        https = scope.get("scheme") == "https"
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                if headers.get("content-type", "").startswith("text/html"):
                    if "content-security-policy" not in headers:
                        headers["content-security-policy"] = CSP
                    for name, value in HTML_HEADERS.items():
                        headers[name] = value
                    headers.add_vary_header("Cookie")
                if state.get("csrf_seed_new"):
                    headers.append("set-cookie", cookie_header(csrf.COOKIE, state["csrf_seed"], https=https))
                if state.get("clear_session_cookie"):
                    headers.append("set-cookie", cookie_header(sessions.COOKIE, "", https=https, max_age=0))
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            if started or not wants_html(Request(scope)):
                raise
            log.exception(
                "unhandled error", extra={"request_id": state.get("request_id"), "path": scope["path"]}
            )
            response = await error_page(Request(scope), 500, resolve_viewer=False)
            await response(scope, receive, send_with_headers)
        finally:
            i18n.reset(reset)
