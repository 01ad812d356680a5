"""The person's own platform session as the caller of a JSON route (``GET /v1/me/export``, ``DELETE /v1/me``).

Those routes are the person's alone: the ``carbon_me`` cookie of a session opened at ``/me/sign-in``
(phone and one-time code). A bearer token — an operator's user token above all — is refused with 403
``platform_session_required``. A state-changing call also needs the page's CSRF token in
``X-CSRF-Token`` (as htmx sends it).
"""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie

from app.auth.dependencies import Session
from app.auth.exceptions import NotAuthenticated
from app.auth.principal import Principal
from app.core import ratelimit
from app.core.config import get_settings
from app.core.errors import Forbidden, RateLimited
from app.users import sessions
from app.web import csrf
from app.web.exceptions import CsrfRefused

_cookie = APIKeyCookie(
    name=sessions.COOKIE,
    auto_error=False,
    scheme_name="PersonSession",
    description="The person's own session on the platform, opened at /me/sign-in with phone and one-time code",
)


class PlatformSessionRequired(Forbidden):
    code, title = "platform_session_required", "Only the person, signed in on the platform, may do this"


async def person_session(
    request: Request, session: Session, cookie: str | None = Depends(_cookie)
) -> Principal:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        raise PlatformSessionRequired(
            "only the person may do this, signed in on the platform itself at /me (phone and one-time code); "
            "an operator's token never can"
        )
    person = await sessions.resolve(session, cookie)
    if person is None:
        raise NotAuthenticated("sign in on the platform at /me (phone and one-time code)")
    principal = person.principal
    await ratelimit.throttle(principal.rate_bucket, get_settings().rate_limit_per_minute)
    await csrf.check(request)
    return principal


person_session.problem_responses = (  # type: ignore[attr-defined]  # documented on every route using it
    NotAuthenticated,
    PlatformSessionRequired,
    RateLimited,
    *((err, {"POST", "PUT", "PATCH", "DELETE"}) for err in (CsrfRefused,)),
)

PersonSession = Annotated[Principal, Depends(person_session)]
