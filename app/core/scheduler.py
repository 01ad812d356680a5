"""APScheduler 3.x in exactly one process: the one holding a PostgreSQL advisory lock.

Domains register jobs with :func:`job` in their ``tasks.py``; every job opens its own session,
commits once, and is idempotent, so a job that runs twice (e.g. after a failover) does no harm.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from app.core import db

log = logging.getLogger(__name__)
LEADER_LOCK = 0x0A0D17_2000


@dataclass
class Job:
    name: str
    func: Callable[[], Awaitable[object]]
    trigger: str
    kwargs: dict


JOBS: list[Job] = []


def job(trigger: str, **trigger_kwargs):
    """Register ``func`` as a scheduled job: ``@job("cron", hour=0, minute=5)``."""

    def register(func):
        JOBS.append(Job(func.__module__ + "." + func.__name__, func, trigger, trigger_kwargs))
        return func

    return register


class Leader:
    """Tries to become the scheduling process; retries every ``retry_seconds`` until it is."""

    def __init__(self, database_url: str, retry_seconds: float = 30):
        self.database_url = database_url
        self.retry_seconds = retry_seconds
        self.scheduler: AsyncIOScheduler | None = None
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._campaign())

    async def _campaign(self) -> None:
        while True:
            try:
                conn = await asyncpg.connect(db.plain_url(self.database_url))
                if await conn.fetchval("SELECT pg_try_advisory_lock($1)", LEADER_LOCK):
                    self._conn = conn
                    self._start_scheduler()
                    return
                await conn.close()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("scheduler election failed", extra={"error": str(exc)})
            await asyncio.sleep(self.retry_seconds)

    def _start_scheduler(self) -> None:
        from app import tasks  # noqa: F401 - imports every domain's tasks.py, registering jobs

        self.scheduler = AsyncIOScheduler(timezone="UTC")
        for j in JOBS:
            self.scheduler.add_job(
                _guarded(j), j.trigger, id=j.name, name=j.name, replace_existing=True,
                coalesce=True, max_instances=1, misfire_grace_time=3600, **j.kwargs,
            )
        self.scheduler.start()
        log.info("scheduler started in this process", extra={"jobs": [j.name for j in JOBS]})

    @property
    def is_leader(self) -> bool:
        return self.scheduler is not None

    async def stop(self) -> None:
        if self._task and not self._task.done():
            self._task.cancel()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


def _guarded(j: Job):
    async def run() -> None:
        try:
            result = await j.func()
            log.info("job done", extra={"job": j.name, "result": result})
        except Exception:
            log.exception("job failed", extra={"job": j.name})

    return run
