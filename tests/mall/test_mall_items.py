from datetime import timedelta

from app.core import clock
from tests.factories import bearer, make_org
from tests.factories_mall import item, item_body, make_item, make_merchant


class TestListing:
    async def test_a_merchant_lists_an_item(self, client, world):
        merchant = await make_merchant(client, world.authority)
        body = item_body(
            points_price=250,
            stock=40,
            per_user_limit=2,
            voucher_valid_days=14,
            operator_ids=[world.operator.id],
            expiry_policy="forfeit",
        )
        r = await client.post("/v1/mall/items", json=body, headers=merchant.headers)
        assert r.status_code == 201, r.text
        created = r.json()
        assert {k: created[k] for k in body} == body
        assert created["merchant_id"] == merchant.id
        assert created["status"] == "active"
        assert await item(client, created["id"]) == created

    async def test_unlimited_stock_by_default(self, client, world):
        merchant = await make_merchant(client, world.authority)
        r = await client.post(
            "/v1/mall/items", headers=merchant.headers, json={"title": "Cup", "points_price": 5}
        )
        assert r.status_code == 201, r.text
        assert (r.json()["stock"], r.json()["per_user_limit"], r.json()["expiry_policy"]) == (
            None,
            None,
            "refund",
        )
        assert r.json()["voucher_valid_days"] == 30

    async def test_only_a_merchant_lists(self, client, world):
        r = await client.post("/v1/mall/items", json=item_body(), headers=world.operator.headers)
        assert (r.status_code, r.json()["code"]) == (403, "forbidden_role")
        r = await client.post("/v1/mall/items", json=item_body(), headers=bearer(world.authority))
        assert (r.status_code, r.json()["code"]) == (403, "forbidden_role")
        r = await client.post("/v1/mall/items", json=item_body())
        assert (r.status_code, r.json()["code"]) == (401, "not_authenticated")

    async def test_a_merchant_not_yet_approved_cannot_log_in_to_list(self, client, world):
        pending = await make_org(client, "merchant", approve=False)
        r = await client.post(
            "/v1/auth/token",
            data={
                "grant_type": "password",
                "username": pending.admin_username,
                "password": "correct-horse-battery",
            },
        )
        assert (r.status_code, r.json()["code"]) == (403, "organization_not_active")

    async def test_bad_items(self, client, world):
        merchant = await make_merchant(client, world.authority)
        now = clock.now()
        cases = [
            ({"points_price": 0}, 422, "validation_error"),
            ({"points_price": -5}, 422, "validation_error"),
            ({"stock": -1}, 422, "validation_error"),
            ({"per_user_limit": 0}, 422, "validation_error"),
            ({"voucher_valid_days": 0}, 422, "validation_error"),
            ({"images": ["ftp://example.org/a.png"]}, 422, "validation_error"),
            ({"expiry_policy": "keep"}, 422, "validation_error"),
            ({"sale_starts_at": "2026-01-01T00:00:00"}, 422, "validation_error"),  # no offset
            (
                {"sale_starts_at": now.isoformat(), "sale_ends_at": now.isoformat()},
                422,
                "invalid_sale_window",
            ),
            ({"operator_ids": [merchant.id]}, 422, "unknown_operator"),
            ({"operator_ids": []}, 422, "unknown_operator"),
            ({"operator_ids": ["00000000-0000-0000-0000-000000000000"]}, 422, "unknown_operator"),
            ({"color": "green"}, 422, "validation_error"),
        ]
        for override, status, code in cases:
            r = await client.post("/v1/mall/items", json=item_body(**override), headers=merchant.headers)
            assert (r.status_code, r.json()["code"]) == (status, code), (override, r.text)
        r = await client.get("/v1/merchant/items", headers=merchant.headers)
        assert r.json()["items"] == []


class TestEditing:
    async def test_the_merchant_edits_its_item(self, client, world):
        merchant = await make_merchant(client, world.authority)
        it = await make_item(client, merchant, stock=10)
        changes = {
            "title": "Bamboo cup",
            "points_price": 80,
            "stock": 25,
            "per_user_limit": 3,
            "images": ["https://example.org/bamboo.png"],
            "operator_ids": [world.operator.id],
        }
        r = await client.patch(f"/v1/mall/items/{it['id']}", json=changes, headers=merchant.headers)
        assert r.status_code == 200, r.text
        assert {k: r.json()[k] for k in changes} == changes
        assert r.json()["description"] == it["description"]
        r = await client.patch(
            f"/v1/mall/items/{it['id']}",
            json={"stock": None, "per_user_limit": None, "operator_ids": None},
            headers=merchant.headers,
        )
        assert (r.json()["stock"], r.json()["per_user_limit"], r.json()["operator_ids"]) == (None, None, None)
        r = await client.patch(f"/v1/mall/items/{it['id']}", json={"stock": 0}, headers=merchant.headers)
        assert r.json()["stock"] == 0

    async def test_editing_another_merchants_item(self, client, world):
        owner, other = (
            await make_merchant(client, world.authority),
            await make_merchant(client, world.authority),
        )
        it = await make_item(client, owner)
        r = await client.patch(f"/v1/mall/items/{it['id']}", json={"points_price": 1}, headers=other.headers)
        assert (r.status_code, r.json()["code"]) == (403, "not_item_owner")
        for action in ("pause", "end"):
            r = await client.post(f"/v1/mall/items/{it['id']}/{action}", headers=other.headers)
            assert (r.status_code, r.json()["code"]) == (403, "not_item_owner")
        assert await item(client, it["id"]) == it

    async def test_bad_edits(self, client, world):
        merchant = await make_merchant(client, world.authority)
        it = await make_item(client, merchant, sale_starts_at=clock.now().isoformat())
        cases = [
            ({"title": None}, "field_not_nullable"),
            ({"points_price": None}, "field_not_nullable"),
            ({"points_price": 0}, "validation_error"),
            ({"sale_ends_at": (clock.now() - timedelta(days=1)).isoformat()}, "invalid_sale_window"),
            ({"operator_ids": [merchant.id]}, "unknown_operator"),
        ]
        for change, code in cases:
            r = await client.patch(f"/v1/mall/items/{it['id']}", json=change, headers=merchant.headers)
            assert (r.status_code, r.json()["code"]) == (422, code), (change, r.text)
        r = await client.patch(
            "/v1/mall/items/00000000-0000-0000-0000-000000000000",
            json={"title": "x"},
            headers=merchant.headers,
        )
        assert (r.status_code, r.json()["code"]) == (404, "item_not_found")
        assert await item(client, it["id"]) == it

    async def test_pause_resume_and_end(self, client, world):
        merchant = await make_merchant(client, world.authority)
        it = await make_item(client, merchant)
        path = f"/v1/mall/items/{it['id']}"
        steps = [
            ("resume", 409, "active"),
            ("pause", 200, "paused"),
            ("pause", 409, "paused"),
            ("resume", 200, "active"),
            ("end", 200, "ended"),
            ("resume", 409, "ended"),
            ("end", 409, "ended"),
        ]
        for action, status, state in steps:
            r = await client.post(f"{path}/{action}", headers=merchant.headers)
            assert r.status_code == status, (action, r.text)
            if status == 409:
                assert r.json()["code"] == "invalid_item_transition"
            assert (await item(client, it["id"]))["status"] == state
        r = await client.patch(path, json={"title": "again"}, headers=merchant.headers)
        assert (r.status_code, r.json()["code"]) == (409, "invalid_item_transition")
        assert (await item(client, it["id"]))["ended_at"] is not None


class TestCatalogue:
    async def test_public_list_filters_and_pages(self, client, world):
        merchant = await make_merchant(client, world.authority)
        cheap = await make_item(client, merchant, points_price=10, stock=None)
        mid = await make_item(client, merchant, points_price=50, stock=5)
        sold_out = await make_item(client, merchant, points_price=60, stock=0)
        paused = await make_item(client, merchant, points_price=70)
        await client.post(f"/v1/mall/items/{paused['id']}/pause", headers=merchant.headers)
        over = await make_item(
            client,
            merchant,
            points_price=80,
            sale_starts_at=(clock.now() - timedelta(days=2)).isoformat(),
            sale_ends_at=(clock.now() - timedelta(days=1)).isoformat(),
        )
        later = await make_item(
            client, merchant, points_price=90, sale_starts_at=(clock.now() + timedelta(days=1)).isoformat()
        )

        async def ids(**params) -> list[str]:
            r = await client.get("/v1/mall/items", params={"merchant_id": merchant.id, **params})
            assert r.status_code == 200, r.text
            return [i["id"] for i in r.json()["items"]]

        newest_first = [later["id"], sold_out["id"], mid["id"], cheap["id"]]
        assert await ids() == newest_first
        assert over["id"] not in newest_first
        assert await ids(min_price=50, max_price=60) == [sold_out["id"], mid["id"]]
        assert await ids(in_stock="true") == [later["id"], mid["id"], cheap["id"]]
        assert await ids(in_stock="false") == [sold_out["id"]]
        seen, cursor = [], None
        while True:
            r = await client.get(
                "/v1/mall/items",
                params={"merchant_id": merchant.id, "limit": 3, **({"cursor": cursor} if cursor else {})},
            )
            seen += [i["id"] for i in r.json()["items"]]
            cursor = r.json()["next_cursor"]
            if not cursor:
                break
        assert seen == newest_first
        r = await client.get("/v1/mall/items", params={"cursor": "garbage"})
        assert (r.status_code, r.json()["code"]) == (400, "invalid_cursor")
        r = await client.get("/v1/merchant/items", params={"status": "paused"}, headers=merchant.headers)
        assert [i["id"] for i in r.json()["items"]] == [paused["id"]]
        r = await client.get("/v1/merchant/items", headers=merchant.headers)
        assert len(r.json()["items"]) == 6

    async def test_any_item_can_be_read_by_id(self, client, world):
        merchant = await make_merchant(client, world.authority)
        it = await make_item(client, merchant)
        await client.post(f"/v1/mall/items/{it['id']}/end", headers=merchant.headers)
        assert (await item(client, it["id"]))["status"] == "ended"
        r = await client.get("/v1/mall/items/00000000-0000-0000-0000-000000000000")
        assert (r.status_code, r.json()["code"]) == (404, "item_not_found")
