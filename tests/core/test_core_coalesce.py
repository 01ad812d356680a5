"""Reads shared between the requests that wait at the same time (:mod:`app.core.coalesce`), on the real
server: one statement for many waiters, each their own answer, a lone read at once, errors and
cancellations confined, at most ``in_flight`` statements at once; and the balance read that uses it."""

import asyncio
import re
import uuid
from datetime import timedelta

import pytest

from app.core import callers, clock, coalesce, db
from app.points import repository as points_repo
from app.points import service as points_service
from app.users import repository as users_repo
from tests.core.recorded import Recorded
from tests.factories import make_operator
from tests.factories_points import enrol, ensure_rule, make_methodology, record, submit, user_headers

pytestmark = pytest.mark.commits


@pytest.fixture
async def direct(app):
    """A direct read's session: its reads may share a statement with others waiting at the same time."""
    async with db.direct_lease() as lease, db.sessionmaker()() as session:
        session.info[db.READS_ONLY] = True
        session.info[db.DIRECT] = lease
        yield session


class Recorder(Recorded):
    """Reads that square their keys in PostgreSQL and remember the keys of each statement (``batches``): ``one``
    a key, the recorder itself many."""

    @property
    def batches(self) -> list[list[int]]:
        return self.sent

    async def __call__(self, conn: db.Conn, keys: list[int]) -> dict[int, int]:
        rows = await self.statement(conn, keys, "SELECT k, k * k AS sq FROM unnest($1::int[]) AS k")
        return {r["k"]: r["sq"] for r in rows}

    async def one(self, conn: db.Conn, key: int) -> int:
        return (await self(conn, [key]))[key]

    def coalesced(self, **limits: int) -> coalesce.Coalesced[int, int]:
        return coalesce.Coalesced(self.one, self, **limits)


async def test_a_lone_read_is_sent_at_once_alone(direct):
    fetch = Recorder()
    assert await fetch.coalesced().get(direct, 7) == 49
    assert fetch.batches == [[7]]


async def test_reads_that_wait_together_share_a_statement_and_each_gets_its_own_answer(direct):
    fetch = Recorder()
    shared = fetch.coalesced(in_flight=1)
    keys = [k % 40 for k in range(100)]  # each key asked for more than once
    answers = await asyncio.gather(*[shared.get(direct, k) for k in keys])
    assert answers == [k * k for k in keys]
    assert len(fetch.batches) < len(keys)
    assert all(len(batch) == len(set(batch)) for batch in fetch.batches)  # keys sent once a statement
    assert sorted(set().union(*fetch.batches)) == list(range(40))


async def test_at_most_in_flight_statements_and_the_rest_wait_for_the_next(direct):
    gate = asyncio.Event()
    fetch = Recorder(gate)
    shared = fetch.coalesced(in_flight=2, most=10)
    waiting = [asyncio.ensure_future(shared.get(direct, k)) for k in range(25)]
    await asyncio.sleep(0.05)
    assert fetch.running == 2 and len(fetch.batches) == 2  # two statements out, 23 reads waiting
    gate.set()
    assert await asyncio.gather(*waiting) == [k * k for k in range(25)]
    assert fetch.most_running == 2
    assert max(len(batch) for batch in fetch.batches) == 10  # a statement takes at most `most` keys
    assert sorted(k for batch in fetch.batches for k in batch) == list(range(25))


async def test_a_failed_statement_fails_its_waiters_only_and_the_next_read_works(direct):
    gate = asyncio.Event()
    fetch = Recorder(gate, fail_on=3)
    shared = fetch.coalesced(in_flight=1)
    first = asyncio.ensure_future(shared.get(direct, 1))  # alone in the first statement
    await asyncio.sleep(0.01)
    doomed = [asyncio.ensure_future(shared.get(direct, k)) for k in (2, 3)]  # together in the second
    gate.set()
    assert await first == 1
    for read in doomed:
        with pytest.raises(Exception, match="division by zero"):
            await read
    fetch.fail_on = None
    assert await shared.get(direct, 3) == 9


async def test_a_statement_that_misses_a_key_fails_its_reads_not_the_coalescer(direct):
    async def forgetful(conn: db.Conn, keys: list[int]) -> dict[int, int]:
        rows = await conn.fetch("SELECT k FROM unnest($1::int[]) AS k WHERE k <> 5", keys)
        return {r["k"]: r["k"] for r in rows}

    async def one(conn: db.Conn, key: int) -> int:
        return (await forgetful(conn, [key]))[key]

    shared = coalesce.Coalesced(one, forgetful, in_flight=1)
    answers = await asyncio.gather(shared.get(direct, 5), shared.get(direct, 6), return_exceptions=True)
    assert [type(a) for a in answers] == [KeyError, KeyError]  # the statement's answer was incomplete
    assert await shared.get(direct, 7) == 7


async def test_a_cancelled_waiter_leaves_the_others_their_answers(direct):
    gate = asyncio.Event()
    fetch = Recorder(gate)
    shared = fetch.coalesced(in_flight=1)
    first = asyncio.ensure_future(shared.get(direct, 1))
    await asyncio.sleep(0.01)
    gone, kept = asyncio.ensure_future(shared.get(direct, 2)), asyncio.ensure_future(shared.get(direct, 3))
    await asyncio.sleep(0.01)
    gone.cancel()
    gate.set()
    assert (await first, await kept) == (1, 9)
    assert gone.cancelled()
    assert fetch.batches == [[1], [3]]  # the cancelled read's key was not sent


async def test_a_read_in_a_transaction_reads_alone_on_its_connection(app):
    fetch = Recorder()
    async with db.session_scope() as session:
        conn = await db.raw_connection(session)
        shared = fetch.coalesced()
        answers = [await shared.get(session, k) for k in (2, 3)]
    assert answers == [4, 9]
    assert fetch.batches == [[2], [3]]
    assert fetch.connections == [conn, conn]


def counting(sizes: list[int], module, one: str, many: str, monkeypatch) -> None:
    """Counts the keys of each statement of ``module``'s ``one`` and ``many`` reads."""
    read_one, read_many = getattr(module, one), getattr(module, many)

    async def counted_one(conn, key, *args):
        sizes.append(1)
        return await read_one(conn, key, *args)

    async def counted_many(conn, keys, *args):
        sizes.append(len(keys))
        return await read_many(conn, keys, *args)

    monkeypatch.setattr(module, one, counted_one)
    monkeypatch.setattr(module, many, counted_many)


async def people_with_balances(client, count: int) -> list[tuple[int, dict[str, str]]]:
    """``count`` people of one operator, the n-th credited 10 × n points: each one's balance and token headers."""
    await ensure_rule()
    btype = await make_methodology(factor="1000")
    op = await make_operator(client)
    people = []
    for n in range(1, count + 1):
        ext = (await enrol(client, op))["external_user_id"]
        r = await submit(client, op, [record(ext, btype, quantity=n / 10)])
        assert r.json()["results"][0]["status"] == "accepted", r.text
        people.append((n * 10, await user_headers(client, op, ext)))
    return people


async def test_balances_read_at_once_each_person_their_own_in_fewer_statements(client, monkeypatch):
    """Twelve people with different balances read them at the same time through ``/v1/me/account``, none of them
    known to the process: each balance's statement checks its callers' standing, no standing is read apart."""
    people = await people_with_balances(client, 12)
    balances: list[int] = []
    standings: list[int] = []
    counting(balances, points_repo, "checked_account_view", "checked_account_views", monkeypatch)
    counting(standings, users_repo, "standing", "standings", monkeypatch)
    callers.standing_changed()  # nobody's standing kept: each read checks its caller
    answers = await asyncio.gather(*[client.get("/v1/me/account", headers=h) for _, h in people])
    assert [r.status_code for r in answers] == [200] * 12
    assert [r.json()["balance"] for r in answers] == [points for points, _ in people]
    assert sum(balances) == 12 and len(balances) < 12
    assert standings == []


async def test_balance_reads_that_arrive_during_a_statement_wait_for_it_and_share_the_next(
    client, monkeypatch
):
    """A process sends one balance statement at a time: the reads arriving while it runs are read together by
    the next one (measured: fewer, larger statements cost each read ~10 % less CPU than two at a time)."""
    people = await people_with_balances(client, 4)
    for _, headers in people:  # each caller's standing kept: only balance statements from here on
        assert (await client.get("/v1/me/account", headers=headers)).status_code == 200
    sizes: list[int] = []
    gate, started = asyncio.Event(), asyncio.Event()
    read_one, read_many = points_repo.account_view, points_repo.account_views

    async def held_one(conn, key, *args):
        sizes.append(1)
        started.set()
        await gate.wait()
        return await read_one(conn, key, *args)

    async def counted_many(conn, keys, *args):
        sizes.append(len(keys))
        return await read_many(conn, keys, *args)

    monkeypatch.setattr(points_repo, "account_view", held_one)
    monkeypatch.setattr(points_repo, "account_views", counted_many)
    first = asyncio.create_task(client.get("/v1/me/account", headers=people[0][1]))
    rest: list[asyncio.Task] = []
    try:
        await asyncio.wait_for(started.wait(), 10)  # the first read's statement is running (held)
        rest = [asyncio.create_task(client.get("/v1/me/account", headers=h)) for _, h in people[1:]]
        shared = points_service._account_views_shared
        for _ in range(1000):  # until the three wait for the next statement, or another statement began
            if len(shared._waiting) == 3 or len(sizes) > 1:
                break
            await asyncio.sleep(0.01)
        assert sizes == [1] and len(shared._waiting) == 3  # no second statement while the first runs
    finally:
        gate.set()  # a failed check must not leave the first read held
        answers = [await first, *[await task for task in rest]]
    assert [r.json()["balance"] for r in answers] == [points for points, _ in people]
    assert sizes == [1, 3]


async def test_a_balance_read_right_after_a_credit_sees_it(client):
    await ensure_rule()
    btype = await make_methodology(factor="1000")
    op = await make_operator(client)
    ext = (await enrol(client, op))["external_user_id"]
    headers = await user_headers(client, op, ext)
    for n in range(1, 4):
        r = await submit(
            client, op, [record(ext, btype, quantity=0.5, start=clock.now() - timedelta(hours=2 + n))]
        )
        assert r.json()["results"][0]["status"] == "accepted", r.text
        reads = await asyncio.gather(*[client.get("/v1/me/account", headers=headers) for _ in range(5)])
        assert [r.json()["balance"] for r in reads] == [50 * n] * 5


async def test_shared_statements_are_planned_once_each_key_looked_up_through_an_index(app):
    """The shared pool's statements use the plan PostgreSQL made once (none planned again for its keys), and that
    plan looks each key up through an index: no table scanned, hashed or merged, whatever the tables hold."""
    people, operator = [uuid.uuid4() for _ in range(3)], uuid.uuid4()
    async with db.shared_connection() as conn:

        async def plans() -> dict[str, tuple[int, int]]:
            rows = await conn.fetch(
                "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
            )
            return {
                r["statement"]: (r["generic_plans"], r["custom_plans"])
                for r in rows
                if "point_lots" in r["statement"] or "entrustments" in r["statement"]
            }

        before = await plans()
        for keys in (people[:2], people):  # two and three keys: one plan for both
            await points_repo.account_views(conn, keys, clock.now())
            await users_repo.standings(conn, [(person, operator) for person in keys])
            await points_repo.checked_account_views(conn, [(p, operator, None) for p in keys], clock.now())
        await points_repo.account_view(conn, people[0], clock.now())
        await users_repo.standing(conn, people[0], operator)
        await points_repo.checked_account_view(conn, (people[0], operator, None), clock.now())
        after = await plans()
        runs = {
            statement: (generic - before.get(statement, (0, 0))[0], custom - before.get(statement, (0, 0))[1])
            for statement, (generic, custom) in after.items()
        }
        runs = {statement: ran for statement, ran in runs.items() if ran != (0, 0)}  # this test's statements
        assert sorted(runs.values()) == [(1, 0)] * 3 + [(2, 0)] * 3  # every run on the plan made once
        for statement in runs:
            params = max(int(n) for n in re.findall(r"\$(\d+)", statement))
            await conn.execute(f"PREPARE planned AS {statement}")
            try:
                rows = await conn.fetch(f"EXPLAIN EXECUTE planned({', '.join(['NULL'] * params)})")
            finally:
                await conn.execute("DEALLOCATE planned")
            plan = "\n".join(line for (line,) in rows)
            assert "Nested Loop" in plan, plan  # the plan made once (the pool's): a lookup per key
            assert not re.search(r"Seq Scan|Hash Join|Merge Join", plan), plan
