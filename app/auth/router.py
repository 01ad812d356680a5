from typing import Annotated

from fastapi import APIRouter, Form, Request
from pydantic import BaseModel

from app.auth import keys, service
from app.auth.dependencies import Session, client_ip, public
from app.auth.exceptions import (
    AssertionReplayed,
    InvalidClient,
    InvalidGrant,
    OrganizationNotActive,
    UnsupportedGrant,
)
from app.core import ratelimit
from app.core.config import get_settings
from app.core.errors import RateLimited, responses
from app.core.routing import CommitRoute
from app.core.types import Text

router = APIRouter(route_class=CommitRoute, tags=["auth"])


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


@router.post(
    "/v1/auth/token",
    response_model=TokenResponse,
    responses=responses(InvalidGrant, UnsupportedGrant, InvalidClient, AssertionReplayed, OrganizationNotActive, RateLimited),
    summary="Get an access token",
    description=(
        "OAuth2 token endpoint (form-encoded).\n\n"
        "* `grant_type=password` with `username`, `password`: staff of the authority and of organisations, experts.\n"
        "* `grant_type=client_credentials` with `client_assertion_type="
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and `client_assertion`: operators (RFC 7523 "
        "`private_key_jwt`). The assertion is signed (ES256 or RS256) with a key registered at "
        "`POST /v1/organizations/{id}/keys`, `kid` in its header; claims `iss`=`sub`=the organisation id, "
        "`aud`=this URL (required), `iat` (required), a `jti` used once, `exp` at most 5 minutes ahead; "
        "an `nbf` or `iat` more than 30 s ahead is refused (`assertion_not_yet_valid`)."
    ),
)
async def token(
    request: Request,
    session: Session,
    grant_type: Annotated[Text, Form()],
    username: Annotated[Text | None, Form()] = None,
    password: Annotated[Text | None, Form()] = None,
    client_assertion_type: Annotated[Text | None, Form()] = None,
    client_assertion: Annotated[Text | None, Form()] = None,
) -> service.IssuedToken:
    settings = get_settings()
    if grant_type == "password":
        if not username or password is None:
            raise InvalidGrant("username and password are required")
        await service.limit_login_attempts(client_ip(request), username)
        return await service.password_grant(session, username, password)
    if grant_type == "client_credentials":
        await ratelimit.hit(f"login:{client_ip(request)}", settings.rate_limit_per_minute)
        return await service.client_credentials_grant(session, client_assertion_type, client_assertion)
    raise UnsupportedGrant("grant_type must be password or client_credentials")


@router.get(
    "/.well-known/jwks.json",
    dependencies=[public(300)],  # a rotated key is seen within five minutes
    summary="The platform's token verification keys (JWKS)",
)
async def jwks() -> dict:
    return keys.jwks()
