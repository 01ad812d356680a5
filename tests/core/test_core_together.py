"""Writes sent together (:class:`app.core.coalesce.Together`), on the real server: a lone write at once alone,
writes that wait at the same time in one statement each with its own result, groups sorted and kept apart as
told, a failed group sent again a write at a time, at most ``in_flight`` groups of at most ``most``, and a write
of a request that began a transaction run on its connection alone."""

import asyncio
import contextlib

import pytest

from app.core import coalesce, db
from tests.core.recorded import Recorded

pytestmark = pytest.mark.commits


@contextlib.asynccontextmanager
async def direct_write():
    """A direct write's session that has begun no transaction: its writes may be sent together."""
    async with db.DirectTransaction() as lease, db.sessionmaker()() as session:
        session.info[db.DIRECT] = lease
        assert db.writes_apart(session)
        yield session


@pytest.fixture
async def direct(app):
    async with direct_write() as session:
        yield session


class Writer(Recorded):
    """Writes that multiply by ten in PostgreSQL (``SELECT``: nothing is kept) and remember each statement's
    writes (``groups``): ``one`` a write, ``many`` a group. A statement with ``fail_on`` in it fails, as alone does
    that one."""

    @property
    def groups(self) -> list[list[int]]:
        return self.sent

    async def many(self, conn: db.Conn, group: list[int]) -> list[int]:
        rows = await self.statement(
            conn, group, "SELECT w * 10 AS r FROM unnest($1::int[]) WITH ORDINALITY AS u(w, n) ORDER BY n"
        )
        return [r["r"] for r in rows]

    async def one(self, conn: db.Conn, write: int) -> int:
        return (await self.many(conn, [write]))[0]

    def together(
        self, *, keys=lambda w: (w,), order=lambda w: w, **limits: int
    ) -> coalesce.Together[int, int]:
        return coalesce.Together(self.one, self.many, keys=keys, order=order, **limits)


async def held_first(writes: coalesce.Together[int, int], session, write: int) -> asyncio.Future[int]:
    """``write`` sent and its statement running (held at the writer's gate)."""
    first = asyncio.ensure_future(writes.run(session, write))
    await asyncio.sleep(0.05)
    return first


async def test_a_lone_write_is_sent_at_once_alone(direct):
    writer = Writer()
    assert await writer.together().run(direct, 7) == 70
    assert writer.groups == [[7]]


async def test_writes_that_wait_together_share_a_statement_in_order_each_its_own_result(direct):
    gate = asyncio.Event()
    writer = Writer(gate)
    writes = writer.together(in_flight=1, order=lambda w: -w)  # the locks' order: here, descending
    first = await held_first(writes, direct, 1)
    rest = [asyncio.ensure_future(writes.run(direct, w)) for w in (3, 5, 4, 2)]
    await asyncio.sleep(0.05)
    assert writer.groups == [[1]]  # no second statement while the first runs
    gate.set()
    assert [await first, *[await w for w in rest]] == [10, 30, 50, 40, 20]
    assert writer.groups == [[1], [5, 4, 3, 2]]


async def test_a_write_with_a_key_of_one_waiting_or_being_sent_runs_alone_at_once_on_its_own_connection(
    direct,
):
    gate = asyncio.Event()
    writer = Writer(gate)
    writes = writer.together(in_flight=1, keys=lambda w: (w % 10,))  # one key's, one item's
    first = await held_first(writes, direct, 100)
    async with contextlib.AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(direct_write()) for _ in range(7)]
        sent = (1, 11, 2, 21, 12, 3, 10)  # 11, 21, 12: a key of one waiting; 10: of the one being sent
        rest = [asyncio.ensure_future(writes.run(s, w)) for s, w in zip(sessions, sent, strict=True)]
        await asyncio.sleep(0.05)
        assert writer.running == 5 and len(writes._waiting) == 3  # the four alone at once, the rest waiting
        gate.set()
        assert [await w for w in rest] == [10, 110, 20, 210, 120, 30, 100]
        alone = {sessions[n].info[db.DIRECT]._conn for n in (1, 3, 4, 6)}  # each its request's own connection
    assert await first == 1000
    assert writer.groups[0] == [100] and [1, 2, 3] in writer.groups
    assert sorted(writer.groups[1:]) == [[1, 2, 3], [10], [11], [12], [21]]
    assert alone == {
        c for g, c in zip(writer.groups, writer.connections, strict=True) if len(g) == 1 and g != [100]
    }
    assert len(alone) == 4
    assert writes._held == {}  # every key given back
    assert await writes.run(direct, 11) == 110  # and sent together again


async def test_a_failed_group_is_sent_again_a_write_at_a_time_each_failing_only_with_its_own_error(direct):
    gate = asyncio.Event()
    writer = Writer(gate, fail_on=13)
    writes = writer.together(in_flight=1)
    first = await held_first(writes, direct, 1)
    rest = [asyncio.ensure_future(writes.run(direct, w)) for w in (12, 13, 14)]
    await asyncio.sleep(0.05)
    gate.set()
    assert await first == 10
    assert [await rest[0], await rest[2]] == [120, 140]
    with pytest.raises(Exception, match="division by zero"):
        await rest[1]
    assert writer.groups == [[1], [12, 13, 14], [12], [13], [14]]
    assert len(set(map(id, writer.connections[1:]))) == 1  # sent again on the group's connection
    writer.fail_on = None
    assert await writes.run(direct, 13) == 130


async def test_at_most_in_flight_groups_of_at_most_most_writes(direct):
    gate = asyncio.Event()
    writer = Writer(gate)
    writes = writer.together(in_flight=2, most=4)
    waiting = [asyncio.ensure_future(writes.run(direct, w)) for w in range(19)]
    await asyncio.sleep(0.05)
    assert writer.running == 2  # two statements out, the rest waiting for the next
    gate.set()
    assert await asyncio.gather(*waiting) == [w * 10 for w in range(19)]
    assert writer.most_running == 2
    assert max(len(group) for group in writer.groups) == 4
    assert sorted(w for group in writer.groups for w in group) == list(range(19))


async def test_a_group_waits_for_a_connection_of_its_pool_and_fails_with_503s_error_when_none_comes(
    direct, monkeypatch
):
    monkeypatch.setattr(db, "ACQUIRE_TIMEOUT_SECONDS", 0.2)
    writer = Writer()
    writes = writer.together()
    async with contextlib.AsyncExitStack() as held:
        for _ in range(db.TOGETHER_CONNECTIONS):
            await held.enter_async_context(db.together_connection())
        answers = await asyncio.gather(*[writes.run(direct, w) for w in (1, 2, 3)], return_exceptions=True)
        assert [type(a) for a in answers] == [db.DirectPoolTimeout] * 3
        assert writer.groups == []  # nothing was sent
    assert await writes.run(direct, 4) == 40


async def test_a_cancelled_write_that_waits_is_not_sent(direct):
    gate = asyncio.Event()
    writer = Writer(gate)
    writes = writer.together(in_flight=1)
    first = await held_first(writes, direct, 1)
    gone, kept = asyncio.ensure_future(writes.run(direct, 2)), asyncio.ensure_future(writes.run(direct, 3))
    await asyncio.sleep(0.01)
    gone.cancel()
    gate.set()
    assert (await first, await kept) == (10, 30)
    assert gone.cancelled()
    assert writer.groups == [[1], [3]]


async def test_a_write_of_a_request_that_began_a_transaction_runs_alone_on_its_connection(app):
    writer = Writer()
    writes = writer.together()
    async with db.session_scope() as session:
        conn = await db.raw_connection(session)
        assert not db.writes_apart(session)
        results = [await writes.run(session, w) for w in (2, 3)]
    assert results == [20, 30]
    assert writer.groups == [[2], [3]] and writer.connections == [conn, conn]


async def test_a_direct_write_once_its_transaction_began_is_not_sent_together(app):
    async with db.DirectTransaction() as lease, db.sessionmaker()() as session:
        session.info[db.DIRECT] = lease
        assert db.writes_apart(session)
        conn = await db.raw_connection(session)  # the request's transaction begins
        try:
            assert not db.writes_apart(session)
            writer = Writer()
            assert await writer.together().run(session, 5) == 50
            assert writer.connections == [conn]
        finally:
            await lease.rollback()
