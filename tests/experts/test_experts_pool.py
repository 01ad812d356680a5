"""The expert pool over HTTP: the authority keeps experts and their logins; the public sees the list."""

import sqlalchemy as sa

from app.core import db
from tests.factories import PASSWORD, assert_problem, authority_token, bearer, login, make_org, unique
from tests.factories_scenes import make_expert

PROBLEM = "application/problem+json"


def body(**overrides) -> dict:
    b = {
        "name": unique("Prof. Li"),
        "fields": ["travel", "energy"],
        "affiliation": {"name": "Shenzhen Institute of Transport"},
        "account": {"username": unique("li"), "password": PASSWORD},
    }
    b.update(overrides)
    return b


async def public_experts(client, **params) -> list[dict]:
    items, cursor = [], None
    while True:
        r = await client.get(
            "/v1/public/experts", params={**params, "limit": 200, **({"cursor": cursor} if cursor else {})}
        )
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if not cursor:
            return items


class TestAddExpert:
    async def test_the_authority_adds_an_expert_with_a_login(self, client):
        authority = await authority_token(client)
        data = body(fields=["travel", "energy", "travel"])
        r = await client.post("/v1/experts", json=data, headers=bearer(authority))
        assert r.status_code == 201, r.text
        expert = r.json()
        assert set(expert) == {
            "id",
            "name",
            "fields",
            "affiliation",
            "active",
            "username",
            "created_at",
            "updated_at",
        }
        assert expert["name"] == data["name"]
        assert expert["fields"] == ["energy", "travel"]
        assert expert["affiliation"] == {"name": "Shenzhen Institute of Transport", "org_id": None}
        assert (expert["active"], expert["username"]) == (True, data["account"]["username"])
        token = await login(client, data["account"]["username"])
        r = await client.get("/v1/reviews?mine=true", headers=bearer(token))
        assert r.status_code == 200, r.text
        assert r.json() == {"items": [], "next_cursor": None}

    async def test_the_affiliation_may_name_a_registered_organisation(self, client):
        authority = await authority_token(client)
        org = await make_org(client, "verifier", authority=authority)
        r = await client.post(
            "/v1/experts",
            json=body(affiliation={"name": "Verifier Co", "org_id": org.id}),
            headers=bearer(authority),
        )
        assert r.status_code == 201, r.text
        assert r.json()["affiliation"] == {"name": "Verifier Co", "org_id": org.id}

    async def test_it_is_audited(self, client):
        authority = await authority_token(client)
        expert = (await client.post("/v1/experts", json=body(), headers=bearer(authority))).json()
        async with db.session_scope() as session:
            actions = (
                (
                    await session.execute(
                        sa.text(
                            "SELECT action FROM audit_entries WHERE subject_type = 'expert' AND subject_id = :id"
                        ),
                        {"id": expert["id"]},
                    )
                )
                .scalars()
                .all()
            )
        assert actions == ["expert.created"]


class TestBadExperts:
    async def test_an_unknown_field(self, client):
        authority = await authority_token(client)
        r = await client.post("/v1/experts", json=body(fields=["astrology"]), headers=bearer(authority))
        assert_problem(r, 422, "unknown_field")

    async def test_an_unregistered_affiliation_org(self, client):
        authority = await authority_token(client)
        r = await client.post(
            "/v1/experts",
            json=body(affiliation={"name": "X", "org_id": "00000000-0000-4000-8000-000000000000"}),
            headers=bearer(authority),
        )
        assert_problem(r, 422, "unknown_affiliation_org")

    async def test_a_taken_username(self, client):
        authority = await authority_token(client)
        first = body()
        assert (await client.post("/v1/experts", json=first, headers=bearer(authority))).status_code == 201
        r = await client.post("/v1/experts", json=body(account=first["account"]), headers=bearer(authority))
        assert_problem(r, 409, "username_taken")

    async def test_only_the_authority_keeps_the_pool(self, client):
        org = await make_org(client, "scene_operator")
        assert_problem(
            await client.post("/v1/experts", json=body(), headers=org.headers), 403, "forbidden_role"
        )
        assert_problem(await client.get("/v1/experts", headers=org.headers), 403, "forbidden_role")
        assert_problem(await client.post("/v1/experts", json=body()), 401, "not_authenticated")

    async def test_an_unknown_expert(self, client):
        authority = await authority_token(client)
        r = await client.patch(
            "/v1/experts/00000000-0000-4000-8000-000000000000",
            json={"active": False},
            headers=bearer(authority),
        )
        assert_problem(r, 404, "expert_not_found")


class TestChangeExpert:
    async def test_patch_changes_only_what_is_given(self, client):
        authority = await authority_token(client)
        expert = await make_expert(client, authority, fields=["retail"])
        r = await client.patch(
            f"/v1/experts/{expert.id}", json={"fields": ["retail", "waste"]}, headers=bearer(authority)
        )
        assert r.status_code == 200, r.text
        assert r.json()["fields"] == ["retail", "waste"]
        assert r.json()["name"] == expert.body["name"]
        assert r.json()["affiliation"] == expert.body["affiliation"]

    async def test_an_inactive_expert_leaves_the_public_list(self, client):
        authority = await authority_token(client)
        expert = await make_expert(client, authority, fields=["forestry"])
        assert expert.id in {e["id"] for e in await public_experts(client, field="forestry")}
        r = await client.patch(f"/v1/experts/{expert.id}", json={"active": False}, headers=bearer(authority))
        assert r.status_code == 200 and r.json()["active"] is False
        assert expert.id not in {e["id"] for e in await public_experts(client, field="forestry")}
        r = await client.get(f"/v1/experts/{expert.id}", headers=bearer(authority))
        assert (r.json()["active"], r.json()["username"]) == (False, expert.username)


class TestPublicList:
    async def test_it_discloses_names_fields_and_affiliations_but_no_logins(self, client):
        authority = await authority_token(client)
        expert = await make_expert(
            client, authority, fields=["agriculture"], affiliation="South China Agri Univ"
        )
        listed = {e["id"]: e for e in await public_experts(client, field="agriculture")}
        assert listed[expert.id] == {
            "id": expert.id,
            "name": expert.body["name"],
            "fields": ["agriculture"],
            "affiliation": {"name": "South China Agri Univ", "org_id": None},
        }

    async def test_it_pages_by_name(self, client):
        authority = await authority_token(client)
        for _ in range(3):
            await make_expert(client, authority, fields=["ocean"])
        items = await public_experts(client, field="ocean")
        r = await client.get("/v1/public/experts", params={"field": "ocean", "limit": 1})
        first = r.json()
        r = await client.get(
            "/v1/public/experts", params={"field": "ocean", "limit": 1, "cursor": first["next_cursor"]}
        )
        assert [first["items"][0]["id"], r.json()["items"][0]["id"]] == [items[0]["id"], items[1]["id"]]
        assert [(e["name"], e["id"]) for e in items] == sorted((e["name"], e["id"]) for e in items)

    async def test_an_unknown_field_filter(self, client):
        assert_problem(
            await client.get("/v1/public/experts", params={"field": "magic"}), 422, "unknown_field"
        )
