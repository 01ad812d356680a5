"""Organisations: applications, the authority's decisions, staff logins and registered keys."""

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.core import audit, clock, db, passwords, security
from app.core.config import get_settings
from app.core.pagination import page
from app.organizations import repository
from app.organizations.exceptions import (
    DuplicateOrganization,
    InvalidKey,
    InvalidRedirectUri,
    InvalidTransition,
    KeyExists,
    KeyNotFound,
    NotAnOperator,
    NotAnOperatorOrganization,
    NotYourOrganization,
    OrganizationNotFound,
    RedirectUriExists,
    RedirectUriNotFound,
    UsernameTaken,
)
from app.organizations.models import OperatorKey, Organization, RedirectUri, StaffUser
from app.organizations.schemas import (
    SCOPES,
    OrganizationCreate,
    OrgDecision,
    OrgKind,
    OrgStatus,
    StaffRole,
)
from app.webhooks import service as webhooks_service

# decision → (states it may start from, state it leads to)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    OrgDecision.approve: ((OrgStatus.pending,), OrgStatus.approved),
    OrgDecision.reject: ((OrgStatus.pending,), OrgStatus.rejected),
    OrgDecision.suspend: ((OrgStatus.approved,), OrgStatus.suspended),
    OrgDecision.reinstate: ((OrgStatus.suspended,), OrgStatus.approved),
}


@dataclass(frozen=True)
class StaffLogin:
    """A staff account as the password check reads it, with its organisation's kind and status."""

    id: uuid.UUID
    password_hash: str
    role: str
    org_id: uuid.UUID | None
    is_org_admin: bool
    disabled_at: datetime | None
    org_kind: str | None
    org_status: str | None


@dataclass(frozen=True)
class StaffStanding:
    """What every request of a staff token checks: the account is live, and its organisation's status."""

    disabled: bool
    org_status: str | None  # None for staff of no organisation


@dataclass(frozen=True)
class ClientKey:
    """An organisation asking for a client token, with its key ``kid`` (``jwk`` None when it has none)."""

    kind: str
    status: str
    algorithm: str | None
    jwk: dict[str, Any] | None
    revoked_at: datetime | None


async def create_staff_user(
    session: AsyncSession,
    username: str,
    password: str,
    role: str,
    org_id: uuid.UUID | None = None,
    is_org_admin: bool = False,
) -> StaffUser:
    if await repository.username_taken(session, username):
        raise UsernameTaken(f"the username {username!r} is taken")
    user = StaffUser(
        username=username,
        password_hash=await asyncio.to_thread(passwords.hash_password, password),
        role=role,
        org_id=org_id,
        is_org_admin=is_org_admin,
        created_at=clock.now(),
    )
    try:
        return await repository.insert_staff_user(session, user)
    except IntegrityError as exc:
        raise UsernameTaken(f"the username {username!r} is taken") from exc


async def apply(session: AsyncSession, data: OrganizationCreate) -> Organization:
    if await repository.live_application_exists(session, data.kind, data.credit_code):
        raise DuplicateOrganization()
    org = Organization(kind=data.kind, name=data.name, credit_code=data.credit_code, created_at=clock.now())
    try:
        await repository.insert(session, org)
    except IntegrityError as exc:
        raise DuplicateOrganization() from exc
    await create_staff_user(
        session, data.admin.username, data.admin.password, StaffRole.org, org.id, is_org_admin=True
    )
    audit.record(
        session,
        actor="public",
        action="organization.applied",
        subject_type="organization",
        subject_id=org.id,
        data={"kind": org.kind, "name": org.name, "credit_code": org.credit_code},
    )
    return org


CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def credit_code_check_digit_ok(code: str) -> bool:
    """Whether an 18-character unified social credit code ends in its check character (GB 32100-2015).

    The registration page checks it so a mistyped code is caught at once; the API checks the format.
    """
    code = code.strip().upper()
    if len(code) != 18 or any(c not in CREDIT_CODE_ALPHABET for c in code):
        return False
    total = sum(CREDIT_CODE_ALPHABET.index(c) * w for c, w in zip(code, _CREDIT_CODE_WEIGHTS, strict=False))
    return CREDIT_CODE_ALPHABET[(31 - total % 31) % 31] == code[17]


async def application_of(session: AsyncSession, username: str) -> Organization | None:
    """The organisation of the staff account ``username`` (its application and status), or None.

    The sign-in page shows it to an organisation's staff whose password was right but whose
    organisation is not approved (pending, rejected with the reason, suspended).
    """
    org_id = await repository.staff_org_id(session, username)
    return None if org_id is None else await repository.get(session, org_id)


async def get(session: AsyncSession, org_id: uuid.UUID) -> Organization:
    org = await repository.get(session, org_id)
    if org is None:
        raise OrganizationNotFound()
    return org


async def get_for(session: AsyncSession, principal: Principal, org_id: uuid.UUID) -> Organization:
    """The authority sees any organisation; staff only their own (others: 404, not 403)."""
    if principal.role != StaffRole.authority and principal.org_id != org_id:
        raise OrganizationNotFound()
    return await get(session, org_id)


async def decide(
    session: AsyncSession, principal: Principal, org_id: uuid.UUID, decision: str, reason: str | None
) -> Organization:
    sources, target = TRANSITIONS[decision]
    if not await repository.set_status(session, org_id, sources, target, reason, clock.now()):
        org = await get(session, org_id)
        raise InvalidTransition(f"cannot {decision} an organisation that is {org.status}")
    audit.record(
        session,
        actor=principal.actor,
        action=f"organization.{decision}",
        subject_type="organization",
        subject_id=org_id,
        data={"to": str(target), "reason": reason},
    )
    if decision == OrgDecision.suspend:
        await webhooks_service.emit(
            session,
            org_id=org_id,
            type="organization.suspended",
            subject_type="organization",
            subject_id=org_id,
            payload={"organization_id": org_id, "reason": reason},
        )
    decided = await repository.get(session, org_id, fresh=True)
    assert decided is not None
    return decided


async def list_(
    session: AsyncSession, *, status: str | None, kind: str | None, limit: int, cursor: str | None
) -> dict:
    rows = await repository.list_(session, status=status, kind=kind, limit=limit, cursor=cursor)
    return page(rows, limit, lambda o: [o.created_at, o.id])


def _own_org(principal: Principal, org_id: uuid.UUID) -> None:
    if principal.org_id != org_id:
        raise NotYourOrganization("only the organisation's own admin manages its keys")


async def register_key(
    session: AsyncSession, principal: Principal, org_id: uuid.UUID, jwk: dict
) -> OperatorKey:
    _own_org(principal, org_id)
    if principal.role != "operator":
        raise NotAnOperator("keys sign operators' client assertions and behaviour batches")
    try:
        public, algorithm = security.validate_public_jwk(jwk)
    except security.JoseError as exc:
        raise InvalidKey(
            exc.detail, code=exc.code if exc.code != "unsupported_key" else "unsupported_key"
        ) from exc
    kid = security.thumbprint(public)
    if await repository.key(session, org_id, kid) is not None:
        raise KeyExists(f"the key {kid} is already registered")
    key = await repository.insert_key(
        session, OperatorKey(org_id=org_id, kid=kid, algorithm=algorithm, jwk=public, created_at=clock.now())
    )
    audit.record(
        session,
        actor=principal.actor,
        action="key.registered",
        subject_type="organization",
        subject_id=org_id,
        data={"kid": kid, "algorithm": algorithm},
    )
    return key


async def register_key_pem(
    session: AsyncSession, principal: Principal, org_id: uuid.UUID, pem: str
) -> OperatorKey:
    """Register a PEM public key (the console's upload), checked as a JWK is; a private key is refused."""
    try:
        jwk = security.jwk_from_public_pem(pem)
    except security.JoseError as exc:
        raise InvalidKey(exc.detail, code=exc.code) from exc
    return await register_key(session, principal, org_id, jwk)


async def list_keys(session: AsyncSession, principal: Principal, org_id: uuid.UUID) -> list[OperatorKey]:
    _own_org(principal, org_id)
    return await repository.keys(session, org_id)


async def revoke_key(session: AsyncSession, principal: Principal, org_id: uuid.UUID, kid: str) -> OperatorKey:
    _own_org(principal, org_id)
    key = await repository.key(session, org_id, kid)
    if key is None:
        raise KeyNotFound()
    if key.revoked_at is None:
        key.revoked_at = clock.now()
        await session.flush()
        audit.record(
            session,
            actor=principal.actor,
            action="key.revoked",
            subject_type="organization",
            subject_id=org_id,
            data={"kid": kid},
        )
    return key


async def public_key(session: AsyncSession, org_id: uuid.UUID, kid: str) -> OperatorKey | None:
    """A live key of ``org_id`` (for verifying signed submissions), or None."""
    key = await repository.key(session, org_id, kid)
    return key if key is not None and key.revoked_at is None else None


async def registered_key(session: AsyncSession, org_id: uuid.UUID, kid: str) -> OperatorKey | None:
    """A key ``org_id`` registered under ``kid``, live or revoked (re-verifying what it signed), or None."""
    return await repository.key(session, org_id, kid)


async def authority_exists(session: AsyncSession) -> bool:
    return await repository.first_authority_id(session) is not None


async def first_authority_id(session: AsyncSession) -> uuid.UUID | None:
    """The oldest authority account (the demo acts as it), or None."""
    return await repository.first_authority_id(session)


async def staff_id(session: AsyncSession, username: str) -> uuid.UUID | None:
    """The id of the staff account ``username``, or None."""
    return await repository.staff_id(session, username)


async def public_list(session: AsyncSession, kind: str, limit: int, cursor: str | None) -> dict:
    """Approved organisations of one kind, by name: what the public may know of them."""
    rows = await repository.list_approved(session, kind, limit, cursor)
    return page(rows, limit, lambda o: [o.name, o.id])


async def count_approved(session: AsyncSession) -> dict[str, int]:
    """Approved organisations by kind (kinds with none are absent)."""
    return await repository.count_approved(session)


# ---- what the auth domain asks --------------------------------------------------------------------------


async def staff_login(session: AsyncSession, username: str) -> StaffLogin | None:
    """The account ``username`` for the password check, or None."""
    row = await repository.staff_login(session, username)
    return None if row is None else StaffLogin(**row._asdict())


async def staff_standing(session: AsyncSession, staff_id: uuid.UUID) -> StaffStanding | None:
    """The standing of a staff account per request (one indexed read on asyncpg), or None when it is gone."""
    row = await repository.staff_standing(await db.raw_connection(session), staff_id)
    return (
        None
        if row is None
        else StaffStanding(disabled=row["disabled_at"] is not None, org_status=row["status"])
    )


async def status_of(session: AsyncSession, org_id: uuid.UUID | None) -> str | None:
    """The organisation's status per request of its client token (one indexed read on asyncpg), or None."""
    return await repository.status(await db.raw_connection(session), org_id)


async def touch_key(session: AsyncSession, org_id: uuid.UUID, kid: str) -> None:
    """Note that the key ``kid`` just verified a client assertion or a batch (at most once a minute)."""
    await repository.touch_key(await db.raw_connection(session), org_id, kid, clock.now())


async def client_key(session: AsyncSession, org_id: uuid.UUID, kid: str) -> ClientKey | None:
    """The organisation ``org_id`` with its key ``kid`` (for a client assertion), or None when it does not exist."""
    row = await repository.client_key(session, org_id, kid)
    return None if row is None else ClientKey(**row._asdict())


# ---- what other domains ask (experts, the scenes demo) ----------------------------------------------------


async def usernames(session: AsyncSession, staff_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The usernames of these staff accounts, by id (the expert pool shows its experts' logins)."""
    if not staff_ids:
        return {}
    return await repository.usernames(session, staff_ids)


async def registered(session: AsyncSession, kind: str, credit_code: str) -> bool:
    """Whether an organisation of ``kind`` with this credit code exists, whatever its status."""
    return await repository.registered(session, kind, credit_code)


# ---- what the CER registry asks ---------------------------------------------------------------------------


async def names(session: AsyncSession, org_ids: Sequence[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    """The names of these organisations, by id (None and unknown ids are left out)."""
    wanted = list({i for i in org_ids if i is not None})
    if not wanted:
        return {}
    return await repository.names(session, wanted)


async def staff_org_id(session: AsyncSession, username: str) -> uuid.UUID | None:
    """The organisation of the staff account ``username`` (None: no such account, or of no organisation)."""
    return await repository.staff_org_id(session, username)


# ---- redirect URIs of operators (the authorization code flow, RFC 6749 §3.1.2, RFC 9700 §4.1) ------------

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})


def check_redirect_uri(uri: str) -> str:
    """``uri`` if it may be registered: absolute, https (loopback http outside production), no fragment,
    no user info, no wildcard, no whitespace; else ``invalid_redirect_uri`` saying why."""
    if uri != uri.strip() or any(c.isspace() or ord(c) < 0x20 or c in "*\\" for c in uri):
        raise InvalidRedirectUri("no spaces, control characters, backslashes or wildcards")
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018  # raises on a port that is not a number
    except ValueError as exc:
        raise InvalidRedirectUri(f"not a URI: {exc}") from exc
    if parts.fragment or "#" in uri:
        raise InvalidRedirectUri("a redirect URI has no fragment")
    if "@" in parts.netloc:
        raise InvalidRedirectUri("a redirect URI has no user info")
    host = (parts.hostname or "").lower()
    if not host:
        raise InvalidRedirectUri("a redirect URI names its host")
    if parts.scheme == "https":
        return uri
    loopback = f"[{host}]" in LOOPBACK_HOSTS or host in LOOPBACK_HOSTS
    if parts.scheme == "http" and loopback and get_settings().environment != "production":
        return uri
    raise InvalidRedirectUri(
        "a redirect URI uses https"
        + ("" if get_settings().environment == "production" else " (or http on a loopback address)")
    )


def _own_operator(principal: Principal, org_id: uuid.UUID) -> None:
    if principal.org_id != org_id:
        raise NotYourOrganization("only the organisation's own admin manages its redirect URIs")
    if principal.role != "operator":
        raise NotAnOperator("redirect URIs belong to operators (the apps people sign in through)")


async def add_redirect_uri(
    session: AsyncSession, principal: Principal, org_id: uuid.UUID, uri: str
) -> RedirectUri:
    _own_operator(principal, org_id)
    check_redirect_uri(uri)
    row = await repository.insert_redirect_uri(session, org_id, uri, clock.now())
    if row is None:
        raise RedirectUriExists()
    audit.record(
        session,
        actor=principal.actor,
        action="redirect_uri.registered",
        subject_type="organization",
        subject_id=org_id,
        data={"uri": uri},
    )
    return row


async def list_redirect_uris(
    session: AsyncSession, principal: Principal, org_id: uuid.UUID
) -> list[RedirectUri]:
    """The operator's redirect URIs: for its own admin, and for the authority (which sees every operator's)."""
    if principal.role != "authority" and (principal.org_id != org_id or not principal.is_org_admin):
        raise NotYourOrganization("only the organisation's own admin and the authority see its redirect URIs")
    return await repository.redirect_uris(session, org_id)


async def remove_redirect_uri(
    session: AsyncSession, principal: Principal, org_id: uuid.UUID, uri_id: int
) -> RedirectUri:
    _own_operator(principal, org_id)
    row = await repository.delete_redirect_uri(session, org_id, uri_id)
    if row is None:
        raise RedirectUriNotFound()
    audit.record(
        session,
        actor=principal.actor,
        action="redirect_uri.removed",
        subject_type="organization",
        subject_id=org_id,
        data={"uri": row.uri},
    )
    return row


async def redirect_uri_registered(session: AsyncSession, org_id: uuid.UUID, uri: str) -> bool:
    """Whether ``uri`` is exactly one of the operator's registered redirect URIs (the authorize endpoint)."""
    return await repository.redirect_uri_registered(session, org_id, uri)


@dataclass(frozen=True)
class ClientProfile:
    """An organisation as the authorization endpoint shows it to a person, with what the authority lets it do."""

    id: uuid.UUID
    name: str
    kind: str
    status: str
    allowed_scopes: frozenset[str] = frozenset()
    trusted_enrolment: bool = False

    @property
    def scope(self) -> str:
        """The allowed scopes, space-separated in their canonical order."""
        return " ".join(s for s in SCOPES if s in self.allowed_scopes)


async def client_profile(session: AsyncSession, org_id: uuid.UUID) -> ClientProfile | None:
    """The organisation ``org_id`` (its name, kind, status, allowed scopes and enrolment trust), or None."""
    org = await repository.get(session, org_id)
    if org is None:
        return None
    return ClientProfile(
        org.id, org.name, org.kind, org.status, frozenset(org.allowed_scopes.split()), org.trusted_enrolment
    )


# ---- what the authority lets an operator do (issue 14) ---------------------------------------------------


async def _operator(session: AsyncSession, org_id: uuid.UUID) -> Organization:
    org = await get(session, org_id)
    if org.kind != OrgKind.operator:
        raise NotAnOperatorOrganization(
            f"this organisation is a {org.kind}: only operators have this setting"
        )
    return org


async def set_allowed_scopes(
    session: AsyncSession, principal: Principal, org_id: uuid.UUID, scopes: Sequence[str], reason: str
) -> Organization:
    """The authority sets what the operator may ask people for (audited). Tokens already issued keep
    their scopes until they expire; a refresh narrows them to what is allowed now."""
    org = await _operator(session, org_id)
    before, after = org.allowed_scopes, " ".join(s for s in SCOPES if s in scopes)
    await repository.set_operator_settings(session, org_id, allowed_scopes=after)
    audit.record(
        session,
        actor=principal.actor,
        action="organization.allowed_scopes_set",
        subject_type="organization",
        subject_id=org_id,
        data={"from": before.split(), "to": after.split(), "reason": reason},
    )
    return await get_fresh(session, org_id)


async def set_trusted_enrolment(
    session: AsyncSession, principal: Principal, org_id: uuid.UUID, trusted: bool, reason: str
) -> Organization:
    """The authority marks the operator trusted (or not) to enrol people on its own word (audited)."""
    org = await _operator(session, org_id)
    before = org.trusted_enrolment
    await repository.set_operator_settings(session, org_id, trusted_enrolment=trusted)
    audit.record(
        session,
        actor=principal.actor,
        action="organization.trusted_enrolment_set",
        subject_type="organization",
        subject_id=org_id,
        data={"from": before, "to": trusted, "reason": reason},
    )
    return await get_fresh(session, org_id)


async def get_fresh(session: AsyncSession, org_id: uuid.UUID) -> Organization:
    org = await repository.get(session, org_id, fresh=True)
    assert org is not None  # it was just read
    return org


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    """Organisations by status: ``{"pending": 3, "approved": 12, …}`` (absent: none)."""
    return await repository.count_by_status(session)
