"""The raw asyncpg connection of a session is the session's transaction: one commit, one rollback."""

import uuid

import asyncpg
import sqlalchemy as sa

from app.core import db


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
