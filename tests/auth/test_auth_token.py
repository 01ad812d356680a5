"""POST /v1/auth/token over HTTP: the password grant, private_key_jwt, and every refusal."""

import hashlib
import hmac
import json
import time
import uuid

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

from app.core import db, redis, security
from tests.factories import (
    PASSWORD,
    Org,
    application,
    authority_token,
    bearer,
    client_token,
    login,
    make_org,
    register_key,
    unique,
)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PROBLEM = "application/problem+json"


def password_form(username: str, password: str) -> dict:
    return {"grant_type": "password", "username": username, "password": password}


def assertion_form(assertion: str) -> dict:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }


def b64json(value: dict) -> str:
    return security.b64url(json.dumps(value, separators=(",", ":")).encode())


def claims_for(org: Org, **overrides) -> dict:
    now = int(time.time())
    claims = {
        "iss": org.id,
        "sub": org.id,
        "aud": "http://test/v1/auth/token",
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 60,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def assert_problem(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["type"] == f"https://carbon-points.dev/problems/{code}"
    return body


@pytest.fixture
async def authority(client) -> str:
    return await authority_token(client)


async def operator_with_key(client, authority: str, algorithm: str = "ES256") -> Org:
    org = await make_org(client, "operator", authority=authority)
    await register_key(client, org, algorithm)
    return org


class TestPasswordGrantEndToEnd:
    async def test_application_approval_login_and_protected_route(self, client, authority):
        body = application("merchant")
        r = await client.post("/v1/organizations", json=body)
        assert r.status_code == 201, r.text
        org = r.json()
        assert org["status"] == "pending"
        assert org["kind"] == "merchant"
        assert org["credit_code"] == body["credit_code"]
        admin = body["admin"]["username"]

        r = await client.post("/v1/auth/token", data=password_form(admin, PASSWORD))
        assert_problem(r, 403, "organization_not_active")

        r = await client.post(f"/v1/organizations/{org['id']}/approve", headers=bearer(authority))
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "approved"

        r = await client.post("/v1/auth/token", data=password_form(admin, PASSWORD))
        assert r.status_code == 200, r.text
        token = r.json()
        assert token["token_type"] == "bearer"
        assert token["expires_in"] == 3600
        assert set(token) == {"access_token", "token_type", "expires_in"}

        r = await client.get(f"/v1/organizations/{org['id']}", headers=bearer(token["access_token"]))
        assert r.status_code == 200, r.text
        assert r.json()["id"] == org["id"]
        assert r.json()["status"] == "approved"

    async def test_the_authority_logs_in_and_reaches_an_authority_route(self, client, authority):
        await client.post("/v1/organizations", json=application("buyer"))
        r = await client.get("/v1/organizations?limit=1", headers=bearer(authority))
        assert r.status_code == 200, r.text
        assert len(r.json()["items"]) == 1

    async def test_rejected_application_cannot_log_in(self, client, authority):
        body = application("buyer")
        org_id = (await client.post("/v1/organizations", json=body)).json()["id"]
        r = await client.post(
            f"/v1/organizations/{org_id}/reject", json={"reason": "incomplete"}, headers=bearer(authority)
        )
        assert r.json()["status"] == "rejected"
        assert r.json()["reason"] == "incomplete"
        r = await client.post("/v1/auth/token", data=password_form(body["admin"]["username"], PASSWORD))
        assert_problem(r, 403, "organization_not_active")


class TestPasswordGrantRefusals:
    async def test_wrong_password_and_unknown_user_look_the_same(self, client):
        org = await make_org(client, "verifier")
        wrong = await client.post(
            "/v1/auth/token", data=password_form(org.admin_username, "not-the-password")
        )
        unknown = await client.post("/v1/auth/token", data=password_form(unique("nobody"), PASSWORD))
        for r in (wrong, unknown):
            body = assert_problem(r, 400, "invalid_grant")
            assert body["detail"] == "wrong username or password"
        assert wrong.json() | {"request_id": None} == unknown.json() | {"request_id": None}

    async def test_missing_password(self, client):
        r = await client.post("/v1/auth/token", data={"grant_type": "password", "username": "someone"})
        body = assert_problem(r, 400, "invalid_grant")
        assert body["detail"] == "username and password are required"

    async def test_unsupported_grant(self, client):
        r = await client.post("/v1/auth/token", data={"grant_type": "implicit", "code": "x"})
        assert_problem(r, 400, "unsupported_grant_type")
        # authorization_code is supported now (issue 14): without a client assertion, the client is unknown
        r = await client.post("/v1/auth/token", data={"grant_type": "authorization_code", "code": "x"})
        assert_problem(r, 401, "malformed_assertion")

    async def test_missing_grant_type_is_a_validation_error(self, client):
        r = await client.post("/v1/auth/token", data={"username": "a"})
        body = assert_problem(r, 422, "validation_error")
        assert body["errors"] == [{"loc": ["body", "grant_type"], "msg": "Field required"}]

    async def test_disabled_account_cannot_log_in_and_its_token_stops(self, client):
        org = await make_org(client, "merchant")
        async with db.session_scope() as session:
            await session.execute(
                sa.text("UPDATE staff_users SET disabled_at = now() WHERE username = :u"),
                {"u": org.admin_username},
            )
        r = await client.get(f"/v1/organizations/{org.id}", headers=org.headers)
        assert_problem(r, 401, "invalid_token")
        r = await client.post("/v1/auth/token", data=password_form(org.admin_username, PASSWORD))
        assert_problem(r, 400, "invalid_grant")


class TestBearerTokens:
    async def test_no_token(self, client):
        r = await client.get(f"/v1/organizations/{uuid.uuid4()}")
        assert_problem(r, 401, "not_authenticated")
        assert r.headers["www-authenticate"] == "Bearer"

    async def test_garbage_token(self, client):
        r = await client.get(f"/v1/organizations/{uuid.uuid4()}", headers=bearer("not.a.jwt"))
        assert_problem(r, 401, "invalid_token")

    async def test_token_signed_by_someone_else_with_our_kid(self, client, authority):
        from app.auth import keys

        kid = keys.active().kid
        forged = security.sign_jwt(
            {
                "iss": "carbon-points",
                "sub": str(uuid.uuid4()),
                "typ": "staff",
                "role": "authority",
                "exp": int(time.time()) + 60,
            },
            security.SigningKey(kid, "ES256", security.generate_es256_pem(), {}),
        )
        r = await client.get("/v1/organizations", headers=bearer(forged))
        assert_problem(r, 401, "invalid_token")

    async def test_expired_platform_token(self, client):
        from app.auth import keys

        expired = security.sign_jwt(
            {
                "iss": "carbon-points",
                "sub": str(uuid.uuid4()),
                "typ": "staff",
                "role": "authority",
                "exp": int(time.time()) - 10,
            },
            keys.active(),
        )
        r = await client.get("/v1/organizations", headers=bearer(expired))
        assert_problem(r, 401, "token_expired")

    async def test_wrong_role(self, client):
        org = await make_org(client, "merchant")
        r = await client.get("/v1/organizations", headers=org.headers)
        body = assert_problem(r, 403, "forbidden_role")
        assert body["detail"] == "this needs the role authority"


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
class TestClientCredentials:
    async def test_assertion_gives_an_operator_token(self, client, authority, algorithm):
        org = await operator_with_key(client, authority, algorithm)
        r = await client.post("/v1/auth/token", data=assertion_form(org.assertion()))
        assert r.status_code == 200, r.text
        token = r.json()
        assert token["token_type"] == "bearer"
        assert token["expires_in"] == 3600
        claims = security.unverified_claims(token["access_token"])
        assert (claims["typ"], claims["role"], claims["sub"], claims["org"]) == (
            "client",
            "operator",
            org.id,
            org.id,
        )

        r = await client.get(f"/v1/organizations/{org.id}", headers=bearer(token["access_token"]))
        assert r.status_code == 200, r.text
        assert r.json()["id"] == org.id


class TestClientAssertionRefusals:
    @pytest.fixture
    async def operator(self, client, authority) -> Org:
        return await operator_with_key(client, authority)

    async def refused(self, client, assertion: str, status: int, code: str) -> dict:
        r = await client.post("/v1/auth/token", data=assertion_form(assertion))
        return assert_problem(r, status, code)

    async def test_malformed_assertion(self, client):
        await self.refused(client, "this-is-not-a-jwt", 401, "malformed_assertion")

    async def test_missing_or_wrong_assertion_type(self, client, operator):
        r = await client.post("/v1/auth/token", data={"grant_type": "client_credentials"})
        assert_problem(r, 401, "malformed_assertion")
        r = await client.post(
            "/v1/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": "bearer",
                "client_assertion": operator.assertion(),
            },
        )
        assert_problem(r, 401, "malformed_assertion")

    async def test_expired_assertion(self, client, operator):
        now = int(time.time())
        await self.refused(client, operator.assertion(iat=now - 400, exp=now - 100), 401, "assertion_expired")

    async def test_replayed_jti_refused_even_after_redis_is_flushed(self, client, operator):
        assertion = operator.assertion()
        r = await client.post("/v1/auth/token", data=assertion_form(assertion))
        assert r.status_code == 200, r.text
        await self.refused(client, assertion, 401, "assertion_replayed")
        await redis.client().flushall()
        await self.refused(client, assertion, 401, "assertion_replayed")
        # the same jti in a freshly signed assertion is a replay too
        jti = security.unverified_claims(assertion)["jti"]
        await self.refused(client, operator.assertion(jti=jti), 401, "assertion_replayed")

    async def test_same_jti_from_two_operators_is_no_replay(self, client, authority, operator):
        other = await operator_with_key(client, authority)
        jti = uuid.uuid4().hex
        for org in (operator, other):
            r = await client.post("/v1/auth/token", data=assertion_form(org.assertion(jti=jti)))
            assert r.status_code == 200, r.text

    async def test_wrong_audience(self, client, operator):
        await self.refused(client, operator.assertion(aud="https://elsewhere/token"), 401, "invalid_audience")

    async def test_missing_claims(self, client, operator):
        body = await self.refused(client, operator.assertion(jti=None), 401, "invalid_claims")
        assert body["detail"] == "claim 'jti' is required"
        await self.refused(client, operator.assertion(sub=str(uuid.uuid4())), 401, "invalid_claims")

    async def test_unusable_jti(self, client, operator):
        for jti in ("x" * 201, ""):
            body = await self.refused(client, operator.assertion(jti=jti), 401, "invalid_claims")
            assert body["detail"] == "jti must be a string of 1 to 200 characters"
        body = await self.refused(client, operator.assertion(jti=12345), 401, "invalid_claims")
        assert body["detail"] == "JWT ID must be a string."

    async def test_claims_of_the_wrong_type(self, client, operator):
        await self.refused(client, operator.assertion(exp="tomorrow"), 401, "invalid_claims")
        await self.refused(client, operator.assertion(iss=123, sub=123), 401, "unknown_client")

    async def test_alg_none(self, client, operator):
        token = (
            b64json({"alg": "none", "typ": "JWT", "kid": operator.kid})
            + "."
            + b64json(claims_for(operator))
            + "."
        )
        await self.refused(client, token, 401, "algorithm_not_allowed")

    async def test_hs256_signed_with_the_public_key(self, client, operator):
        private = serialization.load_pem_private_key(operator.private_pem.encode(), password=None)
        public_pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        for secret in (public_pem, json.dumps(security.public_jwk_from_pem(operator.private_pem)).encode()):
            signing_input = (
                b64json({"alg": "HS256", "typ": "JWT", "kid": operator.kid})
                + "."
                + b64json(claims_for(operator))
            )
            mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
            await self.refused(
                client, signing_input + "." + security.b64url(mac), 401, "algorithm_not_allowed"
            )

    async def test_signed_by_another_key_under_the_registered_kid(self, client, operator):
        impostor = Org(
            operator.id, "operator", "x", private_pem=security.generate_es256_pem(), kid=operator.kid
        )
        await self.refused(client, impostor.assertion(), 401, "invalid_signature")

    async def test_unknown_kid(self, client, operator):
        stranger = Org(
            operator.id, "operator", "x", private_pem=security.generate_es256_pem(), kid="no-such-kid"
        )
        await self.refused(client, stranger.assertion(), 401, "unknown_kid")

    async def test_unknown_client(self, client, operator):
        ghost = str(uuid.uuid4())
        await self.refused(client, operator.assertion(iss=ghost, sub=ghost), 401, "unknown_client")
        await self.refused(
            client, operator.assertion(iss="operator-x", sub="operator-x"), 401, "unknown_client"
        )

    async def test_revoked_key(self, client, operator):
        admin = await login(client, operator.admin_username)
        r = await client.delete(f"/v1/organizations/{operator.id}/keys/{operator.kid}", headers=bearer(admin))
        assert r.status_code == 200, r.text
        await self.refused(client, operator.assertion(), 401, "key_revoked")

    async def test_expiry_more_than_five_minutes_ahead(self, client, operator):
        now = int(time.time())
        await self.refused(client, operator.assertion(exp=now + 301 + 10), 401, "assertion_too_long")
        r = await client.post("/v1/auth/token", data=assertion_form(operator.assertion(exp=now + 290)))
        assert r.status_code == 200, r.text

    async def test_non_operator_organisation_is_not_a_client(self, client, authority):
        merchant = await make_org(client, "merchant", authority=authority)
        merchant.private_pem = security.generate_es256_pem()
        jwk = security.public_jwk_from_pem(merchant.private_pem)
        merchant.kid = security.thumbprint(jwk)
        async with db.session_scope() as session:  # no route lets a merchant register a key
            await session.execute(
                sa.text(
                    "INSERT INTO operator_keys (org_id, kid, algorithm, jwk, created_at)"
                    " VALUES (:o, :k, 'ES256', CAST(:j AS jsonb), now())"
                ),
                {"o": merchant.id, "k": merchant.kid, "j": json.dumps(jwk)},
            )
        await self.refused(client, merchant.assertion(), 401, "unauthorized_client")


class TestSuspension:
    async def test_suspension_stops_tokens_at_once_and_reinstating_restores(self, client, authority):
        org = await operator_with_key(client, authority)
        token = await client_token(client, org)
        staff_token = org.token
        r = await client.get(f"/v1/organizations/{org.id}", headers=bearer(token))
        assert r.status_code == 200

        r = await client.post(
            f"/v1/organizations/{org.id}/suspend", json={"reason": "audit pending"}, headers=bearer(authority)
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "suspended"

        for existing in (token, staff_token):
            r = await client.get(f"/v1/organizations/{org.id}", headers=bearer(existing))
            body = assert_problem(r, 403, "organization_not_active")
            assert body["detail"] == "the organisation is suspended"
        r = await client.post("/v1/auth/token", data=assertion_form(org.assertion()))
        assert_problem(r, 403, "organization_not_active")
        r = await client.post("/v1/auth/token", data=password_form(org.admin_username, PASSWORD))
        assert_problem(r, 403, "organization_not_active")

        r = await client.post(f"/v1/organizations/{org.id}/reinstate", headers=bearer(authority))
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "approved"
        r = await client.get(f"/v1/organizations/{org.id}", headers=bearer(token))
        assert r.status_code == 200
        r = await client.post("/v1/auth/token", data=assertion_form(org.assertion()))
        assert r.status_code == 200, r.text
