"""The scheduler runs in exactly one process: the one holding the PostgreSQL advisory lock."""

import asyncio

import asyncpg
import pytest

from app import tasks
from app.core import db, scheduler
from app.core.scheduler import Leader
from tests.factories import eventually


@pytest.fixture
async def leaders(servers):
    made: list[Leader] = []

    def make(jobs: list[scheduler.Job] | None = None) -> Leader:
        leader = Leader(servers.database_url, jobs or [], retry_seconds=0.1)
        made.append(leader)
        return leader

    yield make
    for leader in made:
        await leader.stop()


class TestElection:
    async def test_one_leader_and_takeover(self, leaders):
        first, second = leaders(), leaders()
        first.start()
        await eventually(lambda: first.is_leader)
        second.start()
        await asyncio.sleep(0.5)  # five election rounds
        assert (first.is_leader, second.is_leader) == (True, False)

        await first.stop()
        assert not first.is_leader
        await eventually(lambda: second.is_leader)
        assert (first.is_leader, second.is_leader) == (False, True)

    async def test_a_leader_that_loses_its_connection_steps_down(self, leaders, servers):
        first, second = leaders(), leaders()
        first.start()
        await eventually(lambda: first.is_leader)
        second.start()
        pid = first._conn.get_server_pid()
        conn = await asyncpg.connect(db.plain_url(servers.database_url))
        try:
            assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await conn.close()
        await eventually(
            lambda: second.is_leader or (first.is_leader and first._conn.get_server_pid() != pid)
        )
        await asyncio.sleep(0.3)
        assert [first.is_leader, second.is_leader].count(True) == 1

    async def test_stop_before_election_is_harmless(self, leaders):
        leader = leaders()
        leader.start()
        await leader.stop()
        await leader.stop()
        assert not leader.is_leader


class TestJobs:
    async def test_the_leader_runs_registered_jobs_and_survives_failures(self, leaders, monkeypatch):
        ran = asyncio.Event()

        async def failing() -> None:
            raise RuntimeError("a job failed")

        async def working() -> str:
            ran.set()
            return "done"

        monkeypatch.setattr(scheduler, "JOBS", [])
        scheduler.job("interval", seconds=0.1)(failing)
        scheduler.job("interval", seconds=0.1)(working)
        assert [j.name for j in scheduler.JOBS] == [f"{__name__}.failing", f"{__name__}.working"]
        leader = leaders(scheduler.JOBS)
        leader.start()
        await eventually(lambda: leader.is_leader)
        await asyncio.wait_for(ran.wait(), timeout=5)
        assert {j.id for j in leader.scheduler.get_jobs()} == {f"{__name__}.failing", f"{__name__}.working"}

    def test_domain_jobs_are_registered(self):
        names = {j.name for j in tasks.jobs()}
        assert {
            "app.core.tasks.purge_expired_idempotency_keys",
            "app.auth.tasks.purge_used_client_assertions",
            "app.mall.tasks.expire_vouchers",
            "app.points.tasks.expire_points",
        } <= names

    async def test_the_application_hands_the_domains_jobs_to_its_leader(self, app):
        assert [j.name for j in app.state.leader.jobs] == [j.name for j in tasks.jobs()]
