"""Concurrent reads of one kind made as one statement: the balance a city's people open their app for.

On a busy server many people ask for the same kind of row at once, and each statement costs PostgreSQL and
this process a round trip: a message written to the backend, the backend woken, its answer written back.
A :class:`Coalesced` read sends the first request's statement at once; requests that arrive while it runs
wait for the next statement, which reads all of theirs together (``unnest`` of their keys). Under load one
round trip serves dozens of requests; a lone request waits for nobody and is read with the statement
planned for one key.

Each statement is sent after every request it answers arrived, so it sees everything committed before any
of them was made: a person who spends and then opens their balance sees the spend. Only reads that see
nothing but committed data share a statement (:func:`app.core.db.reads_committed_apart`: a direct read's);
a read inside a transaction reads on its own, with the statement for one key, on the transaction's
connection.
"""

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import db

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

One = Callable[[db.Conn, K], Awaitable[V]]
Many = Callable[[db.Conn, list[K]], Awaitable[Mapping[K, V]]]


class Coalesced(Generic[K, V]):
    """Reads by key, shared between the requests that wait at the same time.

    ``one(conn, key)`` reads one key; ``many(conn, keys)`` reads every key of ``keys`` (distinct) in one
    statement and answers a value for each. Shared statements run on connections of
    :func:`app.core.db.shared_connection`'s pool, at most ``in_flight`` at once per process, each for at
    most ``most`` keys. A failed statement fails every request it was to answer, with its error.
    """

    def __init__(self, one: One[K, V], many: Many[K, V], *, in_flight: int = 2, most: int = 256):
        self._one, self._many = one, many
        self._in_flight = in_flight
        self._most = most
        self._waiting: list[tuple[K, asyncio.Future[V]]] = []
        self._running = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def get(self, session: AsyncSession, key: K) -> V:
        """The value of ``key``: shared with the reads waiting at the same time if ``session`` is a direct
        read's, else read on the session's connection (in its transaction, if one began:
        :func:`app.core.db.statement_connection`)."""
        if not db.reads_committed_apart(session):
            return await self._one(await db.statement_connection(session), key)
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
                    keys = list(dict.fromkeys(key for key, _ in batch))
                    async with db.shared_connection() as conn:
                        values: Mapping[K, V]
                        if len(keys) == 1:
                            values = {keys[0]: await self._one(conn, keys[0])}
                        else:
                            values = await self._many(conn, keys)
                    answers = [values[key] for key, _ in batch]
                except BaseException as exc:  # the statement's error, or this task cancelled (shutdown)
                    for _, future in batch:
                        if future.done():
                            continue
                        if isinstance(exc, Exception):
                            future.set_exception(exc)
                        else:
                            future.cancel()
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, future), answer in zip(batch, answers, strict=True):
                    if not future.done():
                        future.set_result(answer)
        finally:
            self._running -= 1
