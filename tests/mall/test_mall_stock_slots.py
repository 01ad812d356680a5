"""Which stock slot an order takes: its random first slot when nobody holds it (one slot read, not all), another
without waiting when somebody does, and any slot of an item with fewer slots than the first; a sold-out item is
refused before the person's points are touched."""

import asyncio
import types
import uuid

import asyncpg
import pytest
import sqlalchemy as sa

from app.core import db, migrate
from app.core.config import get_settings
from app.mall import repository
from tests.factories_mall import item, ledger_violations, make_item, make_merchant, people, place

# other connections hold a slot or an account, and read what the orders committed
pytestmark = pytest.mark.commits

FIRST = 37


def first_slot(monkeypatch, slot: int) -> None:
    """Orders start looking for a free slot at ``slot`` (not a random one)."""
    monkeypatch.setattr(repository, "secrets", types.SimpleNamespace(randbelow=lambda n: slot))


async def slots(item_id: str) -> list[int]:
    """Each slot's units left, in slot order."""
    async with db.session_scope() as session:
        rows = await session.execute(
            sa.text("SELECT remaining FROM mall_item_stock WHERE item_id = :i ORDER BY slot"), {"i": item_id}
        )
        return list(rows.scalars())


async def test_an_order_takes_its_random_first_slot(client, world, monkeypatch):
    merchant = await make_merchant(client, world.authority)
    [buyer] = await people(client, world.operator, world.btype, 1, points=100)
    it = await make_item(client, merchant, points_price=10, stock=640)  # 64 slots of 10 units
    first_slot(monkeypatch, FIRST)
    for _ in range(2):
        assert (await place(client, buyer, it["id"])).status_code == 201
    left = await slots(it["id"])
    assert len(left) == 64
    assert left[FIRST] == 8
    assert left[:FIRST] + left[FIRST + 1 :] == [10] * 63
    assert (await item(client, it["id"]))["stock"] == 638


async def test_a_held_first_slot_is_passed_over_without_waiting(client, world, servers, monkeypatch):
    merchant = await make_merchant(client, world.authority)
    [buyer] = await people(client, world.operator, world.btype, 1, points=100)
    it = await make_item(client, merchant, points_price=10, stock=640)
    first_slot(monkeypatch, FIRST)
    other = await asyncpg.connect(db.plain_url(servers.database_url))
    try:
        async with other.transaction():
            await other.execute(
                "SELECT FROM mall_item_stock WHERE item_id = $1 AND slot = $2 FOR UPDATE",
                uuid.UUID(it["id"]),
                FIRST,
            )
            r = await asyncio.wait_for(place(client, buyer, it["id"]), timeout=10)  # not waiting for the slot
            assert r.status_code == 201, r.text
    finally:
        await other.close()
    left = await slots(it["id"])
    assert left[FIRST] == 10
    assert sorted(left) == [9] + [10] * 63
    # the next in the order from the first slot: the one whose (slot + 37) % 64 is 0
    assert left.index(9) == (64 - FIRST) % 64


async def test_an_item_with_fewer_slots_than_the_first(client, world, monkeypatch):
    merchant = await make_merchant(client, world.authority)
    crowd = await people(client, world.operator, world.btype, 4, points=50)
    it = await make_item(client, merchant, points_price=10, stock=30)  # 3 slots of 10 units
    first_slot(monkeypatch, FIRST)
    answers = await asyncio.gather(*[place(client, p, it["id"], 3) for p in crowd])
    assert [r.status_code for r in answers] == [201] * 4
    assert sum(await slots(it["id"])) == 18
    assert len(await slots(it["id"])) == 3
    assert (await item(client, it["id"]))["stock"] == 18
    assert await ledger_violations() == []


async def test_a_sold_out_item_is_refused_before_the_points_are_touched(client, world, servers):
    merchant = await make_merchant(client, world.authority)
    buyer, other_buyer = await people(client, world.operator, world.btype, 2, points=100)
    it = await make_item(client, merchant, points_price=10, stock=1)
    assert (await place(client, other_buyer, it["id"])).status_code == 201
    other = await asyncpg.connect(db.plain_url(servers.database_url))
    try:
        # the buyer's account held elsewhere: an order spending points would wait
        async with other.transaction():
            await other.execute(
                "SELECT FROM point_accounts WHERE user_id = $1 FOR UPDATE", uuid.UUID(buyer.user_id)
            )
            r = await asyncio.wait_for(place(client, buyer, it["id"]), timeout=10)
    finally:
        await other.close()
    assert (r.status_code, r.json()["code"], r.json()["detail"]) == (409, "out_of_stock", "0 left")
    assert await slots(it["id"]) == [0]


async def test_the_sold_out_check_reads_the_items_slots_by_their_index_with_statistics(client, world):
    """An ``EXISTS`` over the slots was planned, with statistics of a small mall, as a sequential scan of every
    item's slots (a new item's at the end of the table); the check as migration 0027 words it reads one item's slots
    by their primary key, from its first slot, whatever the statistics say."""
    merchant = await make_merchant(client, world.authority)
    it = await make_item(client, merchant, points_price=10, stock=640)
    check = migrate.earlier("0027")
    conn = await asyncpg.connect(db.plain_url(get_settings().database_url))
    try:
        assert check.NEW_CHECK in await conn.fetchval(
            "SELECT pg_get_functiondef('mall_place_order'::regproc)"
        )  # the function asks it as the plan below reads it
        await conn.execute("ANALYZE mall_items, mall_item_stock")
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        await conn.execute(
            f"PREPARE sold_out(uuid) AS SELECT {check.NEW_CHECK} FROM mall_items i WHERE i.id = $1"
        )
        plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN EXECUTE sold_out('{it['id']}')"))
        assert await conn.fetchval(f"EXECUTE sold_out('{it['id']}')") is False
    finally:
        await conn.close()

    assert "Index Scan using pk_mall_item_stock on mall_item_stock" in plan, plan
    assert "Seq Scan on mall_item_stock" not in plan, plan
