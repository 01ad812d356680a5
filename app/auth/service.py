"""Tokens: the password grant, the operators' ``private_key_jwt`` grant, and verification."""

import asyncio
import hashlib
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import keys, repository
from app.auth.exceptions import (
    AssertionReplayed,
    InvalidClient,
    InvalidGrant,
    InvalidToken,
    OrganizationNotActive,
)
from app.auth.principal import CallerKind, Principal
from app.core import audit, callers, clock, db, passwords, proofs, ratelimit, redis, security
from app.core.config import get_settings
from app.organizations import service as organizations_service
from app.organizations.schemas import OrgKind, OrgStatus, StaffRole
from app.users import service as users_service
from app.users.exceptions import PersonConfirmationRequired

ISSUER = "carbon-points"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


_ASSERTION_CODES = {
    "token_expired": "assertion_expired",
    "not_yet_valid": "assertion_not_yet_valid",
    "malformed_token": "malformed_assertion",
}


@dataclass(frozen=True)
class IssuedToken:
    """An access token as ``POST /v1/auth/token`` answers it."""

    access_token: str
    expires_in: int
    token_type: str = "bearer"


def issue_token(
    principal: Principal, ttl_seconds: int | None = None, extra_claims: dict[str, str] | None = None
) -> IssuedToken:
    settings = get_settings()
    user = principal.kind == CallerKind.user
    ttl = ttl_seconds or (settings.user_token_ttl_seconds if user else settings.token_ttl_seconds)
    now = clock.now()
    claims = {
        "iss": ISSUER,
        "sub": str(principal.subject),
        "typ": principal.kind,
        "role": principal.role,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    if principal.org_id:
        claims["org"] = str(principal.org_id)
    if principal.is_org_admin:
        claims["adm"] = True
    claims.update(extra_claims or {})
    return IssuedToken(access_token=security.sign_jwt(claims, keys.active()), expires_in=ttl)


async def password_grant(session: AsyncSession, username: str, password: str) -> IssuedToken:
    return issue_token(await check_password(session, username, password))


async def limit_login_attempts(ip: str, username: str) -> None:
    """One budget of password attempts a minute per client IP and username: the grant and the sign-in page."""
    await ratelimit.hit(f"login:{ip}:{username}", get_settings().login_rate_limit_per_minute)


async def check_password(session: AsyncSession, username: str, password: str) -> Principal:
    """A staff account's username and password → who it is (the password grant and the sign-in page)."""
    row = await organizations_service.staff_login(session, username)
    # argon2 takes tens of milliseconds of CPU: off the event loop (it releases the GIL)
    valid = await asyncio.to_thread(passwords.verify_password, row.password_hash if row else None, password)
    if row is None or not valid or row.disabled_at:
        raise InvalidGrant("wrong username or password")
    role = row.org_kind if row.role == StaffRole.org else row.role
    if row.role == StaffRole.org and row.org_status != OrgStatus.approved:
        raise OrganizationNotActive(f"the organisation is {row.org_status}")
    assert role is not None  # staff of an organisation: the organisation exists (foreign key)
    return Principal(CallerKind.staff, role, row.id, row.org_id, row.is_org_admin)


async def client_credentials_grant(
    session: AsyncSession, assertion_type: str | None, assertion: str | None
) -> IssuedToken:
    org_id = await authenticate_client(session, assertion_type, assertion)
    return issue_token(Principal(CallerKind.client, OrgKind.operator, org_id, org_id))


async def authenticate_client(
    session: AsyncSession, assertion_type: str | None, assertion: str | None
) -> uuid.UUID:
    """An approved operator's ``private_key_jwt`` client assertion (RFC 7523), used once → its id."""
    settings = get_settings()
    if assertion_type != CLIENT_ASSERTION_TYPE or not assertion:
        raise InvalidClient(
            f"client_assertion_type must be {CLIENT_ASSERTION_TYPE} with a client_assertion",
            code="malformed_assertion",
        )
    try:
        header = security.unverified_header(assertion)
        claims = security.unverified_claims(assertion)
    except security.JoseError as exc:
        raise InvalidClient(exc.detail, code=_ASSERTION_CODES.get(exc.code, exc.code)) from exc
    client_id = claims.get("iss")
    try:
        org_id = uuid.UUID(str(client_id))
    except ValueError as exc:
        raise InvalidClient("iss must be the client id (the organisation id)", code="unknown_client") from exc
    if claims.get("sub") != client_id:
        raise InvalidClient("iss and sub must both be the client id", code="invalid_claims")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise InvalidClient("the assertion header needs the kid of a registered key", code="unknown_kid")
    row = await organizations_service.client_key(session, org_id, kid)
    if row is None:
        raise InvalidClient("unknown client", code="unknown_client")
    if row.jwk is None or row.algorithm is None:
        raise InvalidClient("no key with this kid is registered", code="unknown_kid")
    if row.revoked_at is not None:
        raise InvalidClient("this key was revoked", code="key_revoked")
    try:
        verified = security.verify_jwt(
            assertion,
            row.jwk,
            row.algorithm,
            audience=settings.token_url,
            require=("exp", "jti", "iat"),
            refuse_future_iat=True,
        )
    except security.JoseError as exc:
        raise InvalidClient(exc.detail, code=_ASSERTION_CODES.get(exc.code, exc.code)) from exc
    now = clock.now().timestamp()
    if verified["exp"] - now > settings.client_assertion_max_lifetime_seconds + 5:
        raise InvalidClient("client assertions live at most 5 minutes", code="assertion_too_long")
    if row.kind != OrgKind.operator:
        raise InvalidClient("only operators authenticate with client credentials", code="unauthorized_client")
    if row.status != OrgStatus.approved:
        raise OrganizationNotActive(f"the organisation is {row.status}")
    jti = verified["jti"]
    if not isinstance(jti, str) or not 1 <= len(jti) <= 200:
        raise InvalidClient("jti must be a string of 1 to 200 characters", code="invalid_claims")
    await _use_jti_once(session, str(client_id), jti, int(verified["exp"]))
    await organizations_service.touch_key(session, org_id, kid)
    return org_id


async def _use_jti_once(session: AsyncSession, client_id: str, jti: str, exp: int) -> None:
    """Redis answers fast; PostgreSQL remembers, so a Redis flush does not reopen a replay."""
    ttl = max(1, exp - int(clock.now().timestamp()) + 60)
    try:
        fresh = await redis.client().set(f"jti:{client_id}:{jti}", b"1", nx=True, ex=ttl)
        if not fresh:
            raise AssertionReplayed()
    except RedisError:
        pass
    expires_at = datetime.fromtimestamp(exp, UTC) + timedelta(seconds=60)
    if not await repository.use_assertion(session, client_id, jti, expires_at):
        raise AssertionReplayed()


async def purge_used_assertions(session: AsyncSession) -> int:
    """Forget the client assertions past their expiry (a replay of one is refused as expired); how many."""
    return await repository.purge_used_assertions(session, clock.now())


async def issue_user_token(session: AsyncSession, operator: Principal, external_user_id: str) -> IssuedToken:
    """A user token minted by an operator the authority trusts to enrol on its own word, for the person it
    enrolled as ``external_user_id``, with the operator's allowed scopes (audited).

    ``person_confirmation_required`` for any other operator (its people confirm through ``/oauth/authorize``
    and it gets user tokens from its refresh tokens); ``not_entrusted`` if no such person.
    """
    assert operator.org_id is not None  # an operator's client token names its organisation
    profile = await organizations_service.client_profile(session, operator.org_id)
    if profile is None or not profile.trusted_enrolment:
        raise PersonConfirmationRequired()
    user_id = await users_service.entrusted_user(session, operator.org_id, external_user_id)
    audit.record(
        session,
        actor=operator.actor,
        action="user_token.minted",
        subject_type="user",
        subject_id=user_id,
        data={
            "operator_id": str(operator.org_id),
            "scope": profile.scope,
            "confirmed_by": "operator_asserted",
        },
    )
    return issue_token(
        Principal(CallerKind.user, CallerKind.user, user_id, operator.org_id, scopes=profile.allowed_scopes),
        extra_claims={"azp": str(operator.org_id), "scope": profile.scope},
    )


@dataclass(slots=True)
class _Verified:
    """What a token's signature and claims proved: they never change, so they are kept until ``exp``;
    and the epoch in which the caller's standing was last found good (:mod:`app.core.callers`)."""

    principal: Principal
    family: uuid.UUID | None
    exp: float
    kid: str
    digest: bytes  # the token's SHA-256: what its standing is known by in the workers' shared table
    standing_epoch: int = -1
    standing_until: float = 0.0


VERIFIED_TOKENS_KEPT = 20_000
"""Verified tokens this process remembers (least recently used forgotten first)."""
_verified: OrderedDict[bytes, _Verified] = OrderedDict()


def _remember(digest: bytes, verified: _Verified) -> None:
    _verified[digest] = verified
    if len(_verified) > VERIFIED_TOKENS_KEPT:
        _verified.popitem(last=False)


async def _verified_token(session: AsyncSession, token: str) -> _Verified:
    """The token's signature and claims, verified once per process and kept until the token expires.

    Keyed by the token's SHA-256. What the signature proves is kept; the caller's standing (account,
    organisation, entrustment, refresh family) is read again whenever this process hears of a change
    (:mod:`app.core.callers`), so a suspension, a withdrawal, a revoked family, a deleted account or a
    disabled staff account acts at once in every process. A kept token whose key no longer verifies (retired past its grace) is verified again, and refused.
    """
    digest = hashlib.sha256(token.encode()).digest()
    kept = _verified.get(digest)
    if kept is not None and kept.exp > time.time() and await keys.for_kid(session, kept.kid) is not None:
        _verified.move_to_end(digest)
        return kept
    _verified.pop(digest, None)
    try:
        header = security.unverified_header(token)
    except security.JoseError as exc:
        raise InvalidToken(exc.detail) from exc
    kid = str(header.get("kid"))
    key = await keys.for_kid(session, kid)
    if key is None:
        raise InvalidToken("unknown signing key")
    try:
        claims = security.verify_jwt(
            token, key.public_jwk, key.algorithm, issuer=ISSUER, require=("exp", "sub")
        )
        kind, role, subject = claims["typ"], claims["role"], uuid.UUID(claims["sub"])
        org_id = uuid.UUID(claims["org"]) if claims.get("org") else None
        # a user token from the authorization code flow: its refresh family must still be live
        family = uuid.UUID(str(claims["fam"])) if claims.get("fam") is not None else None
    except security.JoseError as exc:
        raise InvalidToken(exc.detail, code="token_expired" if exc.code == "token_expired" else None) from exc
    except (KeyError, ValueError) as exc:
        raise InvalidToken("the token lacks platform claims") from exc
    scopes = frozenset(str(claims.get("scope") or "").split()) if kind == CallerKind.user else frozenset()
    principal = Principal(kind, role, subject, org_id, bool(claims.get("adm")), scopes)
    verified = _Verified(principal, family, float(claims["exp"]), kid, digest)
    _remember(digest, verified)
    return verified


async def authenticate(session: AsyncSession, token: str, *, defer_standing: bool = False) -> Principal:
    """A bearer token → the caller, checked against the database (a suspension acts at once), or found good
    by another of the server's processes since the last change both heard of (:mod:`app.core.callers`).

    ``defer_standing``: a person's standing this process does not know is not read here but left to the route's
    statement, which checks it itself (:func:`app.core.callers.defer`: an order's, a balance read's)."""
    verified = await _verified_token(session, token)
    principal = verified.principal
    epoch, moment = callers.epoch(), time.monotonic()
    if epoch is not None and verified.standing_epoch == epoch and verified.standing_until > moment:
        return principal  # checked since the last change this process heard of (app.core.callers)
    # read before the check, as the epoch: a change heard during it makes the next request read again
    shared = callers.shared_proof(verified.digest)
    if shared is not None and shared[0] in proofs.table():
        # another process found it good since the last change both heard of
        _Standing(verified, epoch, moment, None).kept(for_seconds=shared[1])
        return principal
    standing = _Standing(verified, epoch, moment, shared)
    if defer_standing and principal.kind == CallerKind.user:
        callers.defer(session, standing)
    else:
        await standing.read(session)
    return principal


@dataclass(frozen=True, slots=True)
class _Standing:
    """A caller's standing to be found: with what was known when it was asked for (the epoch, the moment, the
    proof it would share), so that what is kept of it is what a change heard since makes read again."""

    verified: _Verified
    epoch: int | None
    moment: float
    shared: tuple[bytes, float] | None

    @property
    def family(self) -> uuid.UUID | None:
        return self.verified.family

    async def read(self, session: AsyncSession) -> None:
        """Read it (one indexed read; a token of the authorization code flow, its family's too): refused, raise
        why; good, keep it."""
        await _check_still_allowed(session, self.verified.principal)
        if self.family is not None and await repository.family_revoked(
            await db.statement_connection(session), self.family
        ):
            raise InvalidToken("what this token was issued from was revoked", code="token_revoked")
        self.found_good()

    def found_good(self) -> None:
        if self.shared is not None:
            proofs.table().add(self.shared[0])
        self.kept(for_seconds=callers.KEEP_SECONDS)

    def kept(self, *, for_seconds: float) -> None:
        if self.epoch is not None:
            self.verified.standing_epoch, self.verified.standing_until = self.epoch, self.moment + for_seconds


async def _check_still_allowed(session: AsyncSession, p: Principal) -> None:
    """One indexed read per request, on asyncpg directly (every authenticated call comes here)."""
    if p.kind == CallerKind.staff:
        staff = await organizations_service.staff_standing(session, p.subject)
        if staff is None or staff.disabled:
            raise InvalidToken("this account no longer exists")
        if p.org_id and staff.org_status != OrgStatus.approved:
            raise OrganizationNotActive(f"the organisation is {staff.org_status}")
    elif p.kind == CallerKind.client:
        status = await organizations_service.status_of(session, p.org_id)
        if status != OrgStatus.approved:
            raise OrganizationNotActive(f"the organisation is {status}")
    elif p.kind == CallerKind.user:
        user = await users_service.standing(session, p.subject, p.org_id)
        if user is None or user.deleted:
            raise InvalidToken("this account no longer exists")
        if user.operator_status != OrgStatus.approved:
            raise OrganizationNotActive(f"the operator is {user.operator_status}")
        if (
            not user.entrusted
        ):  # the person withdrew the entrustment: the operator's app no longer acts for them
            raise InvalidToken("the entrustment of this operator was withdrawn", code="entrustment_withdrawn")
    else:
        raise InvalidToken("unknown token type")
