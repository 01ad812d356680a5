"""Embedded PostgreSQL and Redis: started from pip packages, data kept across restarts."""

import shutil
import tempfile
from pathlib import Path

import asyncpg
import pytest
import redis as redis_lib

from app.core import db, embedded


@pytest.fixture
def folder():
    path = Path(tempfile.mkdtemp(prefix="carbon-embedded-"))
    yield path
    embedded.stop(path, fast=True)
    shutil.rmtree(path, ignore_errors=True)


async def query(database_url: str, sql: str):
    conn = await asyncpg.connect(db.plain_url(database_url))
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


class TestEmbeddedServers:
    async def test_start_keep_data_across_stop_and_start(self, folder, run_sync, servers):
        urls = await run_sync(embedded.ensure_servers, None, None, folder)
        assert urls.started == ("postgresql", "redis")
        assert urls.database_url.startswith("postgresql://postgres@/carbon?host=")
        assert urls.redis_url.startswith("unix://")
        assert (folder / "postgres" / "PG_VERSION").exists()
        assert (folder / "redis").is_dir()
        # restarted once when new, for the setting that needs it
        assert [tuple(row) for row in await query(urls.database_url, "SHOW wal_buffers")] == [("64MB",)]
        assert [tuple(row) for row in await query(urls.database_url, "SHOW max_connections")] == [("450",)]

        await query(urls.database_url, "CREATE TABLE kept (v text)")
        await query(urls.database_url, "INSERT INTO kept VALUES ('still here')")
        r = redis_lib.Redis.from_url(urls.redis_url)
        r.set("kept", "still here")
        r.close()

        await run_sync(embedded.stop, folder)
        with pytest.raises((OSError, asyncpg.PostgresError)):
            await query(urls.database_url, "SELECT 1")

        again = await run_sync(embedded.ensure_servers, None, None, folder)
        assert again.started == ("postgresql", "redis")
        assert [tuple(row) for row in await query(again.database_url, "SELECT v FROM kept")] == [
            ("still here",)
        ]
        r = redis_lib.Redis.from_url(again.redis_url)
        assert r.get("kept") == b"still here"
        r.close()

        # the session's own servers were not touched
        assert [tuple(row) for row in await query(servers.database_url, "SELECT 1")] == [(1,)]

    def test_asking_again_shares_the_running_servers(self, servers, settings):
        again = embedded.ensure_servers(None, None, settings.data_dir)
        assert (again.database_url, again.redis_url) == (servers.database_url, servers.redis_url)

    def test_with_urls_nothing_is_started(self, tmp_path):
        target = tmp_path / "unused"
        urls = embedded.ensure_servers(
            "postgresql://u:p@db.example/carbon", "redis://cache.example:6379/0", target
        )
        assert urls == embedded.ServerUrls(
            "postgresql://u:p@db.example/carbon", "redis://cache.example:6379/0", ()
        )
        assert not target.exists()

    def test_only_one_url_given_starts_the_other(self, folder):
        urls = embedded.ensure_servers("postgresql://u:p@db.example/carbon", None, folder)
        assert urls.started == ("redis",)
        assert urls.database_url == "postgresql://u:p@db.example/carbon"
        assert not (folder / "postgres").exists()

    def test_psql_hint(self):
        url = "postgresql://postgres@/carbon?host=/tmp/x/postgres"
        assert embedded.psql_hint(url) == "psql -h /tmp/x/postgres -U postgres carbon"
        assert (
            embedded.psql_hint("postgresql://app@db.example:5432/points")
            == "psql -h db.example -U app points"
        )
