"""OWASP API3:2023 Broken Object Property Level Authorization.

Mass assignment: fields a client must not set (status, balance, points, org kind, ``id``,
``created_at``, owner ids) are refused (422) or ignored, and never take effect. Excessive data
exposure: no response carries a password (hash), an identity hash, a phone number, a private
key member or an internal flag, neither in the OpenAPI document's response schemas nor in real
responses.
"""

import re
import uuid
from datetime import timedelta

import pytest

from app.core import clock
from tests.factories import (
    PASSWORD,
    authority_token,
    bearer,
    credit_code,
    make_operator,
    make_org,
    person_session,
    unique,
)
from tests.factories_methodologies import methodology_body
from tests.factories_points import enrol, ensure_rule, make_methodology, phone, record, submit, user_headers
from tests.factories_scenes import make_expert, scene_body

FOREIGN_ID = "00000000-0000-4000-8000-000000000001"
LONG_AGO = "2001-01-01T00:00:00+00:00"
# Names of properties that must never be in a response.
HIDDEN = re.compile(
    r"(password|passwd|pwd|secret|salt|identity_hash|identifier_hash|phone|id_number|private|pem"
    r"|^d$|^p$|^q$|^dp$|^dq$|^qi$|^k$|is_org_admin|disabled|deleted|internal)",
    re.IGNORECASE,
)
# Response properties whose names look sensitive but are part of the contract.
ALLOWED = {
    "access_token",
    # a webhook subscription's signing secret, answered once at creation and at rotation (the
    # organisation signs nothing with it: it checks what the platform signed), and its state
    "secret",
    "previous_secret_expires_at",
    "disabled_reason",
}


@pytest.fixture(autouse=True)
async def rule(app):
    await ensure_rule()


class TestMassAssignment:
    async def test_application_cannot_set_its_status_id_or_dates(self, client):
        body = {
            "kind": "operator",
            "name": unique("op"),
            "credit_code": credit_code(),
            "admin": {"username": unique("adm"), "password": PASSWORD},
        }
        for extra in (
            {"status": "approved"},
            {"id": FOREIGN_ID},
            {"created_at": LONG_AGO},
            {"decided_at": LONG_AGO},
            {"reason": "pre-approved"},
        ):
            r = await client.post("/v1/organizations", json={**body, **extra})
            assert (r.status_code, r.json()["code"]) == (422, "validation_error"), (extra, r.text)
        for extra in ({"role": "authority"}, {"is_org_admin": False}, {"org_id": FOREIGN_ID}):
            r = await client.post("/v1/organizations", json={**body, "admin": {**body["admin"], **extra}})
            assert r.status_code == 422, (extra, r.text)
        r = await client.post("/v1/organizations", json=body)
        assert r.status_code == 201
        assert (r.json()["status"], r.json()["reason"], r.json()["decided_at"]) == ("pending", None, None)

    async def test_a_pending_organisation_cannot_act(self, client):
        org = await make_org(client, "operator", approve=False)
        r = await client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": org.admin_username, "password": PASSWORD},
        )
        assert (r.status_code, r.json()["code"]) == (403, "organization_not_active")

    async def test_enrolment_cannot_set_a_user_id_or_a_balance(self, client):
        op = await make_operator(client)
        victim = await enrol(client, op)
        body = {
            "external_user_id": unique("u"),
            "identifier": {"type": "phone", "value": phone()},
            "consent": {
                "agreement_version": "v1",
                "accepted_at": (clock.now() - timedelta(days=1)).isoformat(),
            },
        }
        for extra in ({"user_id": victim["user_id"]}, {"balance": 10_000}, {"created": False}):
            r = await client.post("/v1/operator/users", json={**body, **extra}, headers=op.headers)
            assert r.status_code == 422, (extra, r.text)
        r = await client.post("/v1/operator/users", json=body, headers=op.headers)
        assert r.status_code == 201
        assert r.json()["user_id"] != victim["user_id"]
        r = await client.get(f"/v1/operator/users/{body['external_user_id']}/account", headers=op.headers)
        assert r.json()["balance"] == 0

    async def test_behaviour_records_cannot_bring_their_own_points(self, client):
        btype = await make_methodology(factor="46.7")
        op = await make_operator(client)
        person = await enrol(client, op)
        victim = await enrol(client, op)
        rec = {
            **record(person["external_user_id"], btype, quantity=1.0),
            "points": 100_000,
            "reduction_g": 10**9,
            "status": "accepted",
            "user_id": victim["user_id"],
            "methodology_version": f"{btype}@99",
            "rule_version": 99,
            "code": None,
        }
        r = await submit(client, op, [rec])
        assert r.status_code == 200, r.text
        res = r.json()["results"][0]
        assert (res["status"], res["reduction_g"], res["points"], res["methodology_version"]) == (
            "accepted",
            46,
            4,
            f"{btype}@1",
        )
        me = await client.get(
            "/v1/me/account", headers=await user_headers(client, op, person["external_user_id"])
        )
        other = await client.get(
            f"/v1/operator/users/{victim['external_user_id']}/account", headers=op.headers
        )
        assert (me.json()["balance"], other.json()["balance"]) == (4, 0)

    async def test_scene_cannot_set_its_status_owner_or_label(self, client):
        so = await make_org(client, "scene_operator")
        extra = {
            "status": "approved",
            "id": FOREIGN_ID,
            "operator_id": FOREIGN_ID,
            "label_code": "FAKE-1",
            "approved_at": LONG_AGO,
            "created_at": LONG_AGO,
            "review_panel_id": FOREIGN_ID,
        }
        r = await client.post("/v1/scenes", json={**scene_body(), **extra}, headers=so.headers)
        assert r.status_code in (201, 422), r.text
        if r.status_code == 201:
            scene = r.json()
            assert (scene["status"], scene["operator_id"], scene["label_code"], scene["approved_at"]) == (
                "draft",
                so.id,
                None,
                None,
            )
            assert scene["id"] != FOREIGN_ID and scene["review_panel_id"] is None
            assert scene["created_at"] != LONG_AGO
        else:
            r = await client.post("/v1/scenes", json=scene_body(), headers=so.headers)
            scene = r.json()
        r = await client.patch(
            f"/v1/scenes/{scene['id']}", json={"name": "renamed", **extra}, headers=so.headers
        )
        assert r.status_code in (200, 422), r.text
        r = await client.get(f"/v1/scenes/{scene['id']}", headers=so.headers)
        assert (r.json()["status"], r.json()["operator_id"], r.json()["label_code"]) == ("draft", so.id, None)
        r = await client.get(f"/v1/public/scenes/{scene['id']}")
        assert r.status_code == 404

    async def test_methodology_cannot_be_created_or_edited_into_published(self, client):
        authority = await authority_token(client)
        for extra in (
            {"status": "published"},
            {"id": FOREIGN_ID},
            {"version": 7},
            {"published_at": LONG_AGO},
        ):
            r = await client.post(
                "/v1/methodologies", json={**methodology_body(), **extra}, headers=bearer(authority)
            )
            assert r.status_code == 422, (extra, r.text)
        r = await client.post("/v1/methodologies", json=methodology_body(), headers=bearer(authority))
        version = r.json()
        r = await client.patch(
            f"/v1/methodologies/{version['id']}", json={"status": "published"}, headers=bearer(authority)
        )
        assert r.status_code == 422
        r = await client.get(f"/v1/methodologies/{version['id']}", headers=bearer(authority))
        assert (r.json()["status"], r.json()["version"]) == ("draft", version["version"])

    async def test_expert_account_cannot_be_given_another_role(self, client):
        authority = await authority_token(client)
        username = unique("expert")
        body = {
            "name": unique("E"),
            "fields": ["data"],
            "affiliation": {"name": "Inst"},
            "account": {"username": username, "password": PASSWORD, "role": "authority"},
            "id": FOREIGN_ID,
            "created_at": LONG_AGO,
        }
        r = await client.post("/v1/experts", json=body, headers=bearer(authority))
        assert r.status_code in (201, 422), r.text
        if r.status_code == 201:
            assert r.json()["id"] != FOREIGN_ID
            token = (
                await client.post(
                    "/v1/auth/token",
                    data={"grant_type": "password", "username": username, "password": PASSWORD},
                )
            ).json()["access_token"]
            r = await client.get("/v1/organizations", headers=bearer(token))
            assert r.status_code == 403
        expert = await make_expert(client, authority)
        r = await client.patch(
            f"/v1/experts/{expert.id}", json={"username": "root", "id": FOREIGN_ID}, headers=bearer(authority)
        )
        assert r.status_code in (200, 422), r.text
        r = await client.get(f"/v1/experts/{expert.id}", headers=bearer(authority))
        assert (r.json()["id"], r.json()["username"]) == (expert.id, expert.username)

    async def test_key_registration_cannot_pick_the_org_or_kid(self, client):
        op = await make_operator(client)
        victim = await make_operator(client)
        from app.core import security

        jwk = security.public_jwk_from_pem(security.generate_es256_pem())
        admin = bearer(op.extra["admin_token"])
        for extra in ({"org_id": victim.id}, {"kid": victim.kid}, {"revoked_at": None}):
            r = await client.post(
                f"/v1/organizations/{op.id}/keys", json={"jwk": jwk, **extra}, headers=admin
            )
            assert r.status_code == 422, (extra, r.text)

    async def test_clawback_cannot_name_its_entry_or_direction(self, client):
        authority = await authority_token(client)
        r = await client.post(
            f"/v1/points/accounts/{uuid.uuid4()}/clawback",
            json={"points": 1, "reason": "fraud", "kind": "earn"},
            headers=bearer(authority),
        )
        assert r.status_code == 422
        r = await client.post(
            f"/v1/points/accounts/{uuid.uuid4()}/clawback",
            json={"points": -5, "reason": "credit me"},
            headers=bearer(authority),
        )
        assert r.status_code == 422


def _response_properties(schema: dict) -> dict[str, set[str]]:
    """Every property name reachable from a 2xx response schema, by schema name."""
    components = schema["components"]["schemas"]
    seen: dict[str, set[str]] = {}

    def walk(node, owner: str) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref:
                name = ref.rsplit("/", 1)[1]
                if name not in seen:
                    seen[name] = set()
                    walk(components[name], name)
                return
            for key, value in (node.get("properties") or {}).items():
                seen.setdefault(owner, set()).add(key)
                walk(value, owner)
            for key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf"):
                if key in node:
                    walk(node[key], owner)
        elif isinstance(node, list):
            for item in node:
                walk(item, owner)

    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation.get("responses", {}).items():
                if status.startswith("2"):
                    for media in (response.get("content") or {}).values():
                        walk(media.get("schema", {}), f"{method.upper()} {path}")
    return seen


def _keys(data) -> set[str]:
    if isinstance(data, dict):
        return set(data) | set().union(*(_keys(v) for v in data.values()))
    if isinstance(data, list):
        return set().union(*(_keys(v) for v in data)) if data else set()
    return set()


class TestNoHiddenFieldsInResponses:
    async def test_response_schemas(self, app):
        leaks = {
            (owner, prop)
            for owner, props in _response_properties(app.openapi()).items()
            for prop in props
            if HIDDEN.search(prop) and prop not in ALLOWED
        }
        assert leaks == set()

    async def test_real_responses(self, client):
        authority = await authority_token(client)
        op = await make_operator(client, authority)
        number = phone()
        person = await enrol(client, op, number=number)
        user = await user_headers(client, op, person["external_user_id"])
        expert = await make_expert(client, authority)
        await person_session(client, number)  # the export is the person's own, on the platform
        responses = [
            await client.get("/v1/me/export"),
            await client.get("/v1/me/account", headers=user),
            await client.get(f"/v1/organizations/{op.id}/keys", headers=bearer(op.extra["admin_token"])),
            await client.get(f"/v1/organizations/{op.id}", headers=op.headers),
            await client.get("/v1/organizations", headers=bearer(authority), params={"limit": 5}),
            await client.get(f"/v1/experts/{expert.id}", headers=bearer(authority)),
            await client.get("/v1/public/experts", params={"limit": 5}),
            await client.get("/.well-known/jwks.json"),
        ]
        for r in responses:
            assert r.status_code == 200, r.text
            keys = {k for k in _keys(r.json()) if HIDDEN.search(k) and k not in ALLOWED}
            assert keys == set(), (str(r.url), keys)
            text = r.text
            assert number not in text and number.lstrip("+") not in text and "$argon2" not in text
            assert "PRIVATE KEY" not in text
        jwks = responses[-1].json()["keys"]
        assert jwks and all(set(k) <= {"kty", "crv", "x", "y", "n", "e", "kid", "alg", "use"} for k in jwks)
