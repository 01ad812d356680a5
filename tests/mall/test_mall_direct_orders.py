"""Orders on the direct write path (:class:`app.core.routing.DirectWriteRoute`): a plain pooled asyncpg
transaction, the caller resolved without FastAPI's dependency solving; the same answers, refusals,
audit entries and idempotency as every other write.

These tests commit: the direct path's connection is not a test's rolled-back one.
"""

import asyncio
import contextlib
import uuid
from typing import Annotated

import pytest
import sqlalchemy as sa
from fastapi import Body, FastAPI, Header, status
from fastapi.responses import Response
from pydantic import ValidationError

from app.auth import keys
from app.auth.dependencies import Session
from app.core import audit, db
from app.core.config import Settings, get_settings
from app.core.models import AuditEntry
from app.core.routing import DirectWriteRoute
from app.mall.router import Buyer
from app.mall.schemas import OrderCreate
from tests.factories import assert_problem, bearer
from tests.factories_mall import (
    balance,
    entries,
    item,
    ledger_violations,
    make_item,
    make_merchant,
    order_created_points,
    people,
    place,
    purchased,
)

pytestmark = pytest.mark.commits


@pytest.fixture
def acquired(monkeypatch) -> list[int]:
    """Counts the direct pool's connections taken (one per request on the direct path)."""
    taken: list[int] = []
    acquire = db.direct_connection

    def counted():
        taken.append(1)
        return acquire()

    monkeypatch.setattr(db, "direct_connection", counted)
    return taken


async def orders_of(user_id: str) -> list[tuple]:
    async with db.session_scope() as session:
        rows = await session.execute(
            sa.text(
                "SELECT item_id, quantity, points FROM mall_orders WHERE user_id = :u ORDER BY created_at"
            ),
            {"u": uuid.UUID(user_id)},
        )
        return [tuple(r) for r in rows]


async def redeemed_audit(user_id: str) -> list[dict]:
    async with db.session_scope() as session:
        rows = await session.execute(
            sa.select(AuditEntry.data).where(
                AuditEntry.action == "points.redeemed", AuditEntry.subject_id == user_id
            )
        )
        return [r[0] for r in rows]


async def a_buyer_and_an_item(client, world, *, points: int, price: int, stock: int | None):
    """A person with ``points`` and a new merchant's item at ``price`` with ``stock`` units."""
    merchant = await make_merchant(client, world.authority)
    [buyer] = await people(client, world.operator, world.btype, 1, points=points)
    return buyer, await make_item(client, merchant, points_price=price, stock=stock)


class TestPlaced:
    async def test_an_order_is_placed_on_the_direct_path_with_its_audit_entry(self, client, world, acquired):
        buyer, it = await a_buyer_and_an_item(client, world, points=100, price=30, stock=5)
        acquired.clear()
        r = await place(client, buyer, it["id"], 2)
        assert r.status_code == 201, r.text
        # no connection of the direct pool: the caller, new to the process, checked by the order's statement,
        # sent on the pool of orders sent together
        assert acquired == []
        order = r.json()
        assert (order["item_id"], order["quantity"], order["points"], order["status"]) == (
            it["id"],
            2,
            60,
            "issued",
        )
        assert await orders_of(buyer.user_id) == [(uuid.UUID(it["id"]), 2, 60)]
        assert await balance(client, buyer) == 40
        [audited] = await redeemed_audit(buyer.user_id)
        assert (audited["points"], audited["ref_type"], audited["ref_id"]) == (60, "mall_order", order["id"])
        told = await order_created_points(order["id"])
        assert told == {it["merchant_id"]: 60, world.operator.id: 60}  # order.created, by the same call
        assert await ledger_violations() == []

    async def test_the_order_request_is_one_statement_without_begin_or_commit(
        self, client, world, sent, deaf
    ):
        """The Idempotency-Key, the order, its events, its audit entry and its stored answer: one statement,
        its own transaction (one round trip); its replay the same one statement."""
        buyer, it = await a_buyer_and_an_item(client, world, points=100, price=30, stock=5)
        await balance(client, buyer)  # the caller's standing read and kept: the order reads none
        sent.clear()

        def ours() -> list[str]:  # asyncpg's own look-ups of a type (once per connection) aside
            found = [statement.query for statement in sent]
            sent.clear()
            return found

        r = await place(client, buyer, it["id"], key="one-call")
        assert r.status_code == 201, r.text
        assert [q.split("(")[0] for q in ours()] == ["SELECT * FROM mall_order_request"]
        again = await place(client, buyer, it["id"], key="one-call")
        assert again.content == r.content and again.headers["idempotent-replayed"] == "true"
        assert [q.split("(")[0] for q in ours()] == ["SELECT * FROM mall_order_request"]
        assert len(await orders_of(buyer.user_id)) == 1
        [audited] = await redeemed_audit(buyer.user_id)
        assert audited == {
            "points": 30,
            "ref_type": "mall_order",
            "ref_id": r.json()["id"],
            "entry_id": audited["entry_id"],
        }
        async with db.session_scope() as session:
            spent = await session.scalar(
                sa.text("SELECT spend_entry_id FROM mall_orders WHERE id = :o"),
                {"o": uuid.UUID(r.json()["id"])},
            )
            chains = await audit.verify(session)
        assert audited["entry_id"] == spent and chains.ok, chains.broken
        assert await ledger_violations() == []
        # the answer the statement made is the order as it is read back, byte for byte
        read = await client.get(f"/v1/me/orders/{r.json()['id']}", headers=buyer.headers)
        assert read.status_code == 200 and read.content == r.content

    async def test_an_order_that_rereads_the_signing_keys_stays_off_the_orm(self, client, world, monkeypatch):
        """Every minute a process re-reads the platform's keys from whatever request comes along: on a direct
        write that read runs on the direct connection, so the order goes through."""
        buyer, it = await a_buyer_and_an_item(client, world, points=100, price=30, stock=5)
        monkeypatch.setattr(keys, "_loaded_at", 0.0)  # a minute and more ago
        r = await place(client, buyer, it["id"])
        assert r.status_code == 201, r.text
        assert keys._loaded_at > 0.0
        assert await balance(client, buyer) == 70

    async def test_a_retry_with_the_same_key_is_the_same_order(self, client, world):
        buyer, it = await a_buyer_and_an_item(client, world, points=100, price=30, stock=5)
        first = await place(client, buyer, it["id"], key="lunch-1")
        again = await place(client, buyer, it["id"], key="lunch-1")
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"
        assert len(await orders_of(buyer.user_id)) == 1
        assert await balance(client, buyer) == 70

    async def test_the_same_key_at_once_places_one_order(self, client, world):
        buyer, it = await a_buyer_and_an_item(client, world, points=100, price=10, stock=None)
        answers = await asyncio.gather(*[place(client, buyer, it["id"], key="tap-twice") for _ in range(8)])
        placed = [r for r in answers if r.status_code == 201]
        assert placed and all(r.content == placed[0].content for r in placed)
        assert {r.json()["code"] for r in answers if r.status_code != 201} <= {"idempotency_key_in_use"}
        assert len(await orders_of(buyer.user_id)) == 1
        assert await balance(client, buyer) == 90
        r = await client.post(
            "/v1/me/orders",
            json={"item_id": it["id"], "quantity": 2},
            headers={**buyer.headers, "Idempotency-Key": "tap-twice"},
        )
        assert_problem(r, 422, "idempotency_key_reused")

    async def test_concurrent_orders_on_the_last_units_sell_exactly_the_stock(self, client, world):
        merchant = await make_merchant(client, world.authority)
        crowd = await people(client, world.operator, world.btype, 30, points=50)
        it = await make_item(client, merchant, points_price=20, stock=10)
        answers = await asyncio.gather(*[place(client, p, it["id"]) for p in crowd])
        codes = [r.status_code if r.status_code == 201 else r.json()["code"] for r in answers]
        assert (codes.count(201), codes.count("out_of_stock")) == (10, 20)
        for p, r in zip(crowd, answers, strict=True):
            assert await balance(client, p) == (30 if r.status_code == 201 else 50)
        assert await ledger_violations() == []


class TestRefused:
    async def test_a_refusal_changes_nothing(self, client, world, acquired):
        buyer, it = await a_buyer_and_an_item(client, world, points=50, price=60, stock=5)
        acquired.clear()
        assert_problem(await place(client, buyer, it["id"]), 409, "insufficient_points")
        assert acquired == []
        assert await orders_of(buyer.user_id) == []
        assert await redeemed_audit(buyer.user_id) == []
        assert await balance(client, buyer) == 50
        assert (await client.get(f"/v1/mall/items/{it['id']}")).json()["stock"] == 5

    async def test_a_refusal_after_the_points_were_spent_is_undone_by_the_statement(self, client, world):
        """Over the per-person limit is found after the points were spent and the stock taken: with no
        transaction of the request's around it, the statement itself undoes them."""
        merchant = await make_merchant(client, world.authority)
        [buyer] = await people(client, world.operator, world.btype, 1, points=100)
        it = await make_item(client, merchant, points_price=30, stock=5, per_user_limit=1)
        first = await place(client, buyer, it["id"])
        assert first.status_code == 201, first.text
        before = (await entries(buyer.user_id), await purchased(it["id"], buyer.user_id))
        assert_problem(await place(client, buyer, it["id"]), 409, "per_user_limit_exceeded")
        assert (await entries(buyer.user_id), await purchased(it["id"], buyer.user_id)) == before
        assert await orders_of(buyer.user_id) == [(uuid.UUID(it["id"]), 1, 30)]
        assert len(await redeemed_audit(buyer.user_id)) == 1
        assert (await balance(client, buyer), (await item(client, it["id"]))["stock"]) == (70, 4)
        async with db.session_scope() as session:
            events = await session.scalar(
                sa.text("SELECT count(*) FROM webhook_events WHERE type = 'order.created' AND org_id = :m"),
                {"m": uuid.UUID(merchant.id)},
            )
        assert events == 1 and await ledger_violations() == []

    async def test_callers_are_refused_as_on_every_route(self, client, world):
        merchant = await make_merchant(client, world.authority)
        it = await make_item(client, merchant, points_price=30, stock=5)
        body = {"item_id": it["id"], "quantity": 1}
        key = {"Idempotency-Key": "k-1"}
        assert_problem(await client.post("/v1/me/orders", json=body, headers=key), 401, "not_authenticated")
        r = await client.post("/v1/me/orders", json=body, headers={**bearer("not-a-jwt"), **key})
        assert_problem(r, 401, "invalid_token")
        assert_problem(
            await client.post("/v1/me/orders", json=body, headers=merchant.headers), 403, "forbidden_role"
        )
        [buyer] = await people(client, world.operator, world.btype, 1)
        r = await client.post("/v1/me/orders", json=body, headers=buyer.headers)
        assert_problem(r, 400, "idempotency_key_required")

    async def test_a_refused_caller_takes_no_connection(self, client, world, acquired):
        """The connection is taken by the first statement, after the caller and the body are checked."""
        merchant = await make_merchant(client, world.authority)
        it = await make_item(client, merchant, points_price=30, stock=5)
        body = {"item_id": it["id"], "quantity": 1}
        key = {"Idempotency-Key": "k-2"}
        acquired.clear()
        r = await client.post("/v1/me/orders", json=body, headers={**bearer("not-a-jwt"), **key})
        assert_problem(r, 401, "invalid_token")
        assert_problem(await client.post("/v1/me/orders", json=body, headers=key), 401, "not_authenticated")
        assert acquired == []

    async def test_bodies_the_model_refuses_get_fastapis_own_answers(self, client, world, acquired):
        [buyer] = await people(client, world.operator, world.btype, 1, points=100)
        headers = {**buyer.headers, "Idempotency-Key": "odd-body"}
        acquired.clear()
        r = await client.post(
            "/v1/me/orders", content=b'{"item_id": ', headers={**headers, "content-type": "application/json"}
        )
        assert_problem(r, 400, "malformed_json")
        r = await client.post("/v1/me/orders", json={"item_id": "not-a-uuid", "quantity": 1}, headers=headers)
        body = assert_problem(r, 422, "validation_error")
        assert [e["loc"] for e in body["errors"]] == [["body", "item_id"]]
        r = await client.post(
            "/v1/me/orders", json={"item_id": str(uuid.uuid4()), "quantity": "two"}, headers=headers
        )
        assert [e["loc"] for e in assert_problem(r, 422, "validation_error")["errors"]] == [
            ["body", "quantity"]
        ]
        assert acquired == []  # none of them reached the direct path
        assert await orders_of(buyer.user_id) == []


class TestDeclaration:
    """What a direct write cannot do is refused when it is declared, or when it is done."""

    def _declare(self, endpoint, method: str = "post", path: str = "/x") -> FastAPI:
        app = FastAPI()
        app.router.route_class = DirectWriteRoute
        getattr(app, method)(path, status_code=201)(endpoint)
        return app

    def test_a_get_a_path_parameter_a_header_and_two_bodies_are_refused(self):
        async def plain(session: Session, user: Buyer, data: OrderCreate) -> Response:
            return Response()

        with pytest.raises(TypeError, match="a POST"):
            self._declare(plain, method="get")

        async def with_path(session: Session, user: Buyer, data: OrderCreate, n: int) -> Response:
            return Response()

        with pytest.raises(TypeError, match="without path or query"):
            self._declare(with_path, path="/x/{n}")

        async def with_header(session: Session, data: OrderCreate, x_n: Annotated[str, Header()]) -> Response:
            return Response()

        with pytest.raises(TypeError, match="one JSON body"):
            self._declare(with_header)

        async def two_bodies(session: Session, a: OrderCreate, b: OrderCreate) -> Response:
            return Response()

        with pytest.raises(TypeError, match="one JSON body"):
            self._declare(two_bodies)

        async def embedded(session: Session, data: Annotated[OrderCreate, Body(embed=True)]) -> Response:
            return Response()

        with pytest.raises(TypeError, match="embedded"):
            self._declare(embedded)

    async def test_an_endpoint_using_the_orm_is_rolled_back(self, app, client):
        async def sneaky(session: Session, data: OrderCreate) -> Response:
            await session.execute(sa.text("CREATE TABLE direct_write_sneaky (n int)"))
            return Response(status_code=status.HTTP_201_CREATED)

        async def no_answer(session: Session, data: OrderCreate) -> dict:
            return {}

        sneaky_app = self._declare(sneaky)
        sneaky_app.post("/y", status_code=201)(no_answer)
        import httpx

        transport = httpx.ASGITransport(app=sneaky_app, raise_app_exceptions=True)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            body = {"item_id": str(uuid.uuid4()), "quantity": 1}
            with pytest.raises(RuntimeError, match="used the ORM session"):
                await c.post("/x", json=body)
            with pytest.raises(TypeError, match="answers a Response"):
                await c.post("/y", json=body)
        async with db.session_scope() as session:
            found = await session.execute(sa.text("SELECT to_regclass('direct_write_sneaky') IS NULL"))
            assert found.scalar_one() is True

    async def test_the_transaction_begins_with_the_first_statement_that_needs_one(self, app, client, sent):
        """A read before any write runs on its own; the first raw statement begins the transaction, which a
        refusal rolls back and a success commits; statements after it run inside it."""
        from app.mall.exceptions import InvalidQuantity

        name = f"direct_probe_{uuid.uuid4().hex[:12]}"

        async def writes(session: Session, data: OrderCreate) -> Response:
            await (await db.statement_connection(session)).fetchval("SELECT 1")
            conn = await db.raw_connection(session)
            await conn.execute(f"CREATE TABLE IF NOT EXISTS {name} (n int)")
            await conn.execute(f"INSERT INTO {name} VALUES ({data.quantity})")
            assert await db.statement_connection(session) is conn  # inside the transaction now
            if data.quantity == 2:
                raise InvalidQuantity()
            return Response(status_code=status.HTTP_201_CREATED)

        import httpx

        transport = httpx.ASGITransport(app=self._declare(writes))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            with pytest.raises(InvalidQuantity):  # the bare app has no handler: the refusal, rolled back
                await c.post("/x", json={"item_id": str(uuid.uuid4()), "quantity": 2})
            kept = [s.query.split(" (")[0].split(" VALUES")[0].rstrip(";") for s in sent]
            sent.clear()
            placed = await c.post("/x", json={"item_id": str(uuid.uuid4()), "quantity": 1})
        assert placed.status_code == 201
        create, insert = f"CREATE TABLE IF NOT EXISTS {name}", f"INSERT INTO {name}"
        assert kept == ["SELECT 1", "BEGIN", create, insert, "ROLLBACK"]
        assert [s.query.split(" (")[0].split(" VALUES")[0].rstrip(";") for s in sent] == [
            "SELECT 1",
            "BEGIN",
            create,
            insert,
            "COMMIT",
        ]
        async with db.session_scope() as session:
            rows = (await session.execute(sa.text(f"SELECT n FROM {name}"))).scalars().all()
            await session.execute(sa.text(f"DROP TABLE {name}"))
            await session.commit()
        assert rows == [1]

    async def test_a_deferred_key_no_statement_took_fails_the_request(self, app, client, world):
        """A route whose caller defers the Idempotency-Key to its statement must take it: one that does not is
        a mistake, refused before anything is committed."""
        buyer, it = await a_buyer_and_an_item(client, world, points=100, price=30, stock=5)

        async def forgetful(session: Session, user: Buyer, data: OrderCreate) -> Response:
            return Response(status_code=status.HTTP_201_CREATED)

        import httpx

        transport = httpx.ASGITransport(app=self._declare(forgetful), raise_app_exceptions=True)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            with pytest.raises(RuntimeError, match="never checked its deferred Idempotency-Key"):
                await c.post(
                    "/x",
                    json={"item_id": it["id"], "quantity": 1},
                    headers={**buyer.headers, "Idempotency-Key": "forgotten"},
                )
        async with db.session_scope() as session:
            stored = await session.execute(
                sa.text("SELECT count(*) FROM idempotency_records WHERE key = 'forgotten'")
            )
            assert stored.scalar_one() == 0


class TestDirectPool:
    """The direct pool is small (``CARBON_DB_DIRECT_POOL_SIZE``): requests wait for its connections, and a
    request that waits too long is answered 503 with nothing done."""

    def test_the_size_is_a_setting_of_at_least_one(self, monkeypatch):
        monkeypatch.setenv("CARBON_DB_DIRECT_POOL_SIZE", "6")
        assert Settings().db_direct_pool_size == 6
        monkeypatch.setenv("CARBON_DB_DIRECT_POOL_SIZE", "0")
        with pytest.raises(ValidationError, match="db_direct_pool_size"):
            Settings()
        monkeypatch.delenv("CARBON_DB_DIRECT_POOL_SIZE")
        assert Settings().db_direct_pool_size == db.DIRECT_POOL_SIZE

    async def test_more_orders_at_once_than_connections_all_complete(self, client, world):
        size = get_settings().db_direct_pool_size
        merchant = await make_merchant(client, world.authority)
        buyers = await people(client, world.operator, world.btype, 6 * size, points=100)
        it = await make_item(client, merchant, points_price=10, stock=None)
        answers = await asyncio.gather(*(place(client, b, it["id"]) for b in buyers))
        assert [r.status_code for r in answers] == [201] * len(buyers)
        assert {await balance(client, b) for b in buyers} == {90}
        assert await ledger_violations() == []

    async def test_a_request_that_gets_no_connection_in_time_is_503_with_nothing_done(
        self, client, world, monkeypatch
    ):
        """An order waits for a connection of the pool orders are sent together on (it needs none of the direct
        pool once its caller's standing is known)."""
        buyer, it = await a_buyer_and_an_item(client, world, points=100, price=30, stock=5)
        await balance(
            client, buyer
        )  # the caller's standing read and kept: the order's statement is its first
        monkeypatch.setattr(db, "ACQUIRE_TIMEOUT_SECONDS", 0.2)
        async with contextlib.AsyncExitStack() as held:
            with pytest.raises(db.DirectPoolTimeout):
                while True:  # every connection of the pool taken
                    await held.enter_async_context(db.together_connection())
            assert len(held._exit_callbacks) == db.TOGETHER_CONNECTIONS
            r = await place(client, buyer, it["id"], key="waited")
            assert_problem(r, 503, "database_unavailable")
            assert r.headers["Retry-After"] == "1"
        assert await orders_of(buyer.user_id) == []
        assert (await balance(client, buyer), (await item(client, it["id"]))["stock"]) == (100, 5)
        again = await place(client, buyer, it["id"], key="waited")  # the key was not taken: a retry places it
        assert again.status_code == 201, again.text
        assert (await balance(client, buyer), (await item(client, it["id"]))["stock"]) == (70, 4)

    async def test_an_order_whose_caller_is_known_needs_no_direct_connection(
        self, client, world, monkeypatch, deaf
    ):
        buyer, it = await a_buyer_and_an_item(client, world, points=100, price=30, stock=5)
        await balance(client, buyer)
        monkeypatch.setattr(db, "ACQUIRE_TIMEOUT_SECONDS", 0.2)
        async with contextlib.AsyncExitStack() as held:
            with pytest.raises(db.DirectPoolTimeout):
                while True:
                    await held.enter_async_context(db.direct_connection())
            r = await place(client, buyer, it["id"])
            assert r.status_code == 201, r.text
        assert (await balance(client, buyer), (await item(client, it["id"]))["stock"]) == (70, 4)
