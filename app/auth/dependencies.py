"""Who may call a route: ``Depends(require("operator"))`` or the ready-made aliases below.

Resolving the caller also applies the caller's rate limit and, on POSTs, the
``Idempotency-Key`` (:mod:`app.core.idempotency`) — one place, so no route can forget them.
"""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import service
from app.auth.exceptions import (
    AdminRequired,
    InvalidToken,
    NotAuthenticated,
    OrganizationNotActive,
    RoleForbidden,
    ScopeRequired,
)
from app.auth.principal import Principal
from app.core import caching, idempotency, ratelimit
from app.core.config import get_settings
from app.core.errors import RateLimited
from app.core.routing import get_session

_bearer = HTTPBearer(auto_error=False, description="A platform access token from POST /v1/auth/token")

Session = Annotated[AsyncSession, Depends(get_session)]


async def optional_principal(
    session: Session, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> Principal | None:
    if credentials is None:
        return None
    return await service.authenticate(session, credentials.credentials)


async def bearer_principal(
    request: Request, session: AsyncSession, *, defer_standing: bool = False
) -> Principal | None:
    """The caller of ``Authorization: Bearer …`` read straight from the header, as :data:`_bearer` reads it."""
    scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
    if not token or scheme.lower() != "bearer":
        return None
    return await service.authenticate(session, token, defer_standing=defer_standing)


optional_principal.problem_responses = (InvalidToken, OrganizationNotActive)  # type: ignore[attr-defined]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


_IDEMPOTENCY_ERRORS = (idempotency.KeyInUse, idempotency.KeyReused, idempotency.KeyInvalid)


def require(
    *roles: str,
    idempotency_required: bool = False,
    idempotency_deferred: bool = False,
    admin: bool = False,
    scope: str | None = None,
    reads_only: bool = False,
    standing_deferred: bool = False,
):
    """A dependency: the caller must have one of ``roles`` (any role when none is given).

    ``reads_only``: every GET route using it only reads, so its statements need no transaction
    (:class:`app.core.routing.CommitRoute`): two round trips fewer.

    ``idempotency_deferred``: a POST's Idempotency-Key is checked here, its lock and record by the route's
    first statement (:func:`app.core.idempotency.defer`; the route's service must take it).

    ``scope``: a user token must carry this OAuth scope (403 ``scope_required`` naming it); the scopes
    are what the person granted the operator the token was issued to. Other kinds of caller have none
    and pass (``roles`` decides who they are).

    ``standing_deferred``: on the direct path (:class:`app.core.routing.DirectWriteRoute` with a body already
    valid, :class:`app.core.routing.DirectReadRoute`), a person's standing this process does not know is checked
    by the route's statement, not read first (:func:`app.core.callers.defer`; the route's service must take it).
    Through FastAPI it is read as always, so a refused caller is refused before its body is looked at.
    """

    async def admit(request: Request, session: AsyncSession, principal: Principal | None) -> Principal:
        if principal is None:
            raise NotAuthenticated()
        if roles and principal.role not in roles:
            raise RoleForbidden(f"this needs the role {' or '.join(roles)}")
        if admin and not principal.is_org_admin:
            raise AdminRequired("this needs the organisation's admin account")
        if scope and principal.kind == "user" and scope not in principal.scopes:
            raise ScopeRequired(
                f"this needs the scope {scope}, which the person did not grant this application: send them "
                f"through /oauth/authorize with scope including {scope}",
                scope=scope,
            )
        await ratelimit.throttle(principal.rate_bucket, get_settings().rate_limit_per_minute)
        if request.method == "POST":
            begin = idempotency.defer if idempotency_deferred else idempotency.begin
            await begin(request, session, principal.scope, required=idempotency_required)
        return principal

    async def dependency(
        request: Request, session: Session, principal: Principal | None = Depends(optional_principal)
    ) -> Principal:
        return await admit(request, session, principal)

    async def resolve(request: Request, session: AsyncSession) -> Principal:
        """The same caller, the same checks, without FastAPI's dependency solving
        (:class:`app.core.routing.DirectReadRoute`)."""
        caller = await bearer_principal(request, session, defer_standing=standing_deferred)
        return await admit(request, session, caller)

    dependency.problem_responses = (  # type: ignore[attr-defined]  # documented on every route using it
        NotAuthenticated,
        InvalidToken,
        RoleForbidden,
        *([AdminRequired] if admin else []),
        *([ScopeRequired] if scope else []),
        OrganizationNotActive,
        RateLimited,
        *((err, {"POST"}) for err in _IDEMPOTENCY_ERRORS),
        *([(idempotency.KeyRequired, {"POST"})] if idempotency_required else []),
    )
    dependency.reads_only = reads_only  # type: ignore[attr-defined]
    dependency.resolve = resolve  # type: ignore[attr-defined]
    return dependency


async def public_call(request: Request, session: Session) -> None:
    """For anonymous routes: rate limit per client IP; POSTs honour Idempotency-Key per IP."""
    ip = client_ip(request)
    await ratelimit.throttle(f"ip:{ip}", get_settings().rate_limit_per_minute)
    if request.method == "POST":
        await idempotency.begin(request, session, f"ip:{ip}")


public_call.problem_responses = (  # type: ignore[attr-defined]
    RateLimited,
    *((err, {"POST"}) for err in _IDEMPOTENCY_ERRORS),
)
public_call.cache_control = caching.cache_control(caching.DEFAULT_MAX_AGE)  # type: ignore[attr-defined]
Public = Depends(public_call)


def public(max_age: int, *, immutable: bool = False):
    """``Public`` whose answers anyone may keep ``max_age`` seconds (``Public``'s: a minute; :mod:`app.core.caching`)."""

    async def public_for(request: Request, session: Session) -> None:
        await public_call(request, session)

    public_for.problem_responses = public_call.problem_responses  # type: ignore[attr-defined]
    public_for.cache_control = caching.cache_control(max_age, immutable=immutable)  # type: ignore[attr-defined]
    return Depends(public_for)


AnyCaller = Annotated[Principal, Depends(require())]
Authority = Annotated[Principal, Depends(require("authority"))]
Operator = Annotated[Principal, Depends(require("operator"))]
Merchant = Annotated[Principal, Depends(require("merchant"))]
SceneOperator = Annotated[Principal, Depends(require("scene_operator"))]
Verifier = Annotated[Principal, Depends(require("verifier"))]
Buyer = Annotated[Principal, Depends(require("buyer"))]
Expert = Annotated[Principal, Depends(require("expert"))]
User = Annotated[Principal, Depends(require("user"))]
AccountReader = Annotated[Principal, Depends(require("user", scope="account:read", reads_only=True))]
"""A person through an operator's app that they let read their account (``account:read``)."""
BalanceReader = Annotated[
    Principal, Depends(require("user", scope="account:read", reads_only=True, standing_deferred=True))
]
"""An :data:`AccountReader` whose standing, when the process does not know it, the balance's statement checks
(``GET /v1/me/account``, the request a person's app makes on every open)."""
