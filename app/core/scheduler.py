"""APScheduler 3.x in exactly one process: the one holding a PostgreSQL advisory lock.

Domains register jobs with :func:`job` in their ``tasks.py``; ``app.tasks`` imports them all and
``app.main`` hands them to the :class:`Leader` (this module imports no domain). Every job opens its
own session, commits once, and is idempotent, so a job that runs twice (e.g. after a failover) does
no harm.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from app.core import db

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[[], Awaitable[object]])
LEADER_LOCK = 0x0A0D17_2000


@dataclass
class Job:
    name: str
    func: Callable[[], Awaitable[object]]
    trigger: str
    kwargs: dict[str, Any]


JOBS: list[Job] = []
"""Every job :func:`job` registered, in the order their modules were imported."""


def job(trigger: str, **trigger_kwargs: Any) -> Callable[[F], F]:
    """Register ``func`` as a scheduled job: ``@job("cron", hour=0, minute=5)``."""

    def register(func: F) -> F:
        JOBS.append(Job(func.__module__ + "." + func.__name__, func, trigger, trigger_kwargs))
        return func

    return register


class Leader:
    """Campaigns to be the scheduling process; retries every ``retry_seconds`` until it is.

    The lock is a session-level advisory lock held by a dedicated connection. The leader checks
    that connection every ``retry_seconds``: if it is lost (database restart, network), the lock is
    gone too, so the scheduler stops and the campaign starts again — never two schedulers.
    """

    def __init__(self, database_url: str, jobs: Sequence[Job], retry_seconds: float = 30):
        self.database_url = database_url
        self.jobs = list(jobs)
        self.retry_seconds = retry_seconds
        self.scheduler: AsyncIOScheduler | None = None
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="scheduler-leader")

    async def _pause(self) -> bool:
        """Sleep ``retry_seconds``; False when :meth:`stop` was called meanwhile."""
        try:
            async with asyncio.timeout(self.retry_seconds):
                await self._stopping.wait()
        except TimeoutError:
            return True
        return False

    async def _run(self) -> None:
        while not self._stopping.is_set():
            if not await self._elect():
                return
            try:
                self._start_scheduler()
                await self._hold()
            finally:
                await self._step_down()
            if not self._stopping.is_set():
                log.warning("scheduler lock lost; campaigning again")

    async def _elect(self) -> bool:
        """Wait until this process holds the lock (True) or is stopped (False)."""
        while not self._stopping.is_set():
            conn = None
            try:
                conn = await asyncpg.connect(db.plain_url(self.database_url))
                if await conn.fetchval("SELECT pg_try_advisory_lock($1)", LEADER_LOCK):
                    self._conn = conn
                    return True
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("scheduler election failed", extra={"error": str(exc)})
            if conn is not None:
                await _close(conn)
            if not await self._pause():
                return False
        return False

    async def _hold(self) -> None:
        """Return when the connection holding the lock is gone, or on :meth:`stop`."""
        assert self._conn is not None
        while await self._pause():
            try:
                async with asyncio.timeout(10):
                    await self._conn.fetchval("SELECT 1")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                return

    def _start_scheduler(self) -> None:
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        for j in self.jobs:
            self.scheduler.add_job(
                _guarded(j),
                j.trigger,
                id=j.name,
                name=j.name,
                replace_existing=True,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=3600,
                **j.kwargs,
            )
        self.scheduler.start()
        log.info("scheduler started in this process", extra={"jobs": [j.name for j in self.jobs]})

    async def _step_down(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        if self._conn is not None:
            await _close(self._conn)  # closing the session releases the advisory lock
            self._conn = None

    @property
    def is_leader(self) -> bool:
        return self.scheduler is not None

    async def stop(self) -> None:
        """Step down: the loops see the flag at their next pause (no task cancellation races)."""
        self._stopping.set()
        if self._task is not None:
            try:
                async with asyncio.timeout(15):
                    await asyncio.shield(self._task)
            except TimeoutError:
                self._task.cancel()
                log.warning("scheduler leader did not stop in time; cancelled")
            except Exception:
                log.exception("scheduler leader task failed")
        self._task = None
        await self._step_down()


async def _close(conn: asyncpg.Connection) -> None:
    try:
        async with asyncio.timeout(5):
            await conn.close()
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
        conn.terminate()


def _guarded(j: Job):
    async def run() -> None:
        try:
            result = await j.func()
            log.info("job done", extra={"job": j.name, "result": result})
        except Exception:
            log.exception("job failed", extra={"job": j.name})

    return run
