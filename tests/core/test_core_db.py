"""The raw asyncpg connection of a session is the session's transaction: one commit, one rollback."""

import asyncio
import uuid

import asyncpg
import sqlalchemy as sa

from app import cli
from app.core import db, embedded


async def table_exists(servers, name: str) -> bool:
    conn = await asyncpg.connect(db.plain_url(servers.database_url))
    try:
        return await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name)
    finally:
        await conn.close()


class TestRawConnection:
    async def test_a_raw_statement_before_any_other_runs_in_the_sessions_transaction(self, app):
        async with db.sessionmaker()() as session:
            conn = await db.raw_connection(session)  # the session has run nothing yet
            raw_xact = await conn.fetchval("SELECT pg_current_xact_id()::text")
            session_xact = (await session.execute(sa.text("SELECT pg_current_xact_id()::text"))).scalar()
            assert conn.is_in_transaction()
            assert raw_xact == session_xact
            await session.rollback()

    async def test_a_raw_statement_is_rolled_back_with_the_session(self, app, servers):
        name = f"raw_probe_{uuid.uuid4().hex}"
        async with db.sessionmaker()() as session:
            conn = await db.raw_connection(session)
            await conn.execute(f"CREATE TABLE {name} (x int)")
            await conn.execute(f"INSERT INTO {name} VALUES (1)")
            seen = (await session.execute(sa.text(f"SELECT x FROM {name}"))).scalar()
            await session.rollback()
        assert (seen, await table_exists(servers, name)) == (1, False)

    async def test_a_raw_statement_is_committed_with_the_session(self, app, servers):
        name = f"raw_probe_{uuid.uuid4().hex}"
        try:
            async with db.sessionmaker()() as session:
                await (await db.raw_connection(session)).execute(f"CREATE TABLE {name} (x int)")
                await session.commit()
            assert await table_exists(servers, name)
        finally:
            async with db.sessionmaker()() as session:
                await (await db.raw_connection(session)).execute(f"DROP TABLE IF EXISTS {name}")
                await session.commit()

    async def test_the_connection_is_the_same_for_every_call_of_a_transaction(self, app):
        async with db.sessionmaker()() as session:
            first = await db.raw_connection(session)
            await session.execute(sa.text("SELECT 1"))
            assert await db.raw_connection(session) is first
            await session.rollback()


class TestReadsOnly:
    async def test_a_session_that_only_reads_begins_no_transaction(self, app):
        async with db.sessionmaker()() as session:
            session.info[db.READS_ONLY] = True
            conn = await db.raw_connection(session)
            assert not conn.is_in_transaction()
            first = await conn.fetchval("SELECT txid_current()")
            second = await conn.fetchval("SELECT txid_current()")
            assert second > first  # each statement its own transaction
            await session.commit()

    def test_only_get_routes_that_read_are_marked(self, app):
        from app.core.routing import CommitRoute
        from tests.core.test_core_types import _routes

        marked = sorted(
            (sorted(r.methods), r.path)
            for r in _routes(app.routes)
            if isinstance(r, CommitRoute) and r.reads_only
        )
        assert marked == [
            (["GET"], "/v1/me/account"),
            (["GET"], "/v1/me/behaviours"),
            (["GET"], "/v1/me/ledger"),
        ]


class TestConnectionBudget:
    def test_a_process_opens_at_most_two_pools_the_direct_pool_and_nine_more(self):
        # 20 + 20 in overflow, the direct 8, the shared 4, the together 2, 3
        assert db.connections_per_process(20) == 57
        assert db.connections_per_process(20, 20) == 69
        assert db.connections_per_process(5, 2) == 21

    def test_serve_warns_when_the_workers_may_open_more_than_postgresql_gives(self):
        assert db.budget_warning(97, 1, 20, 4) is None
        assert db.budget_warning(106, 2, 20, 4) is None  # exactly what two may open
        assert db.budget_warning(97, 2, 20, 4) == (
            "PostgreSQL gives 97 connections; 2 worker process(es) may open up to 106 (53 each with"
            " CARBON_DB_POOL_SIZE=20 and CARBON_DB_DIRECT_POOL_SIZE=4): under load, requests beyond it are"
            " answered 503 database_unavailable. Set CARBON_DB_POOL_SIZE=17 or raise max_connections."
        )
        assert db.connections_per_process(17, 4) * 2 <= 97 < db.connections_per_process(18, 4) * 2
        assert db.budget_warning(embedded.MAX_CONNECTIONS - 3, 7, 20, 4) is None

    def test_what_the_embedded_server_gives_covers_seven_workers(self, servers):
        if "postgresql" not in servers.started:  # external test servers: their own settings
            assert cli._connection_budget(servers.database_url, 1, 1, 1) is None
            return
        assert cli._connection_budget(servers.database_url, 7, 20, 8) is None
        warning = cli._connection_budget(servers.database_url, 8, 20, 8)
        assert warning is not None and warning.startswith("PostgreSQL gives 447 connections; 8 worker")


class TestCarrierSession:
    """Direct routes carry their ``info`` on a session that earlier requests gave back untouched."""

    async def test_an_untouched_session_is_given_out_again_with_its_info_emptied(self, app):
        async with db.carrier_session() as first:
            first.info["probe"] = "left behind"
        async with db.carrier_session() as second:
            assert second is first
            assert second.info == {}

    async def test_a_session_that_ran_a_statement_is_closed_not_given_out(self, app):
        async with db.carrier_session() as used:
            assert (await used.execute(sa.text("SELECT 1"))).scalar() == 1
        assert not used.in_transaction()  # closed: its connection went back to the pool
        async with db.carrier_session() as next_one:
            assert next_one is not used

    async def test_a_session_whose_work_raised_after_a_statement_is_closed(self, app):
        try:
            async with db.carrier_session() as failed:
                await failed.execute(sa.text("SELECT 1"))
                raise LookupError("the endpoint's refusal")
        except LookupError:
            pass
        assert not failed.in_transaction()
        async with db.carrier_session() as next_one:
            assert next_one is not failed

    async def test_at_once_each_request_has_its_own(self, app):
        async with db.carrier_session() as a, db.carrier_session() as b:
            assert a is not b

    async def test_no_more_than_the_limit_are_kept(self, app, monkeypatch):
        monkeypatch.setattr(db, "IDLE_SESSIONS", 2)
        db._idle_sessions.clear()
        async with db.carrier_session() as a, db.carrier_session() as b, db.carrier_session() as c:
            pass
        assert db._idle_sessions == [c, b]  # the first given back was one too many: closed
        assert a not in db._idle_sessions

    async def test_a_session_of_another_sessionmaker_is_never_given_out(self, app, monkeypatch):
        async with db.carrier_session() as old:
            pass
        other = type(db.sessionmaker())(db.engine(), expire_on_commit=False, autoflush=False)
        monkeypatch.setattr(db, "_sessionmaker", other)
        async with db.carrier_session() as new:
            assert new is not old
        assert old not in db._idle_sessions


class TestEndedConnections:
    async def test_a_pooled_connection_the_server_ended_is_given_to_no_one(self, servers):
        engine = db.create_engine(servers.database_url, pool_size=1)
        try:
            async with engine.connect() as conn:
                first = (await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
            admin = await asyncpg.connect(db.plain_url(servers.database_url))
            try:
                assert await admin.fetchval("SELECT pg_terminate_backend($1)", first) is True
                for _ in range(200):  # the server's goodbye reaches the pooled connection
                    if not await admin.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", first
                    ):
                        break
                    await asyncio.sleep(0.01)
            finally:
                await admin.close()
            await asyncio.sleep(0.05)
            async with engine.connect() as conn:  # without the check: InterfaceError, connection is closed
                second = (await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
            assert second != first
        finally:
            await engine.dispose()
