"""Concurrent reads of one kind made as one statement: the balance a city's people open their app for.

On a busy server many people ask for the same kind of row at once, and each statement costs PostgreSQL and
this process a round trip: a message written to the backend, the backend woken, its answer written back.
A :class:`Coalesced` read sends the first request's statement at once; requests that arrive while it runs
wait for the next statement, which reads all of theirs together (``= ANY`` of their keys). Under load one
round trip serves dozens of requests; a lone request waits for nobody.

Each statement is sent after every request it answers arrived, so it sees everything committed before any
of them was made: a person who spends and then opens their balance sees the spend. Only reads that see
nothing but committed data share a statement (:func:`app.core.db.reads_committed_apart`: a direct read's);
a read inside a transaction reads on its own, the same statement for its one key, on the transaction's
connection.
"""

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import db

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Fetch = Callable[[db.Conn, list[K]], Awaitable[Mapping[K, V]]]


class Coalesced(Generic[K, V]):
    """Reads by key, shared between the requests that wait at the same time.

    ``fetch(conn, keys)`` reads every key of ``keys`` (distinct) in one statement and answers a value for
    each, on a connection of :func:`app.core.db.shared_connection`'s pool. At most ``in_flight`` statements
    run at once in a process (that pool's size), each for at most ``most`` keys. A failed statement fails
    every request it was to answer, with its error.
    """

    def __init__(self, fetch: Fetch[K, V], *, in_flight: int = db.SHARED_CONNECTIONS, most: int = 256):
        self._fetch = fetch
        self._in_flight = in_flight
        self._most = most
        self._waiting: list[tuple[K, asyncio.Future[V]]] = []
        self._running = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def get(self, session: AsyncSession, key: K) -> V:
        """The value of ``key``: shared with the reads waiting at the same time if ``session`` is a direct
        read's, else read on the session's connection, in its transaction."""
        if not db.reads_committed_apart(session):
            return (await self._fetch(await db.raw_connection(session), [key]))[key]
        return await self._shared(key)

    async def _shared(self, key: K) -> V:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (a test's): what waited on the old one is gone
            self._loop, self._waiting, self._running, self._tasks = loop, [], 0, set()
        future: asyncio.Future[V] = loop.create_future()
        self._waiting.append((key, future))
        if self._running < self._in_flight:
            self._running += 1
            task = loop.create_task(self._drain())
            self._tasks.add(task)  # kept until done: the loop holds tasks only weakly
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[: self._most], self._waiting[self._most :]
                batch = [(key, future) for key, future in batch if not future.done()]  # cancelled requests
                if not batch:
                    continue
                try:
                    async with db.shared_connection() as conn:
                        values = await self._fetch(conn, list(dict.fromkeys(key for key, _ in batch)))
                except BaseException as exc:  # the statement's error, or this task cancelled (shutdown)
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc) if isinstance(exc, Exception) else future.cancel()
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for key, future in batch:
                    if not future.done():
                        future.set_result(values[key])
        finally:
            self._running -= 1
