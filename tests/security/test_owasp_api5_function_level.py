"""OWASP API5:2023 Broken Function Level Authorization: each role against each operation.

The OpenAPI document lists every operation; :data:`tests.security.access.ACCESS` says, from the
API contract, which roles may call it. Every other role is refused before anything runs:
anonymous callers with 401 ``not_authenticated``, signed-in callers of another role with 403
(and an organisation's staff who is not its admin with 403 on admin routes).
"""

import re
import uuid

import pytest

from tests.factories import bearer, staff_token
from tests.factories_points import ensure_rule
from tests.factories_security import ROLES, make_cast
from tests.security.access import ACCESS, ORG_ADMIN


@pytest.fixture(autouse=True)
async def rule(app):
    await ensure_rule()


def _fill(path: str) -> str:
    return re.sub(r"{([^}]+)}", lambda m: str(uuid.uuid4()) if m.group(1).endswith("id") else "x-1", path)


def _operations(app) -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, ops in app.openapi()["paths"].items() for method in ops]


async def test_every_role_outside_the_table_is_refused(app, client):
    cast = await make_cast(client)
    refused = 0
    wrong = []
    for method, path in _operations(app):
        allowed = ACCESS[(method, path)]
        for role in ROLES:
            if role in allowed:
                continue
            body = {} if method in ("POST", "PATCH", "PUT") else None
            r = await client.request(
                method,
                _fill(path),
                json=body,
                headers={**cast.headers[role], "Idempotency-Key": uuid.uuid4().hex},
            )
            expected = 401 if role == "anonymous" else 403
            if r.status_code != expected or r.headers.get("content-type") != "application/problem+json":
                wrong.append(f"{method} {path} as {role}: {r.status_code} {r.text[:200]}")
            refused += 1
    assert wrong == []
    assert refused > 300


async def test_anonymous_is_refused_with_not_authenticated(app, client):
    for method, path in _operations(app):
        if "anonymous" in ACCESS[(method, path)]:
            continue
        r = await client.request(method, _fill(path), json={} if method in ("POST", "PATCH") else None)
        assert (r.status_code, r.json()["code"]) == (401, "not_authenticated"), (method, path)
        assert r.headers["www-authenticate"] == "Bearer"


async def test_org_admin_routes_refuse_the_organisations_other_staff(client):
    cast = await make_cast(client)
    org = cast.orgs["merchant"]
    staff = bearer(await staff_token(client, org))
    for method, path in ACCESS:
        if ACCESS[(method, path)] != ORG_ADMIN:
            continue
        url = path.replace("{org_id}", org.id).replace("{kid}", "k")
        r = await client.request(method, url, json={"jwk": {}} if method == "POST" else None, headers=staff)
        assert (r.status_code, r.json()["code"]) == (403, "admin_required"), (method, path)


async def test_a_user_token_cannot_act_as_its_operator(client):
    """The operator issued the person's token; the token does not carry the operator's powers."""
    cast = await make_cast(client)
    for method, path in ACCESS:
        if "operator" in ACCESS[(method, path)] and "user" not in ACCESS[(method, path)]:
            r = await client.request(
                method,
                _fill(path),
                json={} if method in ("POST", "PATCH") else None,
                headers={**cast.user_headers, "Idempotency-Key": uuid.uuid4().hex},
            )
            assert r.status_code == 403, (method, path, r.text)
