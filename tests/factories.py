"""Factories that make what a test needs over HTTP (or directly, where no route exists)."""

import asyncio
import contextlib
import itertools
import json
import random
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import NamedTuple

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import service as auth_service
from app.auth.principal import CallerKind, Principal
from app.core import clock, db, security
from app.organizations import service as org_service

_seq = itertools.count(1)
PASSWORD = "correct-horse-battery"
_CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


async def eventually(condition, what: str = "the condition", within: float = 5) -> None:
    """Wait until ``condition()`` holds, checking every 10 ms; fail the test if it has not within ``within`` s."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} not reached in {within} s")
        await asyncio.sleep(0.01)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def credit_code() -> str:
    return "91" + f"{random.randint(0, 999999):06d}" + "".join(random.choices(_CREDIT_ALPHABET, k=10))


PROBLEM = "application/problem+json"


def assert_problem(r: httpx.Response, status: int, code: str) -> dict:
    """``r`` is the problem+json answer ``status``/``code`` (RFC 9457 with the platform's code); its body."""
    assert (r.status_code, r.headers["content-type"]) == (status, PROBLEM), r.text
    body = r.json()
    assert (body["code"], body["status"], body["type"]) == (
        code,
        status,
        f"https://carbon-points.dev/problems/{code}",
    ), r.text
    if "x-request-id" in r.headers:
        assert body["request_id"] == r.headers["x-request-id"]
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> str:
    r = await client.post(
        "/v1/auth/token", data={"grant_type": "password", "username": username, "password": password}
    )
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


async def authority_token(client: httpx.AsyncClient) -> str:
    username = unique("authority")
    async with db.session_scope() as session:
        await org_service.create_staff_user(session, username, PASSWORD, "authority")
    return await login(client, username)


@dataclass
class Org:
    id: str
    kind: str
    admin_username: str
    token: str | None = None
    private_pem: str | None = None
    kid: str | None = None
    algorithm: str = "ES256"
    extra: dict = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        assert self.token
        return bearer(self.token)

    def assertion(self, **overrides) -> str:
        now = int(time.time())
        claims = {
            "iss": self.id,
            "sub": self.id,
            "aud": "http://test/v1/auth/token",
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + 60,
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        key = security.SigningKey(self.kid or "", self.algorithm, self.private_pem or "", {})
        return security.sign_jwt(claims, key)

    def sign(self, body: bytes) -> str:
        assert self.private_pem and self.kid
        return security.sign_detached(body, self.private_pem, self.algorithm, self.kid)


async def make_org(
    client: httpx.AsyncClient, kind: str, *, approve: bool = True, authority: str | None = None
) -> Org:
    username = unique(kind)
    r = await client.post(
        "/v1/organizations",
        json={
            "kind": kind,
            "name": unique(f"{kind} co"),
            "credit_code": credit_code(),
            "admin": {"username": username, "password": PASSWORD},
        },
    )
    assert r.status_code == 201, r.text
    org = Org(r.json()["id"], kind, username)
    if approve:
        authority = authority or await authority_token(client)
        r = await client.post(f"/v1/organizations/{org.id}/approve", headers=bearer(authority))
        assert r.status_code == 200, r.text
        org.token = await login(client, username)
    return org


async def register_key(client: httpx.AsyncClient, org: Org, algorithm: str = "ES256") -> None:
    pem = security.generate_es256_pem() if algorithm == "ES256" else security.generate_rs256_pem()
    jwk = security.public_jwk_from_pem(pem)
    r = await client.post(f"/v1/organizations/{org.id}/keys", json={"jwk": jwk}, headers=org.headers)
    assert r.status_code == 201, r.text
    org.private_pem, org.kid, org.algorithm = pem, r.json()["kid"], algorithm


async def client_token(client: httpx.AsyncClient, org: Org) -> str:
    r = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": org.assertion(),
        },
    )
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


ALL_SCOPES = ("behaviours:submit", "account:read", "mall")


async def trust_operator(
    client: httpx.AsyncClient,
    authority: str,
    org_id: str,
    *,
    trusted: bool = True,
    scopes: tuple[str, ...] | None = ALL_SCOPES,
) -> None:
    """The authority lets the operator enrol people on its own word (``trusted``) and ask for ``scopes``."""
    r = await client.put(
        f"/v1/organizations/{org_id}/trusted-enrolment",
        json={"trusted": trusted, "reason": "test operator"},
        headers=bearer(authority),
    )
    assert r.status_code == 200, r.text
    if scopes is not None:
        r = await client.put(
            f"/v1/organizations/{org_id}/allowed-scopes",
            json={"scopes": list(scopes), "reason": "test operator"},
            headers=bearer(authority),
        )
        assert r.status_code == 200, r.text


async def make_operator(
    client: httpx.AsyncClient,
    authority: str | None = None,
    *,
    trusted: bool = True,
    scopes: tuple[str, ...] | None = ALL_SCOPES,
) -> Org:
    """An approved operator with a registered ES256 key, acting with a client-credentials token.

    By default the authority trusts it to enrol people on its own word (``POST /v1/operator/users``) and lets
    it ask for every scope, as most tests need; ``trusted=False, scopes=None``: a new operator as it starts.
    """
    authority = authority or await authority_token(client)
    org = await make_org(client, "operator", authority=authority)
    if trusted or scopes is not None:
        await trust_operator(client, authority, org.id, trusted=trusted, scopes=scopes)
    await register_key(client, org)
    org.extra["admin_token"] = org.token
    org.token = await client_token(client, org)
    return org


def signed(org: Org, payload: dict) -> tuple[bytes, dict[str, str]]:
    """A JSON body and the headers of a signed operator submission."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return body, {**org.headers, "Content-Type": "application/json", "X-Content-Signature": org.sign(body)}


def next_seq() -> int:
    return next(_seq)


def application(kind: str = "operator", **overrides) -> dict:
    """The body of ``POST /v1/organizations`` with unique names."""
    body = {
        "kind": kind,
        "name": unique(f"{kind} co"),
        "credit_code": credit_code(),
        "admin": {"username": unique(kind), "password": PASSWORD},
    }
    body.update(overrides)
    return body


async def staff_token(client: httpx.AsyncClient, org: Org, *, is_org_admin: bool = False) -> str:
    """A token of another (by default non-admin) staff account of ``org``."""
    username = unique(f"{org.kind}-staff")
    async with db.session_scope() as session:
        await org_service.create_staff_user(
            session, username, PASSWORD, "org", uuid.UUID(org.id), is_org_admin=is_org_admin
        )
    return await login(client, username)


def random_ip() -> str:
    return f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


async def invoke_cli(run_sync, *args: str):
    """Run the ``carbon-points`` typer app in a thread (``CliRunner``) and return its result.

    A command opens and closes its own engine and Redis client; the test session's are put back.
    """
    from typer.testing import CliRunner

    from app.cli import cli
    from app.core import redis

    saved = (db._engine, db._sessionmaker, db._direct, db._direct_settings, redis._client)
    try:
        return await run_sync(CliRunner().invoke, cli, list(args))
    finally:
        db._engine, db._sessionmaker, db._direct, db._direct_settings, redis._client = saved


async def person_session(client: httpx.AsyncClient, number: str) -> str:
    """Sign the person of ``number`` in on the platform (``/me/sign-in``: the phone, then the code from the
    development outbox), as they would in a browser; the session cookie lands in ``client``'s jar. Returns the
    CSRF token of the person's pages (``X-CSRF-Token`` for ``DELETE /v1/me``).

    The sign-in runs from an address of its own, so the per-address budget of codes is not the suite's.
    """
    import random

    from tests.oauth_flow import outbox_code
    from tests.web.helpers import HTML, csrf_token

    ip = f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
    transport = httpx.ASGITransport(app=client._transport.app, client=(ip, 50000))  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=transport, base_url=client.base_url, headers=HTML) as browser:
        r = await browser.get("/me/sign-in")
        assert r.status_code == 200, r.text
        r = await browser.post("/me/sign-in", data={"csrf_token": csrf_token(r.text), "phone": number})
        assert (r.status_code, r.headers.get("location")) == (303, "/me/sign-in/code"), r.text
        r = await browser.get("/me/sign-in/code")
        code = await outbox_code(browser, number)
        r = await browser.post("/me/sign-in/code", data={"csrf_token": csrf_token(r.text), "code": code})
        assert (r.status_code, r.headers.get("location")) == (303, "/me"), r.text
        r = await browser.get("/me")
        assert r.status_code == 200, r.text
        for cookie in browser.cookies.jar:  # the same cookies, as the jar keeps them (domain included)
            if cookie.name in ("carbon_me", "cp_csrf"):
                client.cookies.delete(cookie.name)
                client.cookies.jar.set_cookie(cookie)
        return csrf_token(r.text)


class Statement(NamedTuple):
    """A statement as asyncpg logged it (the ``sent`` fixture)."""

    query: str
    args: tuple


CHECK_CALLER = 23  # mall_order_request's argument (0-based): whether it checks the caller's standing


def kinds(sent: list[Statement]) -> list[str]:
    """What each statement of ``sent`` was, in order (an order's or a balance's, checking the caller or not; the
    standing's read; a refresh family's; any other as its text), and ``sent`` emptied."""
    out = []
    for query, args in sent:
        if "mall_order_request" in query:
            out.append("order, checking the caller" if args[CHECK_CALLER] else "order")
        elif "point_lots" in query:
            out.append("balance, checking the caller" if "FROM entrustments" in query else "balance")
        elif "FROM entrustments e" in query and "u.deleted_at" in query:
            out.append("standing read")
        elif "oauth_refresh_tokens" in query:
            out.append("family read")
        else:
            out.append(query)
    sent.clear()
    return out


@contextlib.asynccontextmanager
async def committed() -> AsyncIterator[AsyncSession]:
    """A session whose statements are committed at the end (a test that commits, changing what a route reads)."""
    async with db.session_scope() as session:
        yield session
        await session.commit()


def family_token(user_id: uuid.UUID, operator_id: uuid.UUID, family: uuid.UUID, scope: str) -> str:
    """A person's access token as the authorization code flow issues it: naming its refresh ``family``."""
    principal = Principal(CallerKind.user, CallerKind.user, user_id, operator_id)
    claims = {"azp": str(operator_id), "scope": scope, "fam": str(family)}
    return auth_service.issue_token(principal, extra_claims=claims).access_token


async def revoke_family(user_id: uuid.UUID, operator_id: uuid.UUID, family: uuid.UUID) -> None:
    """A revoked refresh token of ``family`` (as a replayed code or refresh token leaves it), committed."""
    now = clock.now()
    async with committed() as session:
        await session.execute(
            sa.text(
                "INSERT INTO oauth_refresh_tokens (token_sha256, family_id, client_id, user_id, entrustment_id,"
                " scope, created_at, expires_at, revoked_at) SELECT :sha, :fam, :op, :u, e.id, 'account:read',"
                " :now, :until, :now FROM entrustments e WHERE e.user_id = :u AND e.operator_id = :op"
            ),
            {
                "sha": secrets.token_bytes(32),
                "fam": family,
                "op": operator_id,
                "u": user_id,
                "now": now,
                "until": now + timedelta(days=30),
            },
        )


async def suspended_until_read(monkeypatch, operator_id: uuid.UUID) -> None:
    """The operator suspended (committed), and reinstated the moment a route reads a caller's standing: what a
    statement that checked the caller first found is no longer so when the route reads why."""
    async with committed() as session:
        await session.execute(
            sa.text("UPDATE organizations SET status = 'suspended' WHERE id = :o"), {"o": operator_id}
        )
    check = auth_service._check_still_allowed

    async def reinstated_first(session, principal):
        async with committed() as other:
            await other.execute(
                sa.text("UPDATE organizations SET status = 'approved' WHERE id = :o"), {"o": operator_id}
            )
        await check(session, principal)

    monkeypatch.setattr(auth_service, "_check_still_allowed", reinstated_first)
