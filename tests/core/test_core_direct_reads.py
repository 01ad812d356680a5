"""Direct reads (``GET /v1/me/account``): on a plain asyncpg pool, the caller resolved without FastAPI's
dependency solving, the same answers and refusals as every other route.

These tests commit: a direct read's connection is not the test's, so it sees only committed rows.
"""

from contextlib import asynccontextmanager
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI, Query

from app.auth.dependencies import AccountReader, Session, require
from app.auth.principal import Principal
from app.core import callers, db
from app.core.routing import DirectReadRoute
from app.points.schemas import AccountRead
from tests.factories import assert_problem, bearer, make_operator
from tests.factories_points import enrol, ensure_rule, make_methodology, record, submit, user_headers

pytestmark = pytest.mark.commits


async def credited_person(client) -> tuple[object, str, dict[str, str]]:
    """An operator, one of its people with 1,500 g of reduction credited, and the person's headers."""
    await ensure_rule()
    btype = await make_methodology(factor="1000")
    op = await make_operator(client)
    ext = (await enrol(client, op))["external_user_id"]
    r = await submit(client, op, [record(ext, btype, quantity=1.5)])
    assert r.json()["results"][0]["status"] == "accepted", r.text
    return op, ext, await user_headers(client, op, ext)


class TestAnswers:
    async def test_the_same_account_as_the_operators_read_of_it_through_the_session_path(self, client):
        op, ext, headers = await credited_person(client)
        direct = await client.get("/v1/me/account", headers=headers)
        assert direct.status_code == 200, direct.text
        assert direct.headers["content-type"] == "application/json"
        through_session = await client.get(f"/v1/operator/users/{ext}/account", headers=op.headers)
        assert through_session.status_code == 200, through_session.text
        assert direct.json() == through_session.json()
        assert direct.json()["balance"] == 150
        assert sum(e["points"] for e in direct.json()["expiring"]) == 150

    async def test_it_reads_on_the_plain_pools_not_the_orm_session(self, client, monkeypatch):
        _, _, headers = await credited_person(client)
        shared = []
        acquire = db.shared_connection

        def counted():
            shared.append(1)
            return acquire()

        monkeypatch.setattr(db, "shared_connection", counted)
        leased = []
        lease = db.DirectLease.connection

        async def leased_connection(self):
            leased.append(1)
            return await lease(self)

        monkeypatch.setattr(db.DirectLease, "connection", leased_connection)
        engine_checkouts = db.engine().pool.checkedout()
        callers.standing_changed()  # the caller's standing is read, not kept
        assert (await client.get("/v1/me/account", headers=headers)).status_code == 200
        # the balance checking the caller's standing: one statement shared with whoever waits at the same time
        assert shared == [1]
        assert leased == []  # no connection of its own
        assert db.engine().pool.checkedout() == engine_checkouts

    async def test_reads_one_after_another_carry_their_info_on_one_session(self, client, monkeypatch):
        _, _, headers = await credited_person(client)
        carried = []
        carrier = db.carrier_session

        @asynccontextmanager
        async def seen():
            async with carrier() as session:
                carried.append((session, dict(session.info)))  # as the read is given it
                yield session

        monkeypatch.setattr(db, "carrier_session", seen)
        for _ in range(2):
            r = await client.get("/v1/me/account", headers=headers)
            assert r.status_code == 200, r.text
            assert r.json()["balance"] == 150
        (first, first_info), (second, second_info) = carried
        assert second is first  # given back untouched, given out again
        assert first_info == second_info == {}  # nothing of the first read left on it
        assert not first.in_transaction() and not first.identity_map


class TestRefusals:
    async def test_no_token_a_bad_token_and_another_scheme(self, client):
        assert_problem(await client.get("/v1/me/account"), 401, "not_authenticated")
        assert_problem(await client.get("/v1/me/account", headers=bearer("not-a-jwt")), 401, "invalid_token")
        r = await client.get("/v1/me/account", headers={"Authorization": "Basic dXNlcjpwYXNz"})
        assert_problem(r, 401, "not_authenticated")

    async def test_a_caller_of_another_kind_is_refused_by_role(self, client):
        op, _, _ = await credited_person(client)
        assert_problem(await client.get("/v1/me/account", headers=op.headers), 403, "forbidden_role")

    async def test_a_withdrawal_stops_the_next_direct_read(self, client):
        op, ext, headers = await credited_person(client)
        assert (await client.get("/v1/me/account", headers=headers)).status_code == 200
        r = await client.delete(f"/v1/operator/users/{ext}", headers=op.headers)
        assert r.status_code == 200, r.text
        assert_problem(await client.get("/v1/me/account", headers=headers), 401, "entrustment_withdrawn")


class TestDeclaration:
    """What a direct read cannot do is refused when the route is declared."""

    def _declare(self, endpoint) -> None:
        app = FastAPI()
        app.router.route_class = DirectReadRoute
        app.get("/x", response_model=AccountRead)(endpoint)

    def test_a_query_parameter_is_refused(self):
        async def with_query(session: Session, user: AccountReader, limit: Annotated[int, Query()] = 5):
            return None

        with pytest.raises(TypeError, match="takes no parameters"):
            self._declare(with_query)

    def test_a_caller_that_may_write_is_refused(self):
        async def writer(session: Session, user: Annotated[Principal, Depends(require("user"))]):
            return None

        with pytest.raises(TypeError, match="reads_only"):
            self._declare(writer)

    def test_another_dependency_is_refused(self):
        async def other() -> int:
            return 1

        async def with_other(session: Session, user: AccountReader, n: Annotated[int, Depends(other)]):
            return None

        with pytest.raises(TypeError, match="only the session and its caller"):
            self._declare(with_other)
