"""Organisations over HTTP: applications, the authority's decisions, operator keys."""

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from app.core import security
from tests.factories import (
    Org,
    application,
    assert_problem,
    bearer,
    make_org,
    register_key,
    staff_token,
)

PROBLEM = "application/problem+json"


def b64(n: int, length: int | None = None) -> str:
    data = n.to_bytes(length or (n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rsa_jwk(bits: int) -> dict:
    numbers = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key().public_numbers()
    return {"kty": "RSA", "n": b64(numbers.n), "e": b64(numbers.e)}


@pytest.fixture
async def operator(client, authority) -> Org:
    return await make_org(client, "operator", authority=authority)


class TestApplications:
    @pytest.mark.parametrize("kind", ["operator", "merchant", "scene_operator", "verifier", "buyer"])
    async def test_every_kind_applies_pending(self, client, kind):
        body = application(kind, credit_code=application()["credit_code"].lower())
        r = await client.post("/v1/organizations", json=body)
        assert r.status_code == 201, r.text
        org = r.json()
        assert set(org) == {
            "id",
            "kind",
            "name",
            "credit_code",
            "status",
            "reason",
            "created_at",
            "decided_at",
            "trusted_enrolment",
            "allowed_scopes",
        }
        assert (org["kind"], org["name"], org["status"]) == (kind, body["name"], "pending")
        assert (org["trusted_enrolment"], org["allowed_scopes"]) == (
            False,
            ["behaviours:submit", "account:read"],
        )
        assert org["credit_code"] == body["credit_code"].upper()
        assert org["decided_at"] is None

    async def test_same_kind_and_credit_code_twice(self, client):
        first = application("merchant")
        assert (await client.post("/v1/organizations", json=first)).status_code == 201
        again = application("merchant", credit_code=first["credit_code"])
        assert_problem(await client.post("/v1/organizations", json=again), 409, "organization_exists")
        # another kind with the same code is another organisation
        other = application("buyer", credit_code=first["credit_code"])
        assert (await client.post("/v1/organizations", json=other)).status_code == 201

    async def test_rejected_application_can_be_filed_again(self, client, authority):
        first = application("verifier")
        org_id = (await client.post("/v1/organizations", json=first)).json()["id"]
        await client.post(f"/v1/organizations/{org_id}/reject", headers=bearer(authority))
        again = application("verifier", credit_code=first["credit_code"])
        assert (await client.post("/v1/organizations", json=again)).status_code == 201

    async def test_username_taken(self, client):
        first = application("merchant")
        assert (await client.post("/v1/organizations", json=first)).status_code == 201
        again = application("merchant", admin=first["admin"])
        assert_problem(await client.post("/v1/organizations", json=again), 409, "username_taken")

    async def test_bad_fields(self, client):
        body = application("bank", credit_code="123", admin={"username": "a", "password": "short"}, extra=1)
        r = await client.post("/v1/organizations", json=body)
        problem = assert_problem(r, 422, "validation_error")
        assert sorted(tuple(e["loc"]) for e in problem["errors"]) == [
            ("body", "admin", "password"),
            ("body", "admin", "username"),
            ("body", "credit_code"),
            ("body", "extra"),
            ("body", "kind"),
        ]


class TestDecisions:
    async def test_transitions(self, client, authority):
        org_id = (await client.post("/v1/organizations", json=application("buyer"))).json()["id"]
        steps = [
            ("suspend", 409, "invalid_transition"),
            ("reinstate", 409, "invalid_transition"),
            ("approve", 200, "approved"),
            ("approve", 409, "invalid_transition"),
            ("reject", 409, "invalid_transition"),
            ("suspend", 200, "suspended"),
            ("suspend", 409, "invalid_transition"),
            ("reinstate", 200, "approved"),
        ]
        for decision, status, outcome in steps:
            r = await client.post(f"/v1/organizations/{org_id}/{decision}", headers=bearer(authority))
            assert r.status_code == status, (decision, r.text)
            if status == 200:
                assert r.json()["status"] == outcome
                assert r.json()["decided_at"] is not None
            else:
                assert r.json()["code"] == outcome

    async def test_unknown_organisation(self, client, authority):
        r = await client.post(
            "/v1/organizations/6b1d2d8e-0000-4000-8000-000000000000/approve", headers=bearer(authority)
        )
        assert_problem(r, 404, "organization_not_found")

    async def test_only_the_authority_decides(self, client, operator):
        other = (await client.post("/v1/organizations", json=application("buyer"))).json()["id"]
        r = await client.post(f"/v1/organizations/{other}/approve", headers=operator.headers)
        assert_problem(r, 403, "forbidden_role")
        r = await client.post(f"/v1/organizations/{other}/approve")
        assert_problem(r, 401, "not_authenticated")

    async def test_reason_is_kept_and_bounded(self, client, authority):
        org_id = (await client.post("/v1/organizations", json=application("buyer"))).json()["id"]
        r = await client.post(
            f"/v1/organizations/{org_id}/reject", json={"reason": "x" * 1001}, headers=bearer(authority)
        )
        assert_problem(r, 422, "validation_error")
        r = await client.post(
            f"/v1/organizations/{org_id}/reject",
            json={"reason": "missing licence"},
            headers=bearer(authority),
        )
        assert (r.json()["status"], r.json()["reason"]) == ("rejected", "missing licence")

    async def test_staff_see_their_own_organisation_only(self, client, authority, operator):
        merchant = await make_org(client, "merchant", authority=authority)
        assert (
            await client.get(f"/v1/organizations/{merchant.id}", headers=merchant.headers)
        ).status_code == 200
        r = await client.get(f"/v1/organizations/{merchant.id}", headers=operator.headers)
        assert_problem(r, 404, "organization_not_found")
        assert (
            await client.get(f"/v1/organizations/{merchant.id}", headers=bearer(authority))
        ).status_code == 200

    async def test_authority_lists_by_status_and_kind_with_a_cursor(self, client, authority):
        ids = []
        for _ in range(3):
            ids.append(
                (await client.post("/v1/organizations", json=application("scene_operator"))).json()["id"]
            )
        url = "/v1/organizations?status=pending&kind=scene_operator&limit=2"
        first = (await client.get(url, headers=bearer(authority))).json()
        assert first["next_cursor"] is not None
        second = (await client.get(f"{url}&cursor={first['next_cursor']}", headers=bearer(authority))).json()
        seen = [o["id"] for o in first["items"] + second["items"]]
        assert all(
            o["kind"] == "scene_operator" and o["status"] == "pending"
            for o in first["items"] + second["items"]
        )
        assert seen[:3] == ids[::-1]
        r = await client.get("/v1/organizations?cursor=garbage!", headers=bearer(authority))
        assert_problem(r, 400, "invalid_cursor")


class TestOperatorKeys:
    async def test_admin_registers_lists_and_revokes(self, client, operator):
        await register_key(client, operator, "ES256")
        first = operator.kid
        await register_key(client, operator, "RS256")
        r = await client.get(f"/v1/organizations/{operator.id}/keys", headers=operator.headers)
        assert r.status_code == 200, r.text
        listed = r.json()
        assert [(k["kid"], k["algorithm"], k["revoked_at"]) for k in listed] == [
            (first, "ES256", None),
            (operator.kid, "RS256", None),
        ]
        assert set(listed[0]["jwk"]) == {"kty", "crv", "x", "y"}

        r = await client.delete(f"/v1/organizations/{operator.id}/keys/{first}", headers=operator.headers)
        assert r.status_code == 200, r.text
        assert r.json()["revoked_at"] is not None
        again = await client.delete(f"/v1/organizations/{operator.id}/keys/{first}", headers=operator.headers)
        assert again.json()["revoked_at"] == r.json()["revoked_at"]
        r = await client.delete(f"/v1/organizations/{operator.id}/keys/nope", headers=operator.headers)
        assert_problem(r, 404, "key_not_found")

    async def test_kid_is_the_rfc7638_thumbprint_and_extra_members_are_dropped(self, client, operator):
        pem = security.generate_es256_pem()
        jwk = security.public_jwk_from_pem(pem)
        r = await client.post(
            f"/v1/organizations/{operator.id}/keys",
            json={"jwk": {**jwk, "kid": "mine", "alg": "ES256", "use": "sig"}},
            headers=operator.headers,
        )
        assert r.status_code == 201, r.text
        assert r.json()["kid"] == security.thumbprint(jwk)
        assert r.json()["jwk"] == jwk

    async def test_non_admin_staff_refused(self, client, operator):
        token = await staff_token(client, operator)
        jwk = security.public_jwk_from_pem(security.generate_es256_pem())
        r = await client.post(
            f"/v1/organizations/{operator.id}/keys", json={"jwk": jwk}, headers=bearer(token)
        )
        assert_problem(r, 403, "admin_required")
        r = await client.get(f"/v1/organizations/{operator.id}/keys", headers=bearer(token))
        assert_problem(r, 403, "admin_required")

    async def test_another_organisations_admin_refused(self, client, authority, operator):
        other = await make_org(client, "operator", authority=authority)
        jwk = security.public_jwk_from_pem(security.generate_es256_pem())
        r = await client.post(
            f"/v1/organizations/{operator.id}/keys", json={"jwk": jwk}, headers=other.headers
        )
        assert_problem(r, 403, "not_your_organization")
        await register_key(client, operator)
        r = await client.delete(f"/v1/organizations/{operator.id}/keys/{operator.kid}", headers=other.headers)
        assert_problem(r, 403, "not_your_organization")
        r = await client.get(f"/v1/organizations/{operator.id}/keys", headers=other.headers)
        assert_problem(r, 403, "not_your_organization")

    async def test_only_operators_hold_keys(self, client, authority):
        merchant = await make_org(client, "merchant", authority=authority)
        jwk = security.public_jwk_from_pem(security.generate_es256_pem())
        r = await client.post(
            f"/v1/organizations/{merchant.id}/keys", json={"jwk": jwk}, headers=merchant.headers
        )
        assert_problem(r, 403, "not_an_operator")

    async def test_private_members_refused(self, client, operator):
        key = ec.generate_private_key(ec.SECP256R1())
        jwk = security.public_jwk_from_pem(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode()
        )
        jwk["d"] = b64(key.private_numbers().private_value, 32)
        r = await client.post(
            f"/v1/organizations/{operator.id}/keys", json={"jwk": jwk}, headers=operator.headers
        )
        assert_problem(r, 422, "private_key_material")

    async def test_weak_rsa_refused_even_when_padded(self, client, operator):
        weak = rsa_jwk(1024)
        r = await client.post(
            f"/v1/organizations/{operator.id}/keys", json={"jwk": weak}, headers=operator.headers
        )
        assert_problem(r, 422, "weak_key")
        padded = {
            **weak,
            "n": base64.urlsafe_b64encode(b"\0" * 160 + base64.urlsafe_b64decode(weak["n"] + "=="))
            .rstrip(b"=")
            .decode(),
        }
        r = await client.post(
            f"/v1/organizations/{operator.id}/keys", json={"jwk": padded}, headers=operator.headers
        )
        assert_problem(r, 422, "weak_key")

    @pytest.mark.parametrize(
        ("jwk", "code"),
        [
            ({"kty": "oct", "k": "c2VjcmV0"}, "private_key_material"),
            ({"kty": "OKP", "crv": "Ed25519", "x": "abc"}, "unsupported_key"),
            ({"kty": "EC", "crv": "P-384", "x": "abc", "y": "def"}, "unsupported_key"),
            ({"kty": "EC", "crv": "P-256", "x": "abc"}, "invalid_jwk"),
            ({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}, "invalid_jwk"),
            ({"kty": "RSA", "e": "AQAB"}, "invalid_jwk"),
            ({"kty": "RSA", "n": 5, "e": "AQAB"}, "invalid_jwk"),
        ],
    )
    async def test_unusable_keys_refused(self, client, operator, jwk, code):
        r = await client.post(
            f"/v1/organizations/{operator.id}/keys", json={"jwk": jwk}, headers=operator.headers
        )
        assert_problem(r, 422, code)

    async def test_ec_key_declared_for_another_algorithm(self, client, operator):
        jwk = security.public_jwk_from_pem(security.generate_es256_pem())
        r = await client.post(
            f"/v1/organizations/{operator.id}/keys",
            json={"jwk": {**jwk, "alg": "HS256"}},
            headers=operator.headers,
        )
        assert_problem(r, 422, "unsupported_key")

    async def test_duplicate_key(self, client, operator):
        jwk = security.public_jwk_from_pem(security.generate_es256_pem())
        url = f"/v1/organizations/{operator.id}/keys"
        assert (await client.post(url, json={"jwk": jwk}, headers=operator.headers)).status_code == 201
        assert_problem(await client.post(url, json={"jwk": jwk}, headers=operator.headers), 409, "key_exists")

    async def test_rsa_2048_accepted(self, client, operator):
        r = await client.post(
            f"/v1/organizations/{operator.id}/keys", json={"jwk": rsa_jwk(2048)}, headers=operator.headers
        )
        assert r.status_code == 201, r.text
        assert r.json()["algorithm"] == "RS256"
