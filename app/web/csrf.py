"""CSRF protection of every state-changing page request: a signed double-submit token.

Each browser gets a random ``cp_csrf`` cookie (HttpOnly, SameSite=Lax). The token a form carries
(hidden field ``csrf_token``, or the ``X-CSRF-Token`` header for htmx) is an HMAC of that cookie
and of the browser's session id, under a key derived from the platform secret: another site can
neither read the cookie nor compute the token, and a token does not survive a change of session.
"""

import base64
import hashlib
import hmac
import re
import secrets
from functools import cache

from fastapi import Request

from app.core.config import get_settings
from app.web.exceptions import CsrfRefused

COOKIE = "cp_csrf"
FIELD = "csrf_token"
HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SEED = re.compile(r"^[A-Za-z0-9_-]{43}$")
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


@cache
def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"carbon-points/web/csrf", hashlib.sha256).digest()


def seed(request: Request) -> str:
    """This browser's random value: its cookie, or a new one the response will set."""
    state = request.scope.setdefault("state", {})
    value: str | None = state.get("csrf_seed")
    if value is None:
        cookie = request.cookies.get(COOKIE, "")
        if _SEED.match(cookie):
            value = cookie
        else:
            value = secrets.token_urlsafe(32)
            state["csrf_seed_new"] = True
        state["csrf_seed"] = value
    return value


def _binding(request: Request) -> str:
    web = request.scope.get("state", {}).get("web")
    viewer = getattr(web, "viewer", None)
    return str(viewer.session_id) if viewer else ""


def token(request: Request) -> str:
    """The token the forms of this page carry."""
    message = f"{seed(request)}|{_binding(request)}".encode()
    mac = hmac.new(_key(get_settings().identity_hash_key), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


async def check(request: Request) -> None:
    """Refuses (403 ``csrf_failed``) a state-changing request whose token is missing or wrong."""
    if request.method in SAFE_METHODS:
        return
    supplied = request.headers.get(HEADER)
    if not supplied and request.headers.get("content-type", "").startswith(_FORMS):
        value = (await request.form()).get(FIELD)
        supplied = value if isinstance(value, str) else None
    if not supplied or COOKIE not in request.cookies or not hmac.compare_digest(supplied, token(request)):
        raise CsrfRefused("this form was not sent from a page of this site, or it has expired")
