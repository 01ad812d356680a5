import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from pydantic import BaseModel, Field

from app.auth import keys, oauth, service
from app.auth.dependencies import Session, client_ip, public
from app.auth.exceptions import (
    AssertionReplayed,
    InvalidClient,
    InvalidGrant,
    InvalidTokenRequest,
    OrganizationNotActive,
    UnsupportedGrant,
)
from app.core import ratelimit
from app.core.config import get_settings
from app.core.errors import RateLimited, responses
from app.core.routing import CommitRoute
from app.core.types import Text
from app.users.exceptions import AlreadyEntrusted, ExternalIdTaken

router = APIRouter(route_class=CommitRoute, tags=["auth"])


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class PersonTokenResponse(TokenResponse):
    """The answer to the ``authorization_code`` and ``refresh_token`` grants: a user token and the next refresh token."""

    refresh_token: str = Field(description="Keep it secret; it works once (each refresh answers a new one)")
    scope: str
    user_id: uuid.UUID
    external_user_id: str = Field(description="Your id of the person in behaviour submissions")


@router.post(
    "/v1/auth/token",
    response_model=PersonTokenResponse | TokenResponse,
    responses=responses(
        InvalidGrant,
        InvalidTokenRequest,
        UnsupportedGrant,
        InvalidClient,
        AssertionReplayed,
        OrganizationNotActive,
        RateLimited,
        ExternalIdTaken,
        AlreadyEntrusted,
    ),
    summary="Get an access token",
    description=(
        "OAuth2 token endpoint (form-encoded).\n\n"
        "* `grant_type=password` with `username`, `password`: staff of the authority and of organisations, experts.\n"
        "* `grant_type=client_credentials` with `client_assertion_type="
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and `client_assertion`: operators (RFC 7523 "
        "`private_key_jwt`). The assertion is signed (ES256 or RS256) with a key registered at "
        "`POST /v1/organizations/{id}/keys`, `kid` in its header; claims `iss`=`sub`=the organisation id, "
        "`aud`=this URL (required), `iat` (required), a `jti` used once, `exp` at most 5 minutes ahead; "
        "an `nbf` or `iat` more than 30 s ahead is refused (`assertion_not_yet_valid`).\n"
        "* `grant_type=authorization_code` with the operator's client assertion as above, `code` (from "
        "`/oauth/authorize`, single use, 60 s), `redirect_uri` (as in the authorization request), `code_verifier` "
        "(RFC 7636, S256) and optionally `external_user_id` (your id of the person; default their `user_id`): "
        "the entrustment is recorded as confirmed by the person, and you receive a user token and a "
        "`refresh_token` bound to (person, you). A second use of a code revokes what the first issued "
        "(`code_reused`).\n"
        "* `grant_type=refresh_token` with the client assertion and `refresh_token`: a new user token and a new "
        "refresh token (rotation). An old refresh token used again revokes its whole family "
        "(`refresh_token_reused`); after the person withdraws the entrustment, `entrustment_withdrawn`."
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
    code: Annotated[Text | None, Form(max_length=200)] = None,
    redirect_uri: Annotated[Text | None, Form(max_length=2000)] = None,
    code_verifier: Annotated[Text | None, Form(max_length=200)] = None,
    refresh_token: Annotated[Text | None, Form(max_length=200)] = None,
    external_user_id: Annotated[Text | None, Form(max_length=100)] = None,
) -> service.IssuedToken | oauth.PersonTokens:
    settings = get_settings()
    if grant_type == "password":
        if not username or password is None:
            raise InvalidGrant("username and password are required")
        await service.limit_login_attempts(client_ip(request), username)
        return await service.password_grant(session, username, password)
    if grant_type == "client_credentials":
        await ratelimit.hit(f"login:{client_ip(request)}", settings.rate_limit_per_minute)
        return await service.client_credentials_grant(session, client_assertion_type, client_assertion)
    if grant_type in ("authorization_code", "refresh_token"):
        await ratelimit.hit(f"login:{client_ip(request)}", settings.rate_limit_per_minute)
        if grant_type == "refresh_token":
            return await oauth.refresh_token_grant(
                session, client_assertion_type, client_assertion, refresh_token
            )
        return await oauth.authorization_code_grant(
            session,
            client_assertion_type,
            client_assertion,
            code,
            redirect_uri,
            code_verifier,
            external_user_id,
        )
    raise UnsupportedGrant(
        "grant_type must be password, client_credentials, authorization_code or refresh_token"
    )


@router.get(
    "/.well-known/jwks.json",
    dependencies=[public(300)],  # a rotated key is seen within five minutes
    summary="The platform's token verification keys (JWKS)",
)
async def jwks() -> dict:
    return keys.jwks()
