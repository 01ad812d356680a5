import asyncio
import uuid
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from app.core import clock, db
from app.mall import service as mall_service
from tests.factories import invoke_cli
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


@pytest.fixture
async def shop(client, world):
    merchant = await make_merchant(client, world.authority)
    [buyer] = await people(client, world.operator, world.btype, 1, points=400)
    return merchant, buyer


async def order(client, buyer, item_id, quantity=1) -> dict:
    r = await place(client, buyer, item_id, quantity)
    assert r.status_code == 201, r.text
    return r.json()


async def redeem(client, merchant, code):
    return await client.post(f"/v1/merchant/vouchers/{code}/redeem", headers=merchant.headers)


async def cancel(client, buyer, order_id):
    return await client.post(f"/v1/me/orders/{order_id}/cancel", headers=buyer.headers)


async def status_of(client, buyer, order_id) -> str:
    return (await client.get(f"/v1/me/orders/{order_id}", headers=buyer.headers)).json()["status"]


async def expire(now: datetime) -> dict:
    async with db.session_scope() as session:
        return await mall_service.expire_vouchers(session, now=now)


class TestCounterRedemption:
    async def test_the_merchant_redeems_a_voucher_once(self, client, shop):
        merchant, buyer = shop
        it = await make_item(client, merchant, points_price=100, stock=3)
        o = await order(client, buyer, it["id"], 2)
        typed = o["voucher"]["code"].lower().replace("-", " ")  # a clerk may type it any way
        r = await redeem(client, merchant, typed)
        assert r.status_code == 200, r.text
        assert {k: r.json()[k] for k in ("order_id", "item_id", "quantity", "points", "status")} == {
            "order_id": o["id"],
            "item_id": it["id"],
            "quantity": 2,
            "points": 200,
            "status": "redeemed",
        }
        r = await redeem(client, merchant, o["voucher"]["code"])
        assert (r.status_code, r.json()["code"]) == (409, "voucher_redeemed")
        assert await status_of(client, buyer, o["id"]) == "redeemed"
        assert await balance(client, buyer) == 200
        r = await client.get("/v1/merchant/orders", headers=merchant.headers)
        [seen] = r.json()["items"]
        assert (seen["id"], seen["status"], "voucher" in seen) == (o["id"], "redeemed", False)

    async def test_a_wrong_or_foreign_code_is_not_found_alike(self, client, world, shop):
        merchant, buyer = shop
        other = await make_merchant(client, world.authority)
        it = await make_item(client, merchant)
        o = await order(client, buyer, it["id"])
        foreign = await redeem(client, other, o["voucher"]["code"])
        wrong = await redeem(client, merchant, "0000-0000-0000-0000")
        garbage = await redeem(client, merchant, "not-a-code")
        for r in (foreign, wrong, garbage):
            assert (r.status_code, r.json()["code"], r.json()["detail"]) == (
                404,
                "voucher_not_found",
                "No such voucher",
            )
        assert await status_of(client, buyer, o["id"]) == "issued"

    async def test_guessing_is_rate_limited_per_merchant(self, client, world, shop, settings, monkeypatch):
        merchant, buyer = shop
        monkeypatch.setattr(settings, "voucher_guess_limit_per_minute", 3)
        it = await make_item(client, merchant)
        o = await order(client, buyer, it["id"])
        clock.freeze(clock.now().replace(second=30, microsecond=0))  # the limit counts per minute: hold one
        for _ in range(3):
            assert (await redeem(client, merchant, "0000-0000-0000-0000")).status_code == 404
        r = await redeem(client, merchant, "0000-0000-0000-0001")
        assert (r.status_code, r.json()["code"]) == (429, "rate_limited")
        assert int(r.headers["Retry-After"]) >= 1
        r = await redeem(client, merchant, o["voucher"]["code"])  # even a good code waits out the minute
        assert r.status_code == 429
        other = await make_merchant(client, world.authority)  # another merchant has its own allowance
        assert (await redeem(client, other, "0000-0000-0000-0000")).status_code == 404
        assert await status_of(client, buyer, o["id"]) == "issued"

    async def test_an_expired_voucher_is_refused_before_the_job_runs(self, client, shop):
        merchant, buyer = shop
        it = await make_item(client, merchant, voucher_valid_days=1)
        o = await order(client, buyer, it["id"])
        clock.freeze(datetime.fromisoformat(o["voucher"]["expires_at"]))
        r = await redeem(client, merchant, o["voucher"]["code"])
        assert (r.status_code, r.json()["code"]) == (409, "voucher_expired")
        r = await cancel(client, buyer, o["id"])
        assert (r.status_code, r.json()["code"]) == (409, "voucher_expired")
        assert await status_of(client, buyer, o["id"]) == "issued"

    async def test_only_a_merchant_redeems(self, client, shop):
        _, buyer = shop
        r = await client.post("/v1/merchant/vouchers/0000-0000-0000-0000/redeem", headers=buyer.headers)
        assert (r.status_code, r.json()["code"]) == (403, "forbidden_role")


class TestCancellation:
    async def test_cancel_gives_back_points_stock_and_allowance(self, client, shop):
        merchant, buyer = shop
        it = await make_item(client, merchant, points_price=150, stock=5, per_user_limit=2)
        o = await order(client, buyer, it["id"], 2)
        assert (await balance(client, buyer), (await item(client, it["id"]))["stock"]) == (100, 3)
        r = await cancel(client, buyer, o["id"])
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["refunded_points"]) == ("cancelled", 300)
        assert r.json()["cancelled_at"] is not None
        assert (await balance(client, buyer), (await item(client, it["id"]))["stock"]) == (400, 5)
        assert await purchased(it["id"], buyer.user_id) == 0
        assert (await entries(buyer.user_id))[-2:] == [("redeem", -300, 100), ("refund", 300, 400)]
        assert (await place(client, buyer, it["id"], 2)).status_code == 201  # the allowance is back
        assert await ledger_violations() == []

    async def test_cancel_twice_cancel_after_redeem_and_redeem_after_cancel(self, client, world, shop):
        merchant, buyer = shop
        it = await make_item(client, merchant, points_price=10)
        cancelled, used = await order(client, buyer, it["id"]), await order(client, buyer, it["id"])
        assert (await cancel(client, buyer, cancelled["id"])).status_code == 200
        assert (await redeem(client, merchant, used["voucher"]["code"])).status_code == 200
        before = await balance(client, buyer)
        for r, code in [
            (await cancel(client, buyer, cancelled["id"]), "voucher_cancelled"),
            (await redeem(client, merchant, cancelled["voucher"]["code"]), "voucher_cancelled"),
            (await cancel(client, buyer, used["id"]), "voucher_redeemed"),
        ]:
            assert (r.status_code, r.json()["code"]) == (409, code)
        [stranger] = await people(client, world.operator, world.btype, 1)
        r = await cancel(client, stranger, used["id"])
        assert (r.status_code, r.json()["code"]) == (404, "order_not_found")
        assert await balance(client, buyer) == before

    async def test_a_share_whose_lot_expired_meanwhile_is_expired_at_once(self, client, world):
        merchant = await make_merchant(client, world.authority)
        [buyer] = await people(client, world.operator, world.btype, 1, points=100)  # lot A
        clock.set_offset(timedelta(days=1))
        await fund(client, world.operator, world.btype, [buyer], 100)  # lot B
        lots = (await client.get("/v1/me/account", headers=buyer.headers)).json()["expiring"]
        it = await make_item(client, merchant, points_price=150, voucher_valid_days=3650)
        o = await order(client, buyer, it["id"])  # 100 from A, 50 from B
        clock.freeze(datetime.fromisoformat(lots[0]["expires_at"]))  # lot A has expired since
        r = await cancel(client, buyer, o["id"])
        assert r.status_code == 200, r.text
        assert (await entries(buyer.user_id))[-3:] == [
            ("redeem", -150, 50),
            ("refund", 150, 200),
            ("expire", -100, 100),
        ]
        assert await balance(client, buyer) == 100
        assert await ledger_violations() == []

    async def test_cancel_and_redeem_racing_exactly_one_wins(self, client, shop):
        merchant, buyer = shop
        it = await make_item(client, merchant, points_price=10, stock=20)
        orders = [await order(client, buyer, it["id"]) for _ in range(12)]
        outcomes = await asyncio.gather(
            *[
                asyncio.gather(cancel(client, buyer, o["id"]), redeem(client, merchant, o["voucher"]["code"]))
                for o in orders
            ]
        )
        cancelled = 0
        for o, (c, r) in zip(orders, outcomes, strict=True):
            assert sorted([c.status_code, r.status_code]) == [200, 409], (c.text, r.text)
            if c.status_code == 200:
                cancelled += 1
                assert r.json()["code"] == "voucher_cancelled"
                assert await status_of(client, buyer, o["id"]) == "cancelled"
            else:
                assert c.json()["code"] == "voucher_redeemed"
                assert await status_of(client, buyer, o["id"]) == "redeemed"
        assert await balance(client, buyer) == 400 - 10 * (12 - cancelled)
        assert (await item(client, it["id"]))["stock"] == 20 - (12 - cancelled)
        assert await ledger_violations() == []


class TestExpiry:
    async def test_unused_vouchers_expire_per_their_policy_exactly_once(self, client, shop):
        merchant, buyer = shop
        refund = await make_item(
            client, merchant, points_price=50, stock=5, per_user_limit=1, voucher_valid_days=2
        )
        forfeit = await make_item(
            client,
            merchant,
            points_price=70,
            stock=5,
            per_user_limit=1,
            voucher_valid_days=2,
            expiry_policy="forfeit",
        )
        later = await make_item(client, merchant, points_price=10, voucher_valid_days=30)
        used = await make_item(client, merchant, points_price=20, voucher_valid_days=2)
        a, b = await order(client, buyer, refund["id"]), await order(client, buyer, forfeit["id"])
        c, d = await order(client, buyer, later["id"]), await order(client, buyer, used["id"])
        assert (await redeem(client, merchant, d["voucher"]["code"])).status_code == 200
        assert await balance(client, buyer) == 250
        moment = datetime.fromisoformat(b["voucher"]["expires_at"])
        await expire(moment)
        assert [await status_of(client, buyer, o["id"]) for o in (a, b, c, d)] == [
            "expired",
            "expired",
            "issued",
            "redeemed",
        ]
        assert await balance(client, buyer) == 300
        got = {o["id"]: o for o in (await client.get("/v1/me/orders", headers=buyer.headers)).json()["items"]}
        assert (got[a["id"]]["refunded_points"], got[b["id"]]["refunded_points"]) == (50, 0)
        assert (
            (await item(client, refund["id"]))["stock"],
            (await item(client, forfeit["id"]))["stock"],
        ) == (5, 5)
        assert (
            await purchased(refund["id"], buyer.user_id),
            await purchased(forfeit["id"], buyer.user_id),
        ) == (0, 1)
        await expire(moment)  # again: nothing more
        assert await balance(client, buyer) == 300
        assert (await entries(buyer.user_id)).count(("refund", 50, 300)) == 1
        assert await ledger_violations() == []

    async def test_the_command_expires_due_vouchers(self, client, shop, run_sync):
        merchant, buyer = shop
        it = await make_item(client, merchant, points_price=40, voucher_valid_days=5)
        o = await order(client, buyer, it["id"])
        async with db.session_scope() as session:  # as if ordered five days ago
            await session.execute(
                sa.text(
                    "UPDATE mall_orders SET voucher_expires_at = now() - interval '1 minute' WHERE id = :i"
                ),
                {"i": uuid.UUID(o["id"])},
            )
        result = await invoke_cli(run_sync, "mall", "expire-vouchers")
        assert result.exit_code == 0, result.output
        assert "expired" in result.output and "refunded" in result.output
        assert await status_of(client, buyer, o["id"]) == "expired"
        assert await balance(client, buyer) == 400


class TestStatement:
    async def test_the_merchants_day(self, client, world, shop):
        merchant, buyer = shop
        it = await make_item(client, merchant, points_price=30, voucher_valid_days=1)
        a, b, c = [await order(client, buyer, it["id"], q) for q in (1, 2, 3)]
        await redeem(client, merchant, a["voucher"]["code"])
        await cancel(client, buyer, b["id"])
        day = clock.today().isoformat()
        r = await client.get("/v1/merchant/statement", params={"day": day}, headers=merchant.headers)
        assert r.status_code == 200, r.text
        s = r.json()
        assert (s["day"], s["merchant_id"], s["timezone"]) == (day, merchant.id, "Asia/Shanghai")
        assert s["ordered"] == {"count": 3, "quantity": 6, "points": 180}
        assert s["redeemed"] == {"count": 1, "quantity": 1, "points": 30}
        assert s["cancelled"] == {"count": 1, "quantity": 2, "points": 60}
        assert s["expired_refunded"] == s["expired_forfeited"] == {"count": 0, "quantity": 0, "points": 0}
        other = await make_merchant(client, world.authority)
        r = await client.get("/v1/merchant/statement", params={"day": day}, headers=other.headers)
        assert r.json()["ordered"] == {"count": 0, "quantity": 0, "points": 0}
        r = await client.get("/v1/merchant/statement", params={"day": "yesterday"}, headers=merchant.headers)
        assert (r.status_code, r.json()["code"]) == (422, "validation_error")
