"""Concurrent orders over HTTP: never oversold, never overspent, never over a per-person limit."""

import asyncio
import uuid

import sqlalchemy as sa

from app.core import db
from tests.factories_mall import balance, item, ledger_violations, make_item, make_merchant, people, place


async def sold(item_id: str) -> tuple[int, int]:
    """(orders, units) the database holds for the item."""
    async with db.session_scope() as session:
        row = (
            await session.execute(
                sa.text("SELECT count(*), coalesce(sum(quantity), 0) FROM mall_orders WHERE item_id = :i"),
                {"i": uuid.UUID(item_id)},
            )
        ).one()
    return row[0], row[1]


class TestHotItem:
    async def test_200_concurrent_orders_on_50_units(self, client, world):
        merchant = await make_merchant(client, world.authority)
        crowd = await people(client, world.operator, world.btype, 100, points=100)
        it = await make_item(client, merchant, points_price=30, stock=50)
        attempts = [p for p in crowd for _ in range(2)]  # two orders each, all at once
        responses = await asyncio.gather(*[place(client, p, it["id"]) for p in attempts])
        codes = [r.status_code if r.status_code == 201 else r.json()["code"] for r in responses]
        assert codes.count(201) == 50
        assert codes.count("out_of_stock") == 150
        assert (await item(client, it["id"]))["stock"] == 0
        assert await sold(it["id"]) == (50, 50)
        won: dict[str, int] = {}
        for p, r in zip(attempts, responses, strict=True):
            won[p.user_id] = won.get(p.user_id, 0) + (r.status_code == 201)
        for p in crowd:
            assert await balance(client, p) == 100 - 30 * won[p.user_id]
        assert await ledger_violations() == []

    async def test_orders_of_several_units_never_oversell(self, client, world):
        merchant = await make_merchant(client, world.authority)
        crowd = await people(client, world.operator, world.btype, 40, points=50)
        it = await make_item(client, merchant, points_price=10, stock=50)  # 5 slots of 10 units
        responses = await asyncio.gather(*[place(client, p, it["id"], 3) for p in crowd])
        codes = [r.status_code if r.status_code == 201 else r.json()["code"] for r in responses]
        assert codes.count(201) == 16  # 48 units; the 2 left cannot make an order of 3
        assert codes.count("out_of_stock") == 24
        assert (await item(client, it["id"]))["stock"] == 2
        assert await sold(it["id"]) == (16, 48)
        assert await ledger_violations() == []


class TestOnePerson:
    async def test_concurrent_orders_never_overspend(self, client, world):
        merchant = await make_merchant(client, world.authority)
        [buyer] = await people(client, world.operator, world.btype, 1, points=100)
        it = await make_item(client, merchant, points_price=30, stock=None)
        responses = await asyncio.gather(*[place(client, buyer, it["id"]) for _ in range(10)])
        codes = [r.status_code if r.status_code == 201 else r.json()["code"] for r in responses]
        assert (codes.count(201), codes.count("insufficient_points")) == (3, 7)
        assert await balance(client, buyer) == 10
        assert await ledger_violations() == []

    async def test_concurrent_orders_never_exceed_the_per_person_limit(self, client, world):
        merchant = await make_merchant(client, world.authority)
        [buyer] = await people(client, world.operator, world.btype, 1, points=400)
        for stock in (None, 100):
            it = await make_item(client, merchant, points_price=10, stock=stock, per_user_limit=3)
            responses = await asyncio.gather(*[place(client, buyer, it["id"]) for _ in range(10)])
            codes = [r.status_code if r.status_code == 201 else r.json()["code"] for r in responses]
            assert (codes.count(201), codes.count("per_user_limit_exceeded")) == (3, 7)
            assert await sold(it["id"]) == (3, 3)
        assert await balance(client, buyer) == 400 - 60
        assert await ledger_violations() == []
