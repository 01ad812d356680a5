"""The expiry job's read of who has due lots, and its lots emptied in place.

A run that leaves nobody due marks how far every lot is empty (a day before its time); where the platform's
clock only goes forward (production) the next runs read only lots due after the mark, and a run's later
pass only lots due after its first. A lot's expiry writes no index entry (a heap-only update).
"""

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.core import clock, db
from app.points import repository, service
from app.points.tasks import expire_all
from tests.points.test_ledger import _entries, _lot_times, _parse, earn, person


@pytest.fixture(autouse=True)
async def rule(app):
    from tests.factories_points import ensure_rule

    await ensure_rule()
    yield
    clock.freeze(None)
    clock.set_offset(timedelta(0))


async def _two_people_due_a_day_apart(client):
    """A's lot falls due a day before B's; the moment B's falls due."""
    op, a, btype = await person(client)
    await earn(client, op, a["external_user_id"], btype, 3)
    clock.set_offset(timedelta(days=1))
    op_b, b, btype_b = await person(client)
    await earn(client, op_b, b["external_user_id"], btype_b, 3)
    clock.set_offset(timedelta(0))
    due_a = _parse((await _lot_times(a["user_id"]))[0])
    due_b = _parse((await _lot_times(b["user_id"]))[0])
    assert due_b - due_a == timedelta(days=1)
    return uuid.UUID(a["user_id"]), uuid.UUID(b["user_id"]), due_a, due_b


async def _due(now, **kw) -> list[uuid.UUID]:
    async with db.session_scope() as session:
        return await service.people_with_due_lots(session, now, **kw)


class TestTheMark:
    async def test_a_run_that_leaves_nobody_due_marks_a_day_before_its_time(self, client):
        op, u, btype = await person(client)
        await earn(client, op, u["external_user_id"], btype, 3)
        now = _parse((await _lot_times(u["user_id"]))[0]) + timedelta(hours=1)
        clock.freeze(now)
        done = await expire_all()
        assert done["points"] >= 30
        assert await _entries(u["user_id"]) == [("earn", 30, 30), ("expire", -30, 0)]
        async with db.session_scope() as session:
            conn = await db.raw_connection(session)
            assert await repository.expired_through(conn) == now - timedelta(days=1)
            marked_at = await conn.fetchval("SELECT marked_at FROM point_expiry_mark")
        assert marked_at == now

    async def test_where_the_clock_only_goes_forward_lots_due_by_the_mark_are_not_read(
        self, client, monkeypatch
    ):
        a, b, due_a, due_b = await _two_people_due_a_day_apart(client)
        async with db.session_scope() as session:
            # a mark that says A's day is over (a state production never reaches: it proves the bound is used)
            await repository.mark_expired_through(await db.raw_connection(session), due_a, clock.now())
        monkeypatch.setattr(clock, "sandbox_allowed", lambda: False)
        assert [p for p in await _due(due_b) if p in (a, b)] == [b]
        # a mark not behind the run's time is not trusted
        assert sorted(p for p in await _due(due_a) if p in (a, b)) == [a]

    async def test_where_the_clock_can_be_put_back_every_due_lot_is_read(self, client):
        a, b, due_a, due_b = await _two_people_due_a_day_apart(client)
        async with db.session_scope() as session:
            await repository.mark_expired_through(await db.raw_connection(session), due_a, clock.now())
        assert clock.sandbox_allowed()
        assert [p for p in await _due(due_b) if p in (a, b)] == sorted([a, b])

    async def test_a_later_pass_reads_only_lots_due_after_the_first(self, client):
        a, b, due_a, due_b = await _two_people_due_a_day_apart(client)
        assert [p for p in await _due(due_b, after=due_a) if p in (a, b)] == [b]
        assert [
            p for p in await _due(due_b, after=due_a - timedelta(microseconds=1)) if p in (a, b)
        ] == sorted([a, b])

    async def test_expire_due_marks_when_nobody_is_due(self, client):
        now = clock.now() - timedelta(days=20000)  # before any lot of any test
        async with db.session_scope() as session:
            assert await service.expire_due(session, now=now) == service.Expiry(0, 0)
            assert await repository.expired_through(await db.raw_connection(session)) == now - timedelta(
                days=1
            )


class TestInPlace:
    async def test_no_index_of_a_lot_covers_what_expiry_changes(self, client):
        async with db.session_scope() as session:
            defs = (
                await session.execute(
                    sa.text("SELECT indexdef FROM pg_indexes WHERE tablename = 'point_lots'")
                )
            ).scalars()
            options = (
                await session.execute(sa.text("SELECT reloptions FROM pg_class WHERE relname = 'point_lots'"))
            ).scalar_one()
        assert sorted(d.split(" ON ")[0] for d in defs) == [
            "CREATE INDEX ix_point_lots_expires_at",
            "CREATE UNIQUE INDEX pk_point_lots",
            "CREATE UNIQUE INDEX uq_point_lots_user_id_expires_at",
        ]
        assert options == ["fillfactor=50"]

    async def test_expiring_a_lot_is_a_heap_only_update(self, client):
        op, u, btype = await person(client)
        await earn(client, op, u["external_user_id"], btype, 3)
        user = uuid.UUID(u["user_id"])
        due = _parse((await _lot_times(u["user_id"]))[0])
        counts = sa.text(
            "SELECT pg_stat_get_xact_tuples_updated('point_lots'::regclass),"
            " pg_stat_get_xact_tuples_hot_updated('point_lots'::regclass)"
        )
        async with db.session_scope() as session:
            before = (await session.execute(counts)).one()
            done = await service.expire_people(session, [user], due)
            after = (await session.execute(counts)).one()
        assert done == service.Expiry(1, 30)
        assert (after[0] - before[0], after[1] - before[1]) == (1, 1)
