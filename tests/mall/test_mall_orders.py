import re
import uuid
from datetime import datetime, timedelta

import pytest

from app.core import clock
from tests.factories import make_operator
from tests.factories_mall import (
    balance,
    entries,
    fund,
    item,
    ledger_violations,
    make_item,
    make_merchant,
    people,
    place,
    purchased,
)

CODE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$")


@pytest.fixture
async def shop(client, world):
    merchant = await make_merchant(client, world.authority)
    [buyer] = await people(client, world.operator, world.btype, 1, points=400)
    return merchant, buyer


async def my_orders(client, person) -> list[dict]:
    r = await client.get("/v1/me/orders", headers=person.headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


class TestOrdering:
    async def test_an_order_spends_points_takes_stock_and_issues_a_voucher(self, client, world, shop):
        merchant, buyer = shop
        it = await make_item(client, merchant, points_price=120, stock=5, voucher_valid_days=7)
        before = clock.now()
        r = await place(client, buyer, it["id"], 2)
        assert r.status_code == 201, r.text
        order = r.json()
        assert {
            k: order[k]
            for k in (
                "item_id",
                "merchant_id",
                "title",
                "quantity",
                "unit_price",
                "points",
                "status",
                "refunded_points",
            )
        } == {
            "item_id": it["id"],
            "merchant_id": merchant.id,
            "title": it["title"],
            "quantity": 2,
            "unit_price": 120,
            "points": 240,
            "status": "issued",
            "refunded_points": 0,
        }
        assert CODE.match(order["voucher"]["code"])
        assert uuid.UUID(order["id"]).version == 7  # time-ordered (app.core.ids)
        expires = datetime.fromisoformat(order["voucher"]["expires_at"])
        assert before + timedelta(days=7) <= expires <= clock.now() + timedelta(days=7)
        assert await balance(client, buyer) == 160
        assert (await item(client, it["id"]))["stock"] == 3
        assert (await entries(buyer.user_id))[-1] == ("redeem", -240, 160)
        assert await my_orders(client, buyer) == [order]
        r = await client.get(f"/v1/me/orders/{order['id']}", headers=buyer.headers)
        assert r.json() == order
        assert await ledger_violations() == []

    async def test_the_soonest_expiring_points_are_spent_first(self, client, world):
        merchant = await make_merchant(client, world.authority)
        [buyer] = await people(client, world.operator, world.btype, 1, points=100)  # lot A
        clock.set_offset(timedelta(days=1))
        await fund(client, world.operator, world.btype, [buyer], 100)  # lot B, expires a day later
        r = await client.get("/v1/me/account", headers=buyer.headers)
        lot_a, lot_b = r.json()["expiring"]
        it = await make_item(client, merchant, points_price=150)
        assert (await place(client, buyer, it["id"])).status_code == 201
        r = await client.get("/v1/me/account", headers=buyer.headers)
        assert r.json()["expiring"] == [{"expires_at": lot_b["expires_at"], "points": 50}]
        assert lot_a["points"] == 100

    async def test_the_idempotency_key_is_required_and_replays_the_order(self, client, shop):
        merchant, buyer = shop
        it = await make_item(client, merchant, points_price=100, stock=5)
        r = await client.post(
            "/v1/me/orders", json={"item_id": it["id"], "quantity": 1}, headers=buyer.headers
        )
        assert (r.status_code, r.json()["code"]) == (400, "idempotency_key_required")
        key = f"order-{uuid.uuid4()}"
        first = await place(client, buyer, it["id"], key=key)
        again = await place(client, buyer, it["id"], key=key)
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true"
        other = await place(client, buyer, it["id"], quantity=2, key=key)
        assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
        assert await balance(client, buyer) == 300
        assert (await item(client, it["id"]))["stock"] == 4
        assert len(await my_orders(client, buyer)) == 1

    async def test_a_price_change_never_touches_placed_orders(self, client, shop):
        merchant, buyer = shop
        it = await make_item(
            client, merchant, points_price=100, voucher_valid_days=10, expiry_policy="refund"
        )
        order = (await place(client, buyer, it["id"])).json()
        r = await client.patch(
            f"/v1/mall/items/{it['id']}",
            headers=merchant.headers,
            json={"points_price": 150, "voucher_valid_days": 1, "expiry_policy": "forfeit"},
        )
        assert r.status_code == 200
        [kept] = await my_orders(client, buyer)
        assert kept == order
        assert (kept["unit_price"], kept["points"], kept["expiry_policy"]) == (100, 100, "refund")
        second = (await place(client, buyer, it["id"])).json()
        assert (second["points"], second["expiry_policy"]) == (150, "forfeit")
        assert await balance(client, buyer) == 150

    async def test_orders_are_private_and_paged(self, client, world, shop):
        merchant, buyer = shop
        [stranger] = await people(client, world.operator, world.btype, 1)
        it = await make_item(client, merchant, points_price=10)
        ids = [(await place(client, buyer, it["id"])).json()["id"] for _ in range(5)]
        r = await client.get(f"/v1/me/orders/{ids[0]}", headers=stranger.headers)
        assert (r.status_code, r.json()["code"]) == (404, "order_not_found")
        assert await my_orders(client, stranger) == []
        seen, cursor = [], None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/v1/me/orders", params=params, headers=buyer.headers)).json()
            seen += [o["id"] for o in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen == ids[::-1]
        r = await client.get("/v1/me/orders", params={"status": "cancelled"}, headers=buyer.headers)
        assert r.json()["items"] == []


class TestRefusals:
    """Each refusal has its own code and changes nothing: balance, stock, orders, allowance."""

    async def refused(self, client, buyer, item_id, quantity, status, code):
        before = (
            await balance(client, buyer),
            (await item(client, item_id))["stock"],
            await my_orders(client, buyer),
        )
        r = await place(client, buyer, item_id, quantity)
        assert r.headers["content-type"] == "application/problem+json"
        assert (r.status_code, r.json()["code"]) == (status, code), r.text
        after = (
            await balance(client, buyer),
            (await item(client, item_id))["stock"],
            await my_orders(client, buyer),
        )
        assert after == before
        assert await purchased(item_id, buyer.user_id) == sum(
            o["quantity"] for o in after[2] if o["item_id"] == item_id
        )

    async def test_insufficient_points(self, client, shop):
        merchant, buyer = shop
        it = await make_item(client, merchant, points_price=401, stock=3)
        await self.refused(client, buyer, it["id"], 1, 409, "insufficient_points")
        cheap = await make_item(client, merchant, points_price=150, stock=3)
        await self.refused(client, buyer, cheap["id"], 3, 409, "insufficient_points")

    async def test_out_of_stock(self, client, shop):
        merchant, buyer = shop
        it = await make_item(client, merchant, points_price=10, stock=2)
        await self.refused(client, buyer, it["id"], 3, 409, "out_of_stock")
        assert (await place(client, buyer, it["id"], 2)).status_code == 201
        await self.refused(client, buyer, it["id"], 1, 409, "out_of_stock")
        none = await make_item(client, merchant, points_price=10, stock=0)
        await self.refused(client, buyer, none["id"], 1, 409, "out_of_stock")

    async def test_out_of_stock_is_named_before_the_points(self, client, shop):
        merchant, buyer = shop  # 400 points
        gone = await make_item(client, merchant, points_price=401, stock=0)
        await self.refused(client, buyer, gone["id"], 1, 409, "out_of_stock")
        short = await make_item(client, merchant, points_price=300, stock=1)
        await self.refused(client, buyer, short["id"], 2, 409, "out_of_stock")

    async def test_the_per_person_limit_on_an_item_s_last_unit(self, client, shop):
        merchant, buyer = shop
        it = await make_item(client, merchant, points_price=10, stock=2, per_user_limit=1)
        assert (await place(client, buyer, it["id"])).status_code == 201
        await self.refused(client, buyer, it["id"], 1, 409, "per_user_limit_exceeded")  # not out of stock
        assert (await item(client, it["id"]))["stock"] == 1

    async def test_outside_the_sale_window(self, client, shop):
        merchant, buyer = shop
        now = clock.now()
        later = await make_item(client, merchant, sale_starts_at=(now + timedelta(hours=1)).isoformat())
        await self.refused(client, buyer, later["id"], 1, 409, "outside_sale_window")
        over = await make_item(
            client,
            merchant,
            sale_starts_at=(now - timedelta(days=2)).isoformat(),
            sale_ends_at=(now - timedelta(seconds=1)).isoformat(),
        )
        await self.refused(client, buyer, over["id"], 1, 409, "sale_ended")
        clock.set_offset(timedelta(hours=1, seconds=1))
        assert (await place(client, buyer, later["id"])).status_code == 201

    async def test_paused_and_ended_items(self, client, shop):
        merchant, buyer = shop
        it = await make_item(client, merchant)
        await client.post(f"/v1/mall/items/{it['id']}/pause", headers=merchant.headers)
        await self.refused(client, buyer, it["id"], 1, 409, "item_paused")
        await client.post(f"/v1/mall/items/{it['id']}/resume", headers=merchant.headers)
        assert (await place(client, buyer, it["id"])).status_code == 201
        await client.post(f"/v1/mall/items/{it['id']}/end", headers=merchant.headers)
        await self.refused(client, buyer, it["id"], 1, 409, "sale_ended")

    async def test_an_item_restricted_to_other_operators(self, client, world, shop):
        merchant, buyer = shop
        other = await make_operator(client, world.authority)
        it = await make_item(client, merchant, points_price=10, operator_ids=[other.id])
        await self.refused(client, buyer, it["id"], 1, 403, "item_restricted")
        ours = await make_item(client, merchant, points_price=10, operator_ids=[other.id, world.operator.id])
        assert (await place(client, buyer, ours["id"])).status_code == 201

    async def test_over_the_per_person_limit(self, client, shop):
        merchant, buyer = shop
        it = await make_item(client, merchant, points_price=10, stock=10, per_user_limit=2)
        await self.refused(client, buyer, it["id"], 3, 409, "per_user_limit_exceeded")
        assert (await place(client, buyer, it["id"], 2)).status_code == 201
        await self.refused(client, buyer, it["id"], 1, 409, "per_user_limit_exceeded")
        unlimited_stock = await make_item(client, merchant, points_price=10, stock=None, per_user_limit=1)
        assert (await place(client, buyer, unlimited_stock["id"])).status_code == 201
        await self.refused(client, buyer, unlimited_stock["id"], 1, 409, "per_user_limit_exceeded")

    async def test_bad_quantities(self, client, shop):
        merchant, buyer = shop
        it = await make_item(client, merchant, points_price=1, stock=500)
        for quantity in (0, -1, 101):
            await self.refused(client, buyer, it["id"], quantity, 422, "invalid_quantity")
        for quantity in ("two", 1.5, None):
            await self.refused(client, buyer, it["id"], quantity, 422, "validation_error")

    async def test_an_unknown_item(self, client, shop):
        _, buyer = shop
        r = await place(client, buyer, str(uuid.uuid4()))
        assert (r.status_code, r.json()["code"]) == (404, "item_not_found")
        assert await balance(client, buyer) == 400

    async def test_only_a_person_orders(self, client, world, shop):
        merchant, _ = shop
        it = await make_item(client, merchant)
        r = await client.post(
            "/v1/me/orders",
            json={"item_id": it["id"], "quantity": 1},
            headers={**merchant.headers, "Idempotency-Key": "k"},
        )
        assert (r.status_code, r.json()["code"]) == (403, "forbidden_role")
