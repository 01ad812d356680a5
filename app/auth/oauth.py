"""The platform as the authorization server for people (RFC 6749 authorization code grant, RFC 7636
PKCE with S256 required, RFC 9700): a person confirms, with a one-time code sent to their phone,
that they entrust an operator; the operator exchanges the code for a refresh token bound to
(person, operator) and short-lived user tokens.

The pages (:mod:`app.auth.pages`) call :func:`validate_request`, :func:`start`, :func:`verify`
and :func:`decide`; the token endpoint calls :func:`authorization_code_grant` and
:func:`refresh_token_grant`.
"""

import base64
import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import repository
from app.auth.exceptions import GrantRevoked, InvalidGrant, InvalidTokenRequest
from app.auth.models import AuthorizationCode, AuthorizationRequest, RefreshToken
from app.auth.principal import CallerKind, Principal
from app.auth.service import authenticate_client, issue_token
from app.core import clock
from app.core.config import get_settings
from app.core.errors import DomainError, NotFound
from app.organizations import service as organizations_service
from app.organizations.schemas import SCOPES, OrgKind, OrgStatus
from app.users import service as users_service

# SCOPES (app.organizations.schemas): what an operator may ask a person for: submit their behaviours, read
# their account, order in the platform mall; the authority sets which each operator may ask for.
DEFAULT_SCOPE = "behaviours:submit account:read"
REQUEST_TTL = timedelta(minutes=15)
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # base64url of a SHA-256, unpadded
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")  # RFC 7636 §4.1
_EXTERNAL_ID = re.compile(r"^[\x21-\x7e]{1,100}$")


class ClientRefused(DomainError):
    """The client or its redirect URI cannot be trusted: an error page, never a redirect (RFC 6749 §4.1.2.1)."""

    status, code, title = 400, "invalid_client", "Unknown application"
    variants = ("invalid_redirect_uri",)


class RequestNotFound(NotFound):
    code, title = "authorization_request_not_found", "This sign-in has ended"


@dataclass(frozen=True)
class RedirectError(Exception):
    """An error to send back to the client at its (validated) redirect URI (RFC 6749 §4.1.2.1)."""

    redirect_uri: str
    error: str
    description: str
    state: str | None

    @property
    def location(self) -> str:
        params = {"error": self.error, "error_description": self.description}
        if self.state:
            params["state"] = self.state
        return redirect_to(self.redirect_uri, params)


@dataclass(frozen=True)
class ValidRequest:
    """An authorization request whose client, redirect URI, PKCE challenge, scopes and state are acceptable."""

    client_id: uuid.UUID
    client_name: str
    redirect_uri: str
    scope: str
    state: str
    code_challenge: str
    allowed: frozenset[str] = frozenset()  # what the authority lets this operator ask for

    @property
    def scopes(self) -> list[str]:
        return self.scope.split()


def redirect_to(redirect_uri: str, params: dict[str, str]) -> str:
    """The registered URI with ``params`` added to its query (RFC 6749 §3.1.2: its own query is kept)."""
    return redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode(params)


def _sha256(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


async def validate_client(
    session: AsyncSession, client_id: str | None, redirect_uri: str | None
) -> ValidRequest:
    """The client and its EXACT redirect URI first; anything wrong here is ``ClientRefused`` (an error page)."""
    try:
        org_id = uuid.UUID(client_id or "")
    except ValueError as exc:
        raise ClientRefused("client_id is not a registered application") from exc
    profile = await organizations_service.client_profile(session, org_id)
    if profile is None or profile.kind != OrgKind.operator or profile.status != OrgStatus.approved:
        raise ClientRefused("client_id is not an approved operator's application")
    if not redirect_uri or not await organizations_service.redirect_uri_registered(
        session, org_id, redirect_uri
    ):
        raise ClientRefused(
            "redirect_uri is not exactly one the application registered", code="invalid_redirect_uri"
        )
    return ValidRequest(org_id, profile.name, redirect_uri, "", "", "", profile.allowed_scopes)


async def validate_request(session: AsyncSession, params: dict[str, list[str]]) -> ValidRequest:
    """Check an authorization request: ``ClientRefused`` (show a page) or ``RedirectError`` (send back)."""
    for name in ("client_id", "redirect_uri"):
        if len(params.get(name, [])) > 1:
            raise ClientRefused(f"{name} is given more than once")
    one = {name: values[0] for name, values in params.items() if values}
    client = await validate_client(session, one.get("client_id"), one.get("redirect_uri"))
    state = one.get("state")

    def refuse(error: str, description: str) -> RedirectError:
        return RedirectError(
            client.redirect_uri, error, description, state if state and len(state) <= 500 else None
        )

    if any(len(values) > 1 for values in params.values()):
        raise refuse("invalid_request", "a parameter is given more than once")
    if one.get("response_type") != "code":
        raise refuse("unsupported_response_type", "response_type must be code")
    if not state or len(state) > 500:
        raise refuse("invalid_request", "state is required (at most 500 characters)")
    if one.get("code_challenge_method") != "S256" or not _CHALLENGE.match(one.get("code_challenge", "")):
        raise refuse("invalid_request", "PKCE is required: code_challenge with code_challenge_method=S256")
    given = one.get("scope")
    scopes = given.split() if given else [s for s in DEFAULT_SCOPE.split() if s in client.allowed]
    if not scopes or any(s not in SCOPES for s in scopes):
        raise refuse("invalid_scope", f"scope may name only {', '.join(SCOPES)}")
    if any(s not in client.allowed for s in scopes):
        allowed = " ".join(s for s in SCOPES if s in client.allowed) or "nothing"
        raise refuse("invalid_scope", f"this application may ask only for {allowed}")
    scope = " ".join(s for s in SCOPES if s in scopes)
    return ValidRequest(
        client.client_id,
        client.client_name,
        client.redirect_uri,
        scope,
        state,
        one["code_challenge"],
        client.allowed,
    )


async def start(
    session: AsyncSession, request: ValidRequest, phone: str, client_ip: str, browser: str
) -> AuthorizationRequest:
    """The person gave their phone number: send a one-time code, remember the request for this browser."""
    sent = await users_service.send_code(session, phone, client_ip)
    now = clock.now()
    row = AuthorizationRequest(
        browser_sha256=_sha256(browser),
        client_id=request.client_id,
        redirect_uri=request.redirect_uri,
        scope=request.scope,
        state=request.state,
        code_challenge=request.code_challenge,
        identity_hash=sent.identity_hash,
        one_time_code_id=sent.id,
        created_at=now,
        expires_at=now + REQUEST_TTL,
    )
    await repository.insert_request(session, row)
    return row


async def pending(session: AsyncSession, request_id: uuid.UUID, browser: str) -> AuthorizationRequest:
    """This browser's live, undecided request ``request_id`` (``authorization_request_not_found`` else)."""
    row = await repository.request_for_update(session, request_id)
    if (
        row is None
        or not hmac.compare_digest(row.browser_sha256, _sha256(browser))
        or row.expires_at <= clock.now()
        or row.decided_at is not None
    ):
        raise RequestNotFound(
            "this sign-in has ended or belongs to another browser: start again from the app"
        )
    return row


async def verify(session: AsyncSession, row: AuthorizationRequest, code: str) -> users_service.CodeCheck:
    """Check the one-time code of the request; a right one marks the person verified."""
    assert row.one_time_code_id is not None
    check = await users_service.check_code(session, row.one_time_code_id, code)
    if check.outcome == users_service.CodeOutcome.verified and check.identity_hash == row.identity_hash:
        row.verified_at = clock.now()
        await session.flush()
    return check


async def code_usable(session: AsyncSession, row: AuthorizationRequest) -> bool:
    """Whether the request's one-time code may still be tried (the code page offers its form only then)."""
    return row.one_time_code_id is not None and await users_service.code_usable(session, row.one_time_code_id)


async def client_name(session: AsyncSession, client_id: uuid.UUID) -> str:
    profile = await organizations_service.client_profile(session, client_id)
    return profile.name if profile else ""


async def decide(session: AsyncSession, row: AuthorizationRequest, approve: bool) -> str:
    """The person approved or denied: where to send the browser (with a code, or ``access_denied``)."""
    if row.verified_at is None or row.identity_hash is None:
        raise RequestNotFound("confirm your phone number first")
    now = clock.now()
    row.decided_at = now
    await session.flush()
    if not approve:
        return redirect_to(row.redirect_uri, {"error": "access_denied", "state": row.state})
    code = secrets.token_urlsafe(32)
    await repository.insert_code(
        session,
        AuthorizationCode(
            code_sha256=_sha256(code),
            client_id=row.client_id,
            redirect_uri=row.redirect_uri,
            code_challenge=row.code_challenge,
            identity_hash=row.identity_hash,
            scope=row.scope,
            agreement_version=get_settings().agreement_version,
            consented_at=now,
            expires_at=now + timedelta(seconds=get_settings().oauth_code_ttl_seconds),
        ),
    )
    return redirect_to(row.redirect_uri, {"code": code, "state": row.state})


# ---- the token endpoint --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonTokens:
    """What the operator receives for a person: a user token, and the refresh token to get the next ones."""

    access_token: str
    expires_in: int
    refresh_token: str
    scope: str
    user_id: uuid.UUID
    external_user_id: str
    token_type: str = "bearer"


async def _issue(
    session: AsyncSession,
    client_id: uuid.UUID,
    user_id: uuid.UUID,
    entrustment_id: int,
    scope: str,
    family_id: uuid.UUID,
    external_user_id: str,
    now: datetime,
    token_scope: str | None = None,
) -> PersonTokens:
    """A refresh token keeping the granted ``scope``, and a user token with ``token_scope`` (default: the same)."""
    token_scope = scope if token_scope is None else token_scope
    refresh = secrets.token_urlsafe(32)
    await repository.insert_refresh_token(
        session,
        RefreshToken(
            token_sha256=_sha256(refresh),
            family_id=family_id,
            client_id=client_id,
            user_id=user_id,
            entrustment_id=entrustment_id,
            scope=scope,
            created_at=now,
            expires_at=now + timedelta(days=get_settings().refresh_token_ttl_days),
        ),
    )
    token = issue_token(
        Principal(CallerKind.user, CallerKind.user, user_id, client_id),
        extra_claims={"azp": str(client_id), "scope": token_scope, "fam": str(family_id)},
    )
    return PersonTokens(token.access_token, token.expires_in, refresh, token_scope, user_id, external_user_id)


async def authorization_code_grant(
    session: AsyncSession,
    assertion_type: str | None,
    assertion: str | None,
    code: str | None,
    redirect_uri: str | None,
    code_verifier: str | None,
    external_user_id: str | None,
) -> PersonTokens:
    client_id = await authenticate_client(session, assertion_type, assertion)
    if not code or not redirect_uri or not code_verifier:
        raise InvalidTokenRequest("code, redirect_uri and code_verifier are required")
    if external_user_id is not None and not _EXTERNAL_ID.match(external_user_id):
        raise InvalidTokenRequest("external_user_id is 1 to 100 printable ASCII characters")
    row = await repository.code_for_update(session, _sha256(code))
    now = clock.now()
    if row is None or row.client_id != client_id:
        raise InvalidGrant("unknown authorization code")  # another client's code is nobody's
    if row.used_at is not None:
        if row.family_id is not None:
            await repository.revoke_family(session, row.family_id, now)
        raise GrantRevoked("this code was used before: what it issued is revoked", code="code_reused")
    if row.expires_at <= now:
        raise InvalidGrant(
            "the authorization code expired: send the person through /oauth/authorize again",
            code="code_expired",
        )
    if redirect_uri != row.redirect_uri:
        raise InvalidGrant(
            "redirect_uri differs from the authorization request's", code="redirect_uri_mismatch"
        )
    if not _VERIFIER.match(code_verifier) or not hmac.compare_digest(s256(code_verifier), row.code_challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge", code="invalid_code_verifier")
    family_id = uuid.uuid4()
    row.used_at, row.family_id = now, family_id
    await session.flush()
    entrustment = await users_service.confirm_entrustment(
        session, client_id, row.identity_hash, row.agreement_version, row.scope, external_user_id
    )
    return await _issue(
        session,
        client_id,
        entrustment.user_id,
        entrustment.id,
        row.scope,
        family_id,
        entrustment.external_user_id,
        now,
    )


async def refresh_token_grant(
    session: AsyncSession, assertion_type: str | None, assertion: str | None, refresh_token: str | None
) -> PersonTokens:
    client_id = await authenticate_client(session, assertion_type, assertion)
    if not refresh_token:
        raise InvalidTokenRequest("refresh_token is required")
    row = await repository.refresh_token_for_update(session, _sha256(refresh_token))
    now = clock.now()
    if row is None or row.client_id != client_id:
        raise InvalidGrant("unknown refresh token")
    if row.revoked_at is not None:
        if not await users_service.entrustment_live(session, row.entrustment_id):
            # the person withdrew it (which revoked the family): say so, the operator must not retry
            raise InvalidGrant("the person withdrew the entrustment", code="entrustment_withdrawn")
        raise InvalidGrant("this refresh token was revoked", code="token_revoked")
    if row.rotated_at is not None:
        await repository.revoke_family(session, row.family_id, now)
        raise GrantRevoked(
            "this refresh token was used before: every token of its family is revoked; "
            "send the person through /oauth/authorize again",
            code="refresh_token_reused",
        )
    if row.expires_at <= now:
        raise InvalidGrant("the refresh token expired", code="refresh_token_expired")
    if not await users_service.entrustment_live(session, row.entrustment_id):
        await repository.revoke_family(session, row.family_id, now)
        raise GrantRevoked("the person withdrew the entrustment", code="entrustment_withdrawn")
    row.rotated_at = now
    await session.flush()
    external = await users_service.external_id_of(session, row.entrustment_id)
    profile = await organizations_service.client_profile(session, client_id)
    allowed = profile.allowed_scopes if profile else frozenset()
    # what the person granted, within what the authority lets the operator ask for now
    token_scope = " ".join(s for s in row.scope.split() if s in allowed)
    return await _issue(
        session,
        client_id,
        row.user_id,
        row.entrustment_id,
        row.scope,
        row.family_id,
        external,
        now,
        token_scope,
    )


# ---- what the person's own page asks, and the purge ----------------------------------------------------


async def revoke_person_tokens(
    session: AsyncSession, user_id: uuid.UUID, client_id: uuid.UUID | None = None
) -> int:
    """Revoke every refresh-token family of the person (of one operator when ``client_id`` is given): their
    user tokens stop at once, and the operator's next refresh answers ``entrustment_withdrawn``."""
    return await repository.revoke_families_of(session, user_id, client_id, clock.now())


async def purge_expired(session: AsyncSession) -> dict[str, int]:
    """Delete expired authorization requests and codes, and rotated or revoked refresh tokens past expiry."""
    return await repository.purge_expired(session, clock.now())
