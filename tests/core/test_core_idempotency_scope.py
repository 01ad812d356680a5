"""Idempotency-Key scopes: a key is the acting caller's, for every kind of caller.

The same key with the same request from another caller is another request: it runs, and the
first caller's stored response is never shown to it. (User tokens through two operators:
``tests/mall/test_mall_idempotency_scope.py``.)
"""

import uuid

import sqlalchemy as sa

from app.auth.principal import Principal
from app.core import db
from tests.factories import application, authority_token, bearer, make_operator, make_org, unique
from tests.factories_points import phone


def with_key(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


async def entrustments(user_id: str) -> list[str]:
    async with db.session_scope() as session:
        rows = await session.execute(
            sa.text("SELECT operator_id::text FROM entrustments WHERE user_id = :u ORDER BY operator_id"),
            {"u": uuid.UUID(user_id)},
        )
        return [r[0] for r in rows]


class TestScopeNamesWhoActs:
    def test_a_person_through_two_operators_has_two_scopes(self):
        person, a, b = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        assert Principal("user", "user", person, a).scope == f"user:{a}:{person}"
        assert Principal("user", "user", person, b).scope == f"user:{b}:{person}"

    def test_every_kind_names_its_organisation_and_subject(self):
        staff, org = uuid.uuid4(), uuid.uuid4()
        assert Principal("staff", "merchant", staff, org).scope == f"staff:{org}:{staff}"
        assert Principal("staff", "authority", staff).scope == f"staff:-:{staff}"
        assert Principal("client", "operator", org, org).scope == f"client:{org}:{org}"


class TestOtherCallersRunTheirOwnRequest:
    async def test_two_operator_clients(self, client):
        authority = await authority_token(client)
        a, b = await make_operator(client, authority), await make_operator(client, authority)
        key = unique("key")
        body = {
            "external_user_id": unique("u"),
            "identifier": {"type": "phone", "value": phone()},
            "consent": {"agreement_version": "v1", "accepted_at": "2026-01-01T00:00:00+08:00"},
        }
        first = await client.post("/v1/operator/users", json=body, headers=with_key(a.headers, key))
        assert first.status_code == 201, first.text
        second = await client.post("/v1/operator/users", json=body, headers=with_key(b.headers, key))
        assert second.status_code == 201, second.text
        assert "idempotent-replayed" not in second.headers
        assert second.json()["user_id"] == first.json()["user_id"]  # one person, entrusting both
        assert await entrustments(first.json()["user_id"]) == sorted([a.id, b.id])

    async def test_staff_of_two_organisations(self, client):
        authority = await authority_token(client)
        a = await make_org(client, "merchant", authority=authority)
        b = await make_org(client, "merchant", authority=authority)
        key = unique("key")
        body = {
            "title": unique("Cup"),
            "description": "",
            "images": [],
            "points_price": 100,
            "stock": 1,
            "per_user_limit": None,
            "voucher_valid_days": 30,
        }
        first = await client.post("/v1/mall/items", json=body, headers=with_key(a.headers, key))
        assert first.status_code == 201, first.text
        second = await client.post("/v1/mall/items", json=body, headers=with_key(b.headers, key))
        assert second.status_code == 201, second.text
        assert "idempotent-replayed" not in second.headers
        assert second.json()["id"] != first.json()["id"]
        assert (first.json()["merchant_id"], second.json()["merchant_id"]) == (a.id, b.id)

    async def test_two_authority_accounts(self, client):
        one, other = await authority_token(client), await authority_token(client)
        org_id = (await client.post("/v1/organizations", json=application())).json()["id"]
        key = unique("key")
        first = await client.post(f"/v1/organizations/{org_id}/approve", headers=with_key(bearer(one), key))
        assert first.status_code == 200, first.text
        second = await client.post(
            f"/v1/organizations/{org_id}/approve", headers=with_key(bearer(other), key)
        )
        assert (second.status_code, second.json()["code"]) == (409, "invalid_transition")
        assert "idempotent-replayed" not in second.headers
