"""The caller's standing checked by the order's own statement (migration 0025, :func:`app.core.callers.defer`).

A person whose standing this process does not know orders in one statement: ``mall_order_request`` checks the
person, their operator, the entrustment and the token's refresh family first (``user_caller_may_act``). Refused,
it has done nothing (not even looked at the Idempotency-Key), and the route reads the standing as every route does
to answer why; found good, the process keeps it as a read would have. Through FastAPI (a body the direct path does
not take) the standing is read first, as before.
"""

import asyncio
import uuid

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI, status
from fastapi.responses import Response

from app.auth.dependencies import Session
from app.core import callers, db, idempotency
from app.core.routing import DirectWriteRoute
from app.mall.router import Buyer
from app.mall.schemas import OrderCreate
from tests.factories import (
    assert_problem,
    bearer,
    committed,
    family_token,
    kinds,
    make_operator,
    revoke_family,
    suspended_until_read,
    unique,
)
from tests.factories_mall import Person, item, ledger_violations, make_item, make_merchant, people, place

pytestmark = pytest.mark.commits  # the direct path: its own connections, commits for real


async def someone(client, world, points: int = 100) -> tuple[Person, dict]:
    """A person of an operator of their own (the test may suspend it) with ``points``, and an item of 5 units at
    30 points."""
    op = await make_operator(client, world.authority)
    [person] = await people(client, op, world.btype, 1, points=points)
    merchant = await make_merchant(client, world.authority)
    return person, await make_item(client, merchant, points_price=30, stock=5)


class TestOneStatement:
    async def test_an_unknown_callers_order_is_one_statement_and_its_standing_is_kept(
        self, client, world, sent, deaf
    ):
        person, it = await someone(client, world)
        callers.standing_changed()  # nothing this process knows of anyone's standing is trusted
        sent.clear()
        r = await place(client, person, it["id"])
        assert r.status_code == 201, r.text
        assert kinds(sent) == ["order, checking the caller"]
        again = await place(client, person, it["id"])  # kept: the next order checks nothing
        assert again.status_code == 201, again.text
        assert kinds(sent) == ["order"]
        assert (await client.get("/v1/me/account", headers=person.headers)).json()["balance"] == 40
        assert kinds(sent) == ["balance"]  # the standing the order found good, kept: the read checks nothing
        assert (await item(client, it["id"]))["stock"] == 3
        assert await ledger_violations() == []


class TestRefused:
    """Each refusal the order's statement makes: nothing done, the key left free, and the answer every route gives."""

    async def _refused(self, client, person: Person, it: dict, sent, code: tuple[int, str]) -> str:
        callers.standing_changed()  # the change may not have been heard yet: the standing is not known
        key = unique("refused")
        sent.clear()
        r = await place(client, person, it["id"], key=key)
        assert_problem(r, *code)
        assert kinds(sent)[:2] == ["order, checking the caller", "standing read"]
        async with db.session_scope() as session:
            row = (
                await session.execute(
                    sa.text(
                        "SELECT (SELECT count(*) FROM mall_orders WHERE user_id = :u),"
                        " (SELECT balance FROM point_accounts WHERE user_id = :u),"
                        " (SELECT count(*) FROM idempotency_records WHERE key = :k),"
                        " (SELECT count(*) FROM audit_entries WHERE action = 'points.redeemed' AND subject_id = :s)"
                    ),
                    {"u": uuid.UUID(person.user_id), "k": key, "s": person.user_id},
                )
            ).one()
        assert tuple(row) == (0, 100, 0, 0)
        assert (await item(client, it["id"]))["stock"] == 5
        return key

    async def test_a_suspended_operator(self, client, world, sent, deaf):
        person, it = await someone(client, world)
        op = person.operator
        r = await client.post(f"/v1/organizations/{op.id}/suspend", headers=bearer(world.authority))
        assert r.status_code == 200, r.text
        key = await self._refused(client, person, it, sent, (403, "organization_not_active"))
        r = await client.post(f"/v1/organizations/{op.id}/reinstate", headers=bearer(world.authority))
        assert r.status_code == 200, r.text
        again = await place(client, person, it["id"], key=key)  # the key was never taken
        assert again.status_code == 201, again.text
        assert (await item(client, it["id"]))["stock"] == 4

    async def test_a_withdrawn_entrustment(self, client, world, sent, deaf):
        person, it = await someone(client, world)
        r = await client.delete(f"/v1/operator/users/{person.ext}", headers=person.operator.headers)
        assert r.status_code == 200, r.text
        await self._refused(client, person, it, sent, (401, "entrustment_withdrawn"))

    async def test_a_deleted_person(self, client, world, sent, deaf):
        person, it = await someone(client, world)
        async with committed() as session:
            await session.execute(
                sa.text("UPDATE users SET deleted_at = now() WHERE id = :u"), {"u": uuid.UUID(person.user_id)}
            )
        await self._refused(client, person, it, sent, (401, "invalid_token"))

    async def test_a_revoked_refresh_family(self, client, world, sent, deaf):
        """A token of the authorization code flow names its refresh family: revoked, the token stops."""
        person, it = await someone(client, world)
        op, family = person.operator, uuid.uuid4()
        token = family_token(uuid.UUID(person.user_id), uuid.UUID(op.id), family, "mall account:read")
        flowed = Person(person.ext, person.user_id, bearer(token), op)
        callers.standing_changed()
        sent.clear()
        first = await place(client, flowed, it["id"])  # a family nothing revoked
        assert first.status_code == 201, first.text
        assert kinds(sent) == ["order, checking the caller"]
        await revoke_family(uuid.UUID(person.user_id), uuid.UUID(op.id), family)
        callers.standing_changed()
        key = unique("revoked")
        r = await place(client, flowed, it["id"], key=key)
        assert_problem(r, 401, "token_revoked")
        assert kinds(sent) == ["order, checking the caller", "standing read", "family read"]
        assert (await item(client, it["id"]))["stock"] == 4  # the first order's unit only
        async with db.session_scope() as session:
            stored = await session.scalar(
                sa.text("SELECT count(*) FROM idempotency_records WHERE key = :k"), {"k": key}
            )
        assert stored == 0
        # the same person's token from the operator, no family: still good
        assert (await place(client, person, it["id"])).status_code == 201

    async def test_good_again_when_read_the_order_is_placed(self, client, world, sent, deaf, monkeypatch):
        """Reinstated between the statement's check and the route's read: the read finds the caller good, and
        the order is placed, by a statement that no longer checks."""
        person, it = await someone(client, world)
        await suspended_until_read(monkeypatch, uuid.UUID(person.operator.id))
        callers.standing_changed()
        sent.clear()
        r = await place(client, person, it["id"])
        assert r.status_code == 201, r.text
        assert kinds(sent) == ["order, checking the caller", "standing read", "order"]
        assert (await item(client, it["id"]))["stock"] == 4


class TestTheStatementsCheck:
    async def test_user_caller_may_act_is_planned_once_a_connection(self, client):
        """PL/pgSQL keeps its statement's plan for the connection; a SQL function with sub-selects (migration 0025's)
        is planned again in every transaction that calls it: in every order of a caller the process did not know."""
        async with db.session_scope() as session:
            language = await session.scalar(
                sa.text(
                    "SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang"
                    " WHERE p.proname = 'user_caller_may_act'"
                )
            )
        assert language == "plpgsql"

    async def test_user_caller_may_act(self, client, world):
        """``user_caller_may_act`` says what the standing's read and the family's say, as true or false."""
        person, _ = await someone(client, world)
        op, user, family = uuid.UUID(person.operator.id), uuid.UUID(person.user_id), uuid.uuid4()
        other = await make_operator(client, world.authority)

        async def may(user_id=user, operator_id=op, fam=None) -> bool:
            async with db.session_scope() as session:
                return await session.scalar(
                    sa.text("SELECT user_caller_may_act(:u, :o, :f)"),
                    {"u": user_id, "o": operator_id, "f": fam},
                )

        assert await may() is True
        assert await may(fam=family) is True  # a family with no revoked token
        assert await may(operator_id=uuid.UUID(other.id)) is False  # no entrustment of that operator
        assert await may(user_id=uuid.uuid4()) is False
        assert await may(operator_id=None) is False
        async with committed() as session:
            await session.execute(
                sa.text("UPDATE organizations SET status = 'suspended' WHERE id = :o"), {"o": op}
            )
        assert await may() is False
        async with committed() as session:
            await session.execute(
                sa.text("UPDATE organizations SET status = 'approved' WHERE id = :o"), {"o": op}
            )
            await session.execute(
                sa.text(
                    "UPDATE entrustments SET withdrawn_at = now() WHERE user_id = :u AND operator_id = :o"
                ),
                {"u": user, "o": op},
            )
        assert await may() is False
        async with committed() as session:
            await session.execute(
                sa.text(
                    "UPDATE entrustments SET withdrawn_at = NULL WHERE user_id = :u AND operator_id = :o"
                ),
                {"u": user, "o": op},
            )
            await session.execute(sa.text("UPDATE users SET deleted_at = now() WHERE id = :u"), {"u": user})
        assert await may() is False


class TestTogether:
    async def test_orders_at_once_with_one_caller_refused(self, client, world):
        """Eight people of one operator order at once (their orders sent together), none known to the process;
        one of them withdrew the entrustment: seven orders placed, that one refused, nothing of it done."""
        op = await make_operator(client, world.authority)
        crowd = await people(client, op, world.btype, 8, points=100)
        merchant = await make_merchant(client, world.authority)
        it = await make_item(client, merchant, points_price=30, stock=10)
        gone = crowd[3]
        r = await client.delete(f"/v1/operator/users/{gone.ext}", headers=op.headers)
        assert r.status_code == 200, r.text
        callers.standing_changed()
        answers = await asyncio.gather(*(place(client, p, it["id"]) for p in crowd))
        codes = [(a.status_code, a.json().get("code")) for a in answers]
        assert codes == [(201, None)] * 3 + [(401, "entrustment_withdrawn")] + [(201, None)] * 4
        assert (await item(client, it["id"]))["stock"] == 3
        async with db.session_scope() as session:
            rows = await session.execute(
                sa.text(
                    "SELECT u.id, a.balance, (SELECT count(*) FROM mall_orders o WHERE o.user_id = u.id)"
                    " FROM users u JOIN point_accounts a ON a.user_id = u.id WHERE u.id = ANY(:ids)"
                ),
                {"ids": [uuid.UUID(p.user_id) for p in crowd]},
            )
            found = {str(u): (balance, n) for u, balance, n in rows}
        assert found == {p.user_id: (100, 0) if p is gone else (70, 1) for p in crowd}
        assert await ledger_violations() == []


class TestDeclaration:
    async def test_a_routes_standing_no_statement_checked_fails_the_request(self, client, world):
        """A route whose caller's standing is left to its statement must check it: one that does not is a
        mistake, refused before anything is committed."""
        person, it = await someone(client, world)

        async def forgetful(session: Session, user: Buyer, data: OrderCreate) -> Response:
            idempotency.deferred(session)  # the key taken (as if a statement had), the standing forgotten
            return Response(status_code=status.HTTP_201_CREATED)

        app = FastAPI()
        app.router.route_class = DirectWriteRoute
        app.post("/x", status_code=201)(forgetful)
        callers.standing_changed()
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            with pytest.raises(RuntimeError, match="never checked its caller's standing"):
                await c.post(
                    "/x",
                    json={"item_id": it["id"], "quantity": 1},
                    headers={**person.headers, "Idempotency-Key": unique("forgotten")},
                )

    async def test_through_fastapi_the_standing_is_read_before_the_body(self, client, world, sent, deaf):
        """A body the direct path does not take goes through FastAPI, where the caller is refused first."""
        person, it = await someone(client, world)
        r = await client.post(
            f"/v1/organizations/{person.operator.id}/suspend", headers=bearer(world.authority)
        )
        assert r.status_code == 200, r.text
        headers = {**person.headers, "Idempotency-Key": unique("odd")}
        r = await client.post("/v1/me/orders", json={"item_id": "not-a-uuid", "quantity": 1}, headers=headers)
        assert_problem(r, 403, "organization_not_active")
        assert kinds(sent) == []  # FastAPI's path: the session's own connection, not the direct pool
