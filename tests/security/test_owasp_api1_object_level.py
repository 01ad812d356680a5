"""OWASP API1:2023 Broken Object Level Authorization: nobody reads or changes another's object.

Operators see only the people who entrusted them, organisations only themselves, scene operators
only their own scenes, experts only the panels they sit on, people only their own account (no
``/v1/me`` route takes another person's id). Another's object answers 404 (its existence is not
disclosed) or 403, and is left unchanged.
"""

import re

import pytest

from tests.factories import bearer, make_operator, make_org, unique
from tests.factories_points import enrol, ensure_rule, make_methodology, record, submit, user_headers
from tests.factories_scenes import EXPERTS, make_expert, make_scene, open_scene_review


@pytest.fixture(autouse=True)
async def rule(app):
    await ensure_rule()


class TestOperatorsSeeOnlyTheirOwnPeople:
    async def test_another_operators_user_is_not_found_everywhere(self, client):
        a, b = await make_operator(client), await make_operator(client)
        person = await enrol(client, a)
        ext = person["external_user_id"]

        r = await client.get(f"/v1/operator/users/{ext}/account", headers=b.headers)
        assert (r.status_code, r.json()["code"]) == (404, "not_entrusted")
        r = await client.post(f"/v1/operator/users/{ext}/tokens", headers=b.headers)
        assert (r.status_code, r.json()["code"]) == (404, "not_entrusted")
        r = await client.delete(f"/v1/operator/users/{ext}", headers=b.headers)
        assert (r.status_code, r.json()["code"]) == (404, "not_entrusted")

        # a's entrustment is intact
        r = await client.get(f"/v1/operator/users/{ext}/account", headers=a.headers)
        assert r.status_code == 200
        assert r.json()["user_id"] == person["user_id"]

    async def test_another_operators_user_cannot_be_credited(self, client):
        btype = await make_methodology()
        a, b = await make_operator(client), await make_operator(client)
        ext = (await enrol(client, a))["external_user_id"]
        r = await submit(client, b, [record(ext, btype, quantity=5.0)])
        assert r.status_code == 200, r.text
        assert [(x["status"], x["code"], x["points"]) for x in r.json()["results"]] == [
            ("rejected", "not_entrusted", 0)
        ]
        r = await client.get(f"/v1/operator/users/{ext}/account", headers=a.headers)
        assert (r.json()["balance"], r.json()["lifetime_points"]) == (0, 0)

    async def test_the_same_external_id_at_two_operators_is_two_people(self, client):
        a, b = await make_operator(client), await make_operator(client)
        ext = unique("u")
        at_a = await enrol(client, a, external_user_id=ext)
        at_b = await enrol(client, b, external_user_id=ext)
        assert at_a["user_id"] != at_b["user_id"]
        ra = await client.get("/v1/me/account", headers=await user_headers(client, a, ext))
        rb = await client.get("/v1/me/account", headers=await user_headers(client, b, ext))
        assert (ra.json()["user_id"], rb.json()["user_id"]) == (at_a["user_id"], at_b["user_id"])


class TestPeopleSeeOnlyThemselves:
    async def test_me_is_the_tokens_person(self, client):
        btype = await make_methodology()
        op = await make_operator(client)
        rich, poor = await enrol(client, op), await enrol(client, op)
        await submit(client, op, [record(rich["external_user_id"], btype, quantity=5.0)])
        r = await client.get(
            "/v1/me/account", headers=await user_headers(client, op, poor["external_user_id"])
        )
        assert (r.json()["user_id"], r.json()["balance"]) == (poor["user_id"], 0)
        r = await client.get(
            "/v1/me/ledger", headers=await user_headers(client, op, poor["external_user_id"])
        )
        assert r.json()["items"] == []

    async def test_no_me_route_names_a_person(self, app):
        """``/v1/me/…`` routes take no person id: the token says who. Only ids of the caller's own objects."""
        for path in app.openapi()["paths"]:
            if path.startswith("/v1/me"):
                params = re.findall(r"{([^}]+)}", path)
                assert not [p for p in params if "user" in p or "person" in p or "account" in p], path

    async def test_clawback_takes_a_person_id_only_from_the_authority(self, client):
        op = await make_operator(client)
        person = await enrol(client, op)
        headers = await user_headers(client, op, person["external_user_id"])
        r = await client.post(
            f"/v1/points/accounts/{person['user_id']}/clawback",
            json={"points": 1, "reason": "mine"},
            headers=headers,
        )
        assert r.status_code == 403


class TestOrganisationsSeeOnlyThemselves:
    async def test_reading_another_organisation(self, client):
        operator = await make_operator(client)
        merchant = await make_org(client, "merchant")
        r = await client.get(f"/v1/organizations/{operator.id}", headers=merchant.headers)
        assert (r.status_code, r.json()["code"]) == (404, "organization_not_found")
        r = await client.get(f"/v1/organizations/{merchant.id}", headers=merchant.headers)
        assert (r.status_code, r.json()["id"]) == (200, merchant.id)

    async def test_another_organisations_keys(self, client):
        operator = await make_operator(client)
        other = await make_org(client, "operator")  # another operator's admin
        for method, path, body in (
            ("GET", f"/v1/organizations/{operator.id}/keys", None),
            ("POST", f"/v1/organizations/{operator.id}/keys", {"jwk": {"kty": "EC"}}),
            ("DELETE", f"/v1/organizations/{operator.id}/keys/{operator.kid}", None),
        ):
            r = await client.request(method, path, json=body, headers=other.headers)
            assert (r.status_code, r.json()["code"]) == (403, "not_your_organization"), (method, r.text)
        r = await client.get(
            f"/v1/organizations/{operator.id}/keys", headers=bearer(operator.extra["admin_token"])
        )
        assert [k["kid"] for k in r.json()] == [operator.kid]
        assert r.json()[0]["revoked_at"] is None


class TestSceneOperatorsSeeOnlyTheirOwnScenes:
    async def test_another_scene_operators_scene(self, client):
        a, b = await make_org(client, "scene_operator"), await make_org(client, "scene_operator")
        scene = await make_scene(client, a)
        sid = scene["id"]
        for method, path, body in (
            ("GET", f"/v1/scenes/{sid}", None),
            ("PATCH", f"/v1/scenes/{sid}", {"name": "taken over"}),
            ("POST", f"/v1/scenes/{sid}/submit", None),
        ):
            r = await client.request(method, path, json=body, headers=b.headers)
            assert (r.status_code, r.json()["code"]) == (404, "scene_not_found"), (method, path)
        r = await client.get("/v1/scenes", headers=b.headers, params={"limit": 200})
        assert sid not in [s["id"] for s in r.json()["items"]]
        r = await client.get(f"/v1/scenes/{sid}", headers=a.headers)
        assert (r.json()["name"], r.json()["status"]) == (scene["name"], "draft")


class TestExpertsSeeOnlyTheirPanels:
    async def test_an_expert_off_the_panel(self, client):
        from tests.factories import authority_token

        authority = await authority_token(client)
        field = "ocean"
        await make_expert(client, authority, fields=[field])
        so = await make_org(client, "scene_operator", authority=authority)
        scene = await make_scene(client, so, submit=True)
        panel = await open_scene_review(client, authority, scene["id"], field=field)
        (drawn,) = panel[
            "members"
        ]  # one of the experts these tests made in the field (an earlier test's, maybe)
        member = EXPERTS[str(drawn["expert_id"])]
        outsider = await make_expert(client, authority, fields=[field])

        r = await client.get(f"/v1/reviews/{panel['id']}", headers=outsider.headers)
        assert r.status_code == 404
        r = await client.post(
            f"/v1/reviews/{panel['id']}/opinions",
            headers=outsider.headers,
            json={"verdict": "pass", "score": 99, "text": "let me in"},
        )
        assert r.status_code in (403, 404)
        r = await client.get("/v1/reviews", headers=outsider.headers, params={"limit": 200})
        assert panel["id"] not in [p["id"] for p in r.json()["items"]]
        r = await client.get(f"/v1/reviews/{panel['id']}", headers=member.headers)
        assert r.status_code == 200
        assert [m["submitted"] for m in r.json()["members"]] == [False]


class TestPeopleSeeOnlyTheirOwnOrders:
    async def test_another_persons_order(self, client):
        from tests.factories_mall import item as read_item
        from tests.factories_mall import make_item, make_merchant, people, place

        btype = await make_methodology(factor="1000")
        op = await make_operator(client)
        alice, mallory = await people(client, op, btype, 2, points=200)
        merchant = await make_merchant(client)
        item = await make_item(client, merchant, points_price=50, stock=5)
        r = await place(client, alice, item["id"])
        assert r.status_code == 201, r.text
        order = r.json()
        r = await client.get(f"/v1/me/orders/{order['id']}", headers=mallory.headers)
        assert (r.status_code, r.json()["code"]) == (404, "order_not_found")
        r = await client.post(f"/v1/me/orders/{order['id']}/cancel", headers=mallory.headers)
        assert (r.status_code, r.json()["code"]) == (404, "order_not_found")
        r = await client.get("/v1/me/orders", headers=mallory.headers)
        assert r.json()["items"] == []
        r = await client.get("/v1/me/ledger", headers=mallory.headers)
        assert [e["kind"] for e in r.json()["items"]] == ["earn"]
        r = await client.get(f"/v1/me/orders/{order['id']}", headers=alice.headers)
        assert r.json()["status"] == "issued"
        assert (await read_item(client, item["id"]))["stock"] == 4


class TestMerchantsSeeOnlyTheirOwn:
    async def test_another_merchants_item_vouchers_and_orders(self, client):
        from tests.factories_mall import make_item, make_merchant, people, place

        btype = await make_methodology(factor="1000")
        op = await make_operator(client)
        (buyer,) = await people(client, op, btype, 1, points=200)
        mine, rival = await make_merchant(client), await make_merchant(client)
        item = await make_item(client, mine, points_price=50, stock=5)
        order = (await place(client, buyer, item["id"])).json()
        for method, path, body in (
            ("PATCH", f"/v1/mall/items/{item['id']}", {"points_price": 1}),
            ("POST", f"/v1/mall/items/{item['id']}/pause", None),
            ("POST", f"/v1/mall/items/{item['id']}/end", None),
        ):
            r = await client.request(method, path, json=body, headers=rival.headers)
            assert r.status_code in (403, 404), (method, path, r.text)
        r = await client.post(
            f"/v1/merchant/vouchers/{order['voucher']['code']}/redeem", headers=rival.headers
        )
        assert (r.status_code, r.json()["code"]) == (404, "voucher_not_found")
        r = await client.get("/v1/merchant/orders", headers=rival.headers)
        assert r.json()["items"] == []
        r = await client.get("/v1/merchant/orders", headers=mine.headers)
        assert [o["id"] for o in r.json()["items"]] == [order["id"]]
        assert "voucher" not in r.json()["items"][0] and order["voucher"]["code"] not in r.text
        r = await client.get(f"/v1/mall/items/{item['id']}")
        assert (r.json()["points_price"], r.json()["status"]) == (50, "active")
        r = await client.post(
            f"/v1/merchant/vouchers/{order['voucher']['code']}/redeem", headers=mine.headers
        )
        assert r.status_code == 200


class TestOperatorsSeeOnlyTheirOwnProjects:
    async def test_another_owners_cer_project(self, client):
        from tests.factories import authority_token
        from tests.factories_cer import add_records, create_project, days_ago, make_owner

        authority = await authority_token(client)
        owner = await make_owner(client, authority)
        await add_records(client, owner, [(3, 2.0)])
        project = await create_project(client, owner, days_ago(5).date(), days_ago(1).date())
        rival = await make_operator(client, authority)
        for method, path in (
            ("GET", f"/v1/cer/projects/{project['id']}"),
            ("GET", f"/v1/cer/projects/{project['id']}/objections"),
            ("POST", f"/v1/cer/projects/{project['id']}/submit"),
        ):
            r = await client.request(method, path, headers=rival.headers)
            assert r.status_code in (403, 404), (method, path, r.text)
        r = await client.get("/v1/cer/projects", headers=rival.headers)
        assert project["id"] not in [p["id"] for p in r.json()["items"]]
        r = await client.get(f"/v1/cer/projects/{project['id']}", headers=owner.headers)
        assert r.status_code == 200
