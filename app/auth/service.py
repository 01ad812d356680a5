"""Tokens: the password grant, the operators' ``private_key_jwt`` grant, and verification."""

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import keys
from app.auth.exceptions import (
    AssertionReplayed,
    InvalidClient,
    InvalidGrant,
    InvalidToken,
    OrganizationNotActive,
)
from app.auth.principal import Principal
from app.core import clock, db, passwords, ratelimit, redis, security
from app.core.config import get_settings

ISSUER = "carbon-points"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


_ASSERTION_CODES = {
    "token_expired": "assertion_expired",
    "not_yet_valid": "assertion_not_yet_valid",
    "malformed_token": "malformed_assertion",
}


def issue_token(principal: Principal, ttl_seconds: int | None = None) -> dict[str, Any]:
    settings = get_settings()
    ttl = ttl_seconds or (settings.user_token_ttl_seconds if principal.kind == "user" else settings.token_ttl_seconds)
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
    return {"access_token": security.sign_jwt(claims, keys.active()), "token_type": "bearer", "expires_in": ttl}


async def password_grant(session: AsyncSession, username: str, password: str) -> dict[str, Any]:
    return issue_token(await check_password(session, username, password))


async def limit_login_attempts(ip: str, username: str) -> None:
    """One budget of password attempts a minute per client IP and username: the grant and the sign-in page."""
    await ratelimit.hit(f"login:{ip}:{username}", get_settings().login_rate_limit_per_minute)


async def check_password(session: AsyncSession, username: str, password: str) -> Principal:
    """A staff account's username and password → who it is (the password grant and the sign-in page)."""
    row = (
        await session.execute(
            sa.text(
                "SELECT s.id, s.password_hash, s.role, s.org_id, s.is_org_admin, s.disabled_at,"
                " o.kind AS org_kind, o.status AS org_status"
                " FROM staff_users s LEFT JOIN organizations o ON o.id = s.org_id WHERE s.username = :u"
            ),
            {"u": username},
        )
    ).first()
    # argon2 takes tens of milliseconds of CPU: off the event loop (it releases the GIL)
    valid = await asyncio.to_thread(passwords.verify_password, row.password_hash if row else None, password)
    if not valid or row.disabled_at:
        raise InvalidGrant("wrong username or password")
    role = row.org_kind if row.role == "org" else row.role
    if row.role == "org" and row.org_status != "approved":
        raise OrganizationNotActive(f"the organisation is {row.org_status}")
    return Principal("staff", role, row.id, row.org_id, row.is_org_admin)


async def client_credentials_grant(
    session: AsyncSession, assertion_type: str | None, assertion: str | None
) -> dict[str, Any]:
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
    row = (
        await session.execute(
            sa.text(
                "SELECT k.algorithm, k.jwk, k.revoked_at, o.kind, o.status FROM organizations o"
                " LEFT JOIN operator_keys k ON k.org_id = o.id AND k.kid = :kid WHERE o.id = :org"
            ),
            {"kid": kid, "org": org_id},
        )
    ).first()
    if row is None:
        raise InvalidClient("unknown client", code="unknown_client")
    if row.jwk is None:
        raise InvalidClient("no key with this kid is registered", code="unknown_kid")
    if row.revoked_at is not None:
        raise InvalidClient("this key was revoked", code="key_revoked")
    try:
        verified = security.verify_jwt(
            assertion, row.jwk, row.algorithm, audience=settings.token_url, require=("exp", "jti", "iat"),
            refuse_future_iat=True,
        )
    except security.JoseError as exc:
        raise InvalidClient(exc.detail, code=_ASSERTION_CODES.get(exc.code, exc.code)) from exc
    now = clock.now().timestamp()
    if verified["exp"] - now > settings.client_assertion_max_lifetime_seconds + 5:
        raise InvalidClient("client assertions live at most 5 minutes", code="assertion_too_long")
    if row.kind != "operator":
        raise InvalidClient("only operators authenticate with client credentials", code="unauthorized_client")
    if row.status != "approved":
        raise OrganizationNotActive(f"the organisation is {row.status}")
    jti = verified["jti"]
    if not isinstance(jti, str) or not 1 <= len(jti) <= 200:
        raise InvalidClient("jti must be a string of 1 to 200 characters", code="invalid_claims")
    await _use_jti_once(session, str(client_id), jti, int(verified["exp"]))
    return issue_token(Principal("client", "operator", org_id, org_id))


async def _use_jti_once(session: AsyncSession, client_id: str, jti: str, exp: int) -> None:
    """Redis answers fast; PostgreSQL remembers, so a Redis flush does not reopen a replay."""
    ttl = max(1, exp - int(clock.now().timestamp()) + 60)
    try:
        fresh = await redis.client().set(f"jti:{client_id}:{jti}", b"1", nx=True, ex=ttl)
        if not fresh:
            raise AssertionReplayed()
    except RedisError:
        pass
    result = await session.execute(
        sa.text(
            "INSERT INTO used_client_assertions (client_id, jti, expires_at)"
            " VALUES (:c, :j, to_timestamp(:e) + interval '60 seconds') ON CONFLICT DO NOTHING"
        ),
        {"c": client_id, "j": jti, "e": exp},
    )
    if result.rowcount == 0:
        raise AssertionReplayed()


async def purge_used_assertions(session: AsyncSession) -> int:
    result = await session.execute(
        sa.text("DELETE FROM used_client_assertions WHERE expires_at < :now"), {"now": clock.now()}
    )
    return result.rowcount or 0


async def authenticate(session: AsyncSession, token: str) -> Principal:
    """A bearer token → the caller, checked against the database (a suspension acts at once)."""
    try:
        header = security.unverified_header(token)
    except security.JoseError as exc:
        raise InvalidToken(exc.detail) from exc
    key = await keys.for_kid(session, str(header.get("kid")))
    if key is None:
        raise InvalidToken("unknown signing key")
    try:
        claims = security.verify_jwt(token, key.public_jwk, key.algorithm, issuer=ISSUER, require=("exp", "sub"))
        kind, role, subject = claims["typ"], claims["role"], uuid.UUID(claims["sub"])
        org_id = uuid.UUID(claims["org"]) if claims.get("org") else None
    except security.JoseError as exc:
        raise InvalidToken(exc.detail, code="token_expired" if exc.code == "token_expired" else None) from exc
    except (KeyError, ValueError) as exc:
        raise InvalidToken("the token lacks platform claims") from exc
    principal = Principal(kind, role, subject, org_id, bool(claims.get("adm")))
    await _check_still_allowed(session, principal)
    return principal


async def _check_still_allowed(session: AsyncSession, p: Principal) -> None:
    """One indexed read per request, on asyncpg directly (every authenticated call comes here)."""
    conn = await db.raw_connection(session)
    if p.kind == "staff":
        row = await conn.fetchrow(
            "SELECT s.disabled_at, o.status FROM staff_users s LEFT JOIN organizations o ON o.id = s.org_id"
            " WHERE s.id = $1",
            p.subject,
        )
        if row is None or row["disabled_at"] is not None:
            raise InvalidToken("this account no longer exists")
        if p.org_id and row["status"] != "approved":
            raise OrganizationNotActive(f"the organisation is {row['status']}")
    elif p.kind == "client":
        status = await conn.fetchval("SELECT status FROM organizations WHERE id = $1", p.org_id)
        if status != "approved":
            raise OrganizationNotActive(f"the organisation is {status}")
    elif p.kind == "user":
        row = await conn.fetchrow(
            "SELECT u.deleted_at, o.status, EXISTS (SELECT 1 FROM entrustments e WHERE e.user_id = u.id"
            " AND e.operator_id = o.id AND e.withdrawn_at IS NULL) AS entrusted"
            " FROM users u, organizations o WHERE u.id = $1 AND o.id = $2",
            p.subject, p.org_id,
        )
        if row is None or row["deleted_at"] is not None:
            raise InvalidToken("this account no longer exists")
        if row["status"] != "approved":
            raise OrganizationNotActive(f"the operator is {row['status']}")
        if not row["entrusted"]:  # the person withdrew the entrustment: the operator's app no longer acts for them
            raise InvalidToken("the entrustment of this operator was withdrawn", code="entrustment_withdrawn")
    else:
        raise InvalidToken("unknown token type")
