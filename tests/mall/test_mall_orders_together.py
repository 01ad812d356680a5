"""Orders that wait at the same time sent together (:class:`app.core.coalesce.Together`,
``repository.place_together``): one statement and one commit for a group, each order's answer, events, audit
entry and stored response what they would have been alone; one person's orders in one group spend in turn; an
Idempotency-Key's second order runs alone at once, not waiting for a group, while one item's orders go together
(one that finds every stock slot of its item held is placed again alone); a group that fails is sent again an
order at a time; and a group takes its people's accounts before any audit chain, so it never waits
for an account while holding a chain another order of that person waits for.

These tests commit: orders are sent together only on the direct path, whose connections are not a test's.
"""

import asyncio
import contextlib
import logging
import uuid

import asyncpg
import httpx
import pytest
import sqlalchemy as sa

from app.core import audit, db
from app.mall import repository as repo
from app.mall import service
from tests.factories import assert_problem, eventually
from tests.factories_mall import (
    balance,
    ledger_violations,
    make_item,
    make_merchant,
    order_created_points,
    people,
    place,
)

pytestmark = pytest.mark.commits

ORDERS = service._ORDERS


@pytest.fixture
def taken(monkeypatch) -> list[list[repo.OrderRequest]]:
    """The groups taken from the orders waiting, as they are taken (before their statement is sent)."""
    groups: list[list[repo.OrderRequest]] = []
    take = ORDERS._take

    def recorded():
        group = take()
        if group:
            groups.append([request for request, _ in group])
        return group

    monkeypatch.setattr(ORDERS, "_take", recorded)
    return groups


@pytest.fixture
def statements(monkeypatch) -> list[int]:
    """The orders of each statement sent (1: an order sent alone)."""
    sizes: list[int] = []
    one, many = ORDERS._one, ORDERS._many

    async def counted_one(conn, request):
        sizes.append(1)
        return await one(conn, request)

    async def counted_many(conn, requests):
        sizes.append(len(requests))
        return await many(conn, requests)

    monkeypatch.setattr(ORDERS, "_one", counted_one)
    monkeypatch.setattr(ORDERS, "_many", counted_many)
    return sizes


@contextlib.asynccontextmanager
async def connections_held():
    """Every connection orders are sent together on taken: orders wait (released at the end)."""
    async with contextlib.AsyncExitStack() as held:
        for _ in range(db.TOGETHER_CONNECTIONS):
            await held.enter_async_context(db.together_connection())
        yield


async def queued_behind_one(client, first: tuple, rest: list[tuple], taken: list, monkeypatch) -> list:
    """``first`` sent and taken alone, then ``rest`` sent and waiting for the next group, one group at a time in
    flight; all answered once the connections are released. Each is (person, item id, quantity)."""
    monkeypatch.setattr(ORDERS, "_in_flight", 1)
    async with connections_held():
        lead = asyncio.create_task(place(client, first[0], first[1]["id"], first[2]))
        await eventually(lambda: len(taken) == 1, "the first order taken", within=10)
        others = [asyncio.create_task(place(client, p, it["id"], q)) for p, it, q in rest]
        await eventually(lambda: len(ORDERS._waiting) == len(rest), "the others waiting", within=10)
    return [await lead, *[await task for task in others]]


async def redeemed(order_id: str) -> list[dict]:
    async with db.session_scope() as session:
        rows = await session.execute(
            sa.text(
                "SELECT data FROM audit_entries WHERE action = 'points.redeemed' AND data->>'ref_id' = :o"
            ),
            {"o": order_id},
        )
        return [r[0] for r in rows]


async def chains_ok() -> bool:
    async with db.session_scope() as session:
        result = await audit.verify(session)
    return result.ok


class TestTogether:
    async def test_orders_waiting_together_are_one_statement_each_its_own_order(
        self, client, world, taken, statements, monkeypatch
    ):
        merchant = await make_merchant(client, world.authority)
        buyers = await people(client, world.operator, world.btype, 7, points=200)
        items = [await make_item(client, merchant, points_price=10 * (n + 1), stock=5) for n in range(7)]
        answers = await queued_behind_one(
            client,
            (buyers[0], items[0], 1),
            [(b, it, 2) for b, it in zip(buyers[1:], items[1:], strict=True)],
            taken,
            monkeypatch,
        )
        assert [r.status_code for r in answers] == [201] * 7, [r.text for r in answers]
        assert statements == [1, 6]  # the first alone, the six that waited for it in one statement
        assert sorted(str(r.user_id) for r in taken[1]) == sorted(b.user_id for b in buyers[1:])
        for n, (buyer, it, r) in enumerate(zip(buyers, items, answers, strict=True)):
            order = r.json()
            quantity = 1 if n == 0 else 2
            points = 10 * (n + 1) * quantity
            assert (order["item_id"], order["quantity"], order["points"], order["status"]) == (
                it["id"],
                quantity,
                points,
                "issued",
            )
            assert await balance(client, buyer) == 200 - points
            read = await client.get(f"/v1/me/orders/{order['id']}", headers=buyer.headers)
            assert read.content == r.content  # the answer the group's statement made, byte for byte
            assert await order_created_points(order["id"]) == {
                it["merchant_id"]: points,
                world.operator.id: points,
            }
            [entry] = await redeemed(order["id"])
            assert (entry["points"], entry["ref_type"]) == (points, "mall_order")
        assert await chains_ok()
        assert await ledger_violations() == []

    async def test_a_replay_of_an_order_placed_in_a_group_is_its_stored_answer(
        self, client, world, taken, monkeypatch
    ):
        merchant = await make_merchant(client, world.authority)
        buyers = await people(client, world.operator, world.btype, 3, points=100)
        items = [await make_item(client, merchant, points_price=30, stock=5) for _ in range(3)]
        monkeypatch.setattr(ORDERS, "_in_flight", 1)
        async with connections_held():
            lead = asyncio.create_task(place(client, buyers[0], items[0]["id"]))
            await eventually(lambda: len(taken) == 1, "the first order taken", within=10)
            keyed = [
                asyncio.create_task(place(client, b, it["id"], key=f"group-{n}"))
                for n, (b, it) in enumerate(zip(buyers[1:], items[1:], strict=True))
            ]
            await eventually(lambda: len(ORDERS._waiting) == 2, "the keyed orders waiting", within=10)
        assert (await lead).status_code == 201
        placed = [await task for task in keyed]
        assert [len(group) for group in taken] == [1, 2]
        for n, (b, it, r) in enumerate(zip(buyers[1:], items[1:], placed, strict=True)):
            assert r.status_code == 201, r.text
            again = await place(client, b, it["id"], key=f"group-{n}")
            assert (again.status_code, again.content, again.headers["idempotent-replayed"]) == (
                201,
                r.content,
                "true",
            )
            assert await balance(client, b) == 70

    async def test_one_persons_orders_in_one_group_spend_in_turn(
        self, client, world, taken, statements, monkeypatch
    ):
        merchant = await make_merchant(client, world.authority)
        lead, buyer = await people(client, world.operator, world.btype, 2, points=100)
        first_item, dear, cheap = [
            await make_item(client, merchant, points_price=p, stock=5) for p in (10, 70, 40)
        ]
        answers = await queued_behind_one(
            client, (lead, first_item, 1), [(buyer, dear, 1), (buyer, cheap, 1)], taken, monkeypatch
        )
        assert statements == [1, 2] and [str(r.user_id) for r in taken[1]] == [buyer.user_id] * 2
        assert answers[0].status_code == 201
        # whichever the group has first is placed and leaves too little for the other (30 or 60 left)
        by_item = {dear["id"]: (answers[1], 70), cheap["id"]: (answers[2], 40)}
        (placed, price), (refused, _) = [by_item[str(r.item_id)] for r in taken[1]]
        assert placed.status_code == 201, placed.text
        assert_problem(refused, 409, "insufficient_points")
        assert await balance(client, buyer) == 100 - price
        assert await ledger_violations() == []

    async def test_an_order_with_the_key_of_one_waiting_runs_alone_at_once_one_items_orders_go_together(
        self, client, world, taken, statements, monkeypatch
    ):
        """A popular item's three orders and one key's two arrive while a group waits: the item's three and the
        key's first wait for the next group, together; the key's second runs alone at once on its request's own
        connection, as it would without groups. In the group the item's two units go to two of its three orders
        (its one stock slot taken twice by one statement), the third is refused as out of stock."""
        merchant = await make_merchant(client, world.authority)
        lead, *crowd = await people(client, world.operator, world.btype, 5, points=100)
        first_item, popular, other = [
            await make_item(client, merchant, points_price=10, stock=s) for s in (5, 2, 5)
        ]
        monkeypatch.setattr(ORDERS, "_in_flight", 1)
        async with connections_held():
            first = asyncio.create_task(place(client, lead, first_item["id"]))
            await eventually(lambda: len(taken) == 1, "the first order taken", within=10)
            rush = [asyncio.create_task(place(client, p, popular["id"])) for p in crowd[:3]]
            await eventually(lambda: len(ORDERS._waiting) == 3, "the item's orders waiting", within=10)
            twice = [
                asyncio.create_task(place(client, crowd[3], other["id"], key="tap-twice")) for _ in range(2)
            ]
            await eventually(lambda: len(ORDERS._waiting) == 4, "the key's first waiting", within=10)
            # answered, not only sent, before the group may run: the key's first order must find its record, not
            # its lock (a key still in flight is 409 idempotency_key_in_use, as it should be)
            await eventually(
                lambda: len(statements) == 1 and sum(t.done() for t in twice) == 1,
                "the key's second placed alone and answered",
                within=10,
            )
        answers = [await first, *[await t for t in rush], *[await t for t in twice]]
        assert [len(group) for group in taken] == [1, 4]
        assert sorted(str(r.item_id) for r in taken[1]) == sorted([popular["id"]] * 3 + [other["id"]])
        assert sorted(statements) == [1, 1, 4]  # the lead, the key's second alone, the group
        codes = [r.status_code if r.status_code == 201 else r.json()["code"] for r in answers[1:4]]
        assert sorted(codes, key=str) == [201, 201, "out_of_stock"]  # two units: exactly the stock sold
        assert sorted([await balance(client, p) for p in crowd[:3]]) == [90, 90, 100]
        placed, second = sorted(answers[4:], key=lambda r: r.headers.get("idempotent-replayed", ""))
        assert placed.status_code == 201 and "idempotent-replayed" not in placed.headers
        if second.status_code == 201:  # the key's first order had committed: its answer, replayed
            assert (second.content, second.headers["idempotent-replayed"]) == (placed.content, "true")
        else:  # still running
            assert_problem(second, 409, "idempotency_key_in_use")
        assert await balance(client, crowd[3]) == 90  # one order for the key
        assert await ledger_violations() == []

    async def test_an_order_whose_items_slots_are_all_held_waits_alone_not_in_its_group(
        self, client, world, servers, taken, statements, monkeypatch
    ):
        """Another transaction holds the only stock slot of an item when a group with an order of it runs: that
        order does not wait in the group (holding the group's locks while it waits would let two groups wait for
        each other); the group places the others and commits, and the order is placed again alone, where it
        waits for the slot and is placed once the slot is free: exactly one unit taken, its points spent once."""
        merchant = await make_merchant(client, world.authority)
        lead, buyer, neighbour = await people(client, world.operator, world.btype, 3, points=100)
        first_item, held_item, other = [
            await make_item(client, merchant, points_price=10, stock=5) for _ in range(3)
        ]
        holder = await asyncpg.connect(db.plain_url(servers.database_url))
        try:
            monkeypatch.setattr(ORDERS, "_in_flight", 1)
            held = holder.transaction()
            async with connections_held():
                lead_order = asyncio.create_task(place(client, lead, first_item["id"]))
                await eventually(lambda: len(taken) == 1, "the first order taken", within=10)
                waiting = asyncio.create_task(place(client, buyer, held_item["id"]))
                placed_first = asyncio.create_task(place(client, neighbour, other["id"]))
                await eventually(lambda: len(ORDERS._waiting) == 2, "the two waiting", within=10)
                await held.start()
                slots = await holder.fetch(
                    "SELECT slot FROM mall_item_stock WHERE item_id = $1 FOR UPDATE",
                    uuid.UUID(held_item["id"]),
                )
                assert len(slots) == 1  # five units: one slot
            assert (await lead_order).status_code == 201
            neighbours = await asyncio.wait_for(placed_first, 10)  # the group did not wait for the slot
            assert neighbours.status_code == 201, neighbours.text
            await asyncio.sleep(0.3)
            assert not waiting.done()  # alone, it waits for the slot
            await held.rollback()
            buyers = await asyncio.wait_for(waiting, 10)
        finally:
            await holder.close()
        assert buyers.status_code == 201, buyers.text
        assert [len(group) for group in taken] == [1, 2]
        assert statements == [1, 2]  # the group was not undone and sent again
        assert [await balance(client, p) for p in (buyer, neighbour)] == [90, 90]
        async with db.session_scope() as session:
            left = await session.scalar(
                sa.text("SELECT sum(remaining) FROM mall_item_stock WHERE item_id = :i"),
                {"i": held_item["id"]},
            )
        assert left == 4
        assert await ledger_violations() == []
        assert await chains_ok()

    async def test_a_crowd_on_one_items_last_units_in_groups_buys_exactly_the_stock(
        self, client, world, taken, caplog
    ):
        """Forty people order one item of 25 units (two stock slots) at once: its orders go in groups together,
        none of which fails and is sent again, and exactly the stock is sold, each buyer's points spent once."""
        merchant = await make_merchant(client, world.authority)
        crowd = await people(client, world.operator, world.btype, 40, points=50)
        it = await make_item(client, merchant, points_price=20, stock=25)
        with caplog.at_level(logging.WARNING, logger="app.core.coalesce"):
            answers = await asyncio.gather(*[place(client, p, it["id"]) for p in crowd])
        codes = [r.status_code if r.status_code == 201 else r.json()["code"] for r in answers]
        assert (codes.count(201), codes.count("out_of_stock")) == (25, 15)
        assert max(len(group) for group in taken) >= 2  # some of the item's orders went together
        assert "failed; each is sent alone" not in caplog.text
        for p, r in zip(crowd, answers, strict=True):
            assert await balance(client, p) == (30 if r.status_code == 201 else 50)
        assert (await client.get(f"/v1/mall/items/{it['id']}")).json()["stock"] == 0
        assert await ledger_violations() == []
        assert await chains_ok()


class TestFailures:
    async def test_a_group_that_fails_is_sent_again_an_order_at_a_time(
        self, app, client, world, taken, statements, monkeypatch, caplog
    ):
        """One order of the group fails (its audit chain has no head, as a fault would): the group's statement
        fails whole, and sent again one by one the others are placed and only that one fails."""
        merchant = await make_merchant(client, world.authority)
        lead, *group = await people(client, world.operator, world.btype, 4, points=100)
        items = [await make_item(client, merchant, points_price=20, stock=5) for _ in range(4)]
        doomed = uuid.UUID(group[1].user_id)
        made = repo.order_request

        def faulty(**args):
            request = made(**args)
            return request._replace(audit_chain=audit.CHAINS + 7) if request.user_id == doomed else request

        monkeypatch.setattr(repo, "order_request", faulty)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as lenient:
            with caplog.at_level(logging.WARNING, logger="app.core.coalesce"):
                answers = await queued_behind_one(
                    lenient,
                    (lead, items[0], 1),
                    [(p, it, 1) for p, it in zip(group, items[1:], strict=True)],
                    taken,
                    monkeypatch,
                )
        assert statements == [1, 3, 1, 1, 1]
        assert "a group of 3 writes failed; each is sent alone" in caplog.text
        assert [r.status_code for r in answers] == [201, 201, 500, 201]
        assert_problem(answers[2], 500, "internal_error")
        assert [await balance(client, p) for p in (lead, *group)] == [80, 80, 100, 80]
        assert await chains_ok()
        assert await ledger_violations() == []

    async def test_a_group_takes_its_accounts_before_any_audit_chain(
        self, client, world, servers, taken, statements, monkeypatch
    ):
        """Another transaction holds the second person's account and then wants the audit chain the two people
        share (as that person's own order, or a credit, would): the group waits for the account holding no chain,
        so the other gets the chain at once, and then both orders are placed. Had the group taken the first
        person's chain before the second's account, the two would wait for each other: a deadlock."""
        merchant = await make_merchant(client, world.authority)
        crowd = await people(
            client, world.operator, world.btype, 18, points=100
        )  # 17 > 16 chains: two share one
        by_chain: dict[int, list] = {}
        for p in crowd[1:]:
            by_chain.setdefault(audit._chain_of("user", p.user_id), []).append(p)
        chain, pair = next((c, ps[:2]) for c, ps in by_chain.items() if len(ps) >= 2)
        first, second = sorted(pair, key=lambda p: uuid.UUID(p.user_id))
        items = [await make_item(client, merchant, points_price=20, stock=5) for _ in range(3)]
        other = await asyncpg.connect(db.plain_url(servers.database_url))
        try:
            monkeypatch.setattr(ORDERS, "_in_flight", 1)
            async with contextlib.AsyncExitStack() as stack:
                await stack.enter_async_context(connections_held())
                lead = asyncio.create_task(place(client, crowd[0], items[0]["id"]))
                await eventually(lambda: len(taken) == 1, "the first order taken", within=10)
                pair_orders = [
                    asyncio.create_task(place(client, p, it["id"]))
                    for p, it in zip((first, second), items[1:], strict=True)
                ]
                await eventually(lambda: len(ORDERS._waiting) == 2, "the pair waiting", within=10)
                held = other.transaction()
                await held.start()
                await other.execute(
                    "SELECT FROM point_accounts WHERE user_id = $1 FOR UPDATE", uuid.UUID(second.user_id)
                )
            assert (await lead).status_code == 201
            for _ in range(500):  # the group's statement waits for the held account
                await other.execute("SELECT pg_stat_clear_snapshot()")  # read anew, not this transaction's
                waiting = await other.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE 'WITH held AS MATERIALIZED%'"  # the group's (its text kept cut short)
                )
                if waiting:
                    break
                await asyncio.sleep(0.01)
            assert waiting == 1
            await other.execute("SET LOCAL lock_timeout = '2s'")
            await other.execute("SELECT FROM audit_chain_heads WHERE chain = $1 FOR UPDATE", chain)  # at once
            await held.commit()
            answers = [await task for task in pair_orders]
        finally:
            await other.close()
        assert [r.status_code for r in answers] == [201, 201]
        assert [len(group) for group in taken] == [1, 2]
        assert statements == [1, 2]  # the group was not undone by a deadlock and sent again
        assert [await balance(client, p) for p in (first, second)] == [80, 80]
        assert await chains_ok()
