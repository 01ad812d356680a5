"""OWASP API2:2023 Broken Authentication: what ``tests/auth`` does not already cover.

``tests/auth`` covers the grants, ``alg: none``, HMAC with a public key, foreign keys under our
kid, expired and replayed assertions, suspension and disabled accounts. Here: tokens of another
issuer, tampered payloads, tokens without the platform's claims, an operator's client assertion
used as a bearer token, credentials anywhere but the Authorization header, the token of a
deleted account, and user tokens that outlive nothing they should not.
"""

import base64
import json
import time
import uuid

import pytest

from app.auth import keys
from app.core import security
from tests.factories import authority_token, bearer, make_operator, person_session
from tests.factories_points import enrol, phone, user_headers


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()


def _claims(token: str) -> dict:
    return security.unverified_claims(token)


def assert_401(r, code: str | None = None) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.headers["content-type"] == "application/problem+json"
    if code:
        assert r.json()["code"] == code


class TestForeignAndForgedTokens:
    async def test_another_issuer_with_the_platforms_key(self, client):
        """Signed with the platform's own key but issued as someone else: ``iss`` is checked."""
        real = _claims(await authority_token(client))
        forged = security.sign_jwt({**real, "iss": "someone-else"}, keys.active())
        assert_401(await client.get("/v1/organizations", headers=bearer(forged)), "invalid_token")

    async def test_no_issuer(self, client):
        real = _claims(await authority_token(client))
        del real["iss"]
        forged = security.sign_jwt(real, keys.active())
        assert_401(await client.get("/v1/organizations", headers=bearer(forged)), "invalid_token")

    @pytest.mark.parametrize(
        "change", [{"role": "authority"}, {"typ": "staff"}, {"sub": str(uuid.uuid4())}, {"exp": 4102444800}]
    )
    async def test_tampered_payload_keeps_the_signature(self, client, change):
        op = await make_operator(client)
        person = await enrol(client, op)
        token = (await user_headers(client, op, person["external_user_id"]))["Authorization"].split()[1]
        head, payload, sig = token.split(".")
        tampered = ".".join([head, _b64({**_claims(token), **change}), sig])
        assert_401(await client.get("/v1/organizations", headers=bearer(tampered)), "invalid_token")
        assert_401(await client.get("/v1/me/account", headers=bearer(tampered)), "invalid_token")

    async def test_tampered_header_algorithm(self, client):
        token = await authority_token(client)
        head, payload, sig = token.split(".")
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
        for alg in ("RS256", "HS256", "none", "ES384"):
            r = await client.get(
                "/v1/organizations", headers=bearer(".".join([_b64({**header, "alg": alg}), payload, sig]))
            )
            assert_401(r)

    async def test_platform_signed_without_platform_claims(self, client):
        bare = security.sign_jwt(
            {"iss": "carbon-points", "sub": str(uuid.uuid4()), "exp": int(time.time()) + 60}, keys.active()
        )
        assert_401(await client.get("/v1/organizations", headers=bearer(bare)), "invalid_token")

    async def test_platform_signed_without_expiry(self, client):
        real = _claims(await authority_token(client))
        del real["exp"]
        assert_401(
            await client.get("/v1/organizations", headers=bearer(security.sign_jwt(real, keys.active())))
        )

    async def test_an_operators_client_assertion_is_not_a_bearer_token(self, client):
        op = await make_operator(client)
        assertion = op.assertion(aud="http://test/v1/auth/token")
        assert_401(await client.get(f"/v1/organizations/{op.id}", headers=bearer(assertion)), "invalid_token")
        # signed by the operator, claiming to be the platform
        forged = security.sign_jwt(
            {
                "iss": "carbon-points",
                "sub": op.id,
                "typ": "client",
                "role": "authority",
                "org": op.id,
                "exp": int(time.time()) + 60,
            },
            security.SigningKey(op.kid, "ES256", op.private_pem, {}),
        )
        assert_401(await client.get("/v1/organizations", headers=bearer(forged)), "invalid_token")


class TestWhereCredentialsGo:
    async def test_only_the_authorization_header_carries_a_token(self, client):
        token = await authority_token(client)
        assert_401(await client.get("/v1/organizations", params={"access_token": token}))
        assert_401(await client.get("/v1/organizations", cookies={"access_token": token}))
        assert_401(await client.get("/v1/organizations", headers={"X-Access-Token": token}))

    @pytest.mark.parametrize("scheme", ["Basic", "Token", "bearer-ish"])
    async def test_other_schemes(self, client, scheme):
        token = await authority_token(client)
        assert_401(await client.get("/v1/organizations", headers={"Authorization": f"{scheme} {token}"}))

    async def test_empty_and_padded_bearer(self, client):
        for value in ("Bearer", "Bearer ", "Bearer  .  . "):
            assert_401(await client.get("/v1/organizations", headers={"Authorization": value}))


class TestTokensOfGoneAccounts:
    async def test_a_deleted_persons_token_stops_at_once(self, client):
        op = await make_operator(client)
        number = phone()
        person = await enrol(client, op, number=number)
        headers = await user_headers(client, op, person["external_user_id"])
        assert (await client.get("/v1/me/account", headers=headers)).status_code == 200
        csrf = await person_session(client, number)  # the person deletes it, signed in on the platform
        r = await client.delete("/v1/me", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200, r.text
        assert_401(await client.get("/v1/me/account", headers=headers), "invalid_token")
        r = await client.post(f"/v1/operator/users/{person['external_user_id']}/tokens", headers=op.headers)
        assert r.status_code == 404

    async def test_a_suspended_operators_user_tokens_stop(self, client):
        authority = await authority_token(client)
        op = await make_operator(client, authority)
        person = await enrol(client, op)
        headers = await user_headers(client, op, person["external_user_id"])
        r = await client.post(f"/v1/organizations/{op.id}/suspend", headers=bearer(authority))
        assert r.status_code == 200
        r = await client.get("/v1/me/account", headers=headers)
        assert (r.status_code, r.json()["code"]) == (403, "organization_not_active")
        r = await client.post(f"/v1/organizations/{op.id}/reinstate", headers=bearer(authority))
        assert (await client.get("/v1/me/account", headers=headers)).status_code == 200

    async def test_user_tokens_are_short_lived(self, client):
        op = await make_operator(client)
        person = await enrol(client, op)
        r = await client.post(f"/v1/operator/users/{person['external_user_id']}/tokens", headers=op.headers)
        claims = _claims(r.json()["access_token"])
        assert r.json()["expires_in"] == 900
        assert claims["exp"] - claims["iat"] == 900
        assert (claims["typ"], claims["role"]) == ("user", "user")
