"""Concurrent requests of one kind made as one statement: the balance a city's people open their app for, and
the orders of a lunch hour.

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

A :class:`Together` write is a whole change by itself, its own transaction (an order: its locks, its audit
entry, its stored response). Writes that arrive while a group's statement runs are sent together in the next
one statement, one transaction: one round trip and one commit for them all, each its own answer, as it would
have been alone. Only a write that would have run as a transaction of its own is sent together
(:func:`app.core.db.writes_apart`: a direct write's that has begun none); a group that fails is sent again a
write at a time, so each write fails only with its own error.
"""

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import db

log = logging.getLogger(__name__)

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

One = Callable[[db.Conn, T], Awaitable[V]]
Many = Callable[[db.Conn, list[K]], Awaitable[Mapping[K, V]]]
ManyInOrder = Callable[[db.Conn, list[T]], Awaitable[list[V]]]
Waiter = tuple[T, asyncio.Future[V]]


class _Waiting(Generic[T, V]):
    """Requests that wait to be sent together: the first is sent at once; those that arrive while ``in_flight``
    statements run wait for the next, at most ``most`` a statement (:meth:`_take`, :meth:`_send`)."""

    def __init__(self, *, in_flight: int, most: int):
        self._in_flight, self._most = in_flight, most
        self._waiting: list[Waiter[T, V]] = []
        self._running = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def _wait(self, item: T) -> V:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (a test's): what waited on the old one is gone
            self._loop, self._waiting, self._running, self._tasks = loop, [], 0, set()
        future: asyncio.Future[V] = loop.create_future()
        self._waiting.append((item, future))
        if self._running < self._in_flight:
            self._running += 1
            task = loop.create_task(self._drain())
            self._tasks.add(task)  # kept until done: the loop holds tasks only weakly
            task.add_done_callback(self._tasks.discard)
        return await future

    def _take(self) -> list[Waiter[T, V]]:
        """The next statement's requests, taken from those waiting: the first ``most`` still waited for."""
        batch, self._waiting = self._waiting[: self._most], self._waiting[self._most :]
        return [(item, future) for item, future in batch if not future.done()]  # cancelled requests

    async def _send(self, batch: list[Waiter[T, V]]) -> None:
        """Send ``batch`` and answer each of its futures."""
        raise NotImplementedError

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = self._take()
                if not batch:
                    continue
                try:
                    await self._send(batch)
                except BaseException as exc:  # no connection, the statement's error, or this task cancelled
                    for _, future in batch:
                        if future.done():
                            continue
                        if isinstance(exc, Exception):
                            future.set_exception(exc)
                        else:
                            future.cancel()
                    if not isinstance(exc, Exception):
                        raise
        finally:
            self._running -= 1


def _answer(future: asyncio.Future[V], value: V) -> None:
    if not future.done():
        future.set_result(value)


class Coalesced(_Waiting[K, V]):
    """Reads by key, shared between the requests that wait at the same time.

    ``one(conn, key)`` reads one key; ``many(conn, keys)`` reads every key of ``keys`` (distinct) in one
    statement and answers a value for each. Shared statements run on connections of
    :func:`app.core.db.shared_connection`'s pool, at most ``in_flight`` at once per process, each for at
    most ``most`` keys. A failed statement fails every request it was to answer, with its error.
    """

    def __init__(self, one: One[K, V], many: Many[K, V], *, in_flight: int = 2, most: int = 256):
        super().__init__(in_flight=in_flight, most=most)
        self._one, self._many = one, many

    async def get(self, session: AsyncSession, key: K) -> V:
        """The value of ``key``: shared with the reads waiting at the same time if ``session`` is a direct
        read's, else read on the session's connection (in its transaction, if one began:
        :func:`app.core.db.statement_connection`)."""
        if not db.reads_committed_apart(session):
            return await self._one(await db.statement_connection(session), key)
        return await self._wait(key)

    async def _send(self, batch: list[Waiter[K, V]]) -> None:
        keys = list(dict.fromkeys(key for key, _ in batch))
        async with db.shared_connection() as conn:
            values: Mapping[K, V]
            if len(keys) == 1:
                values = {keys[0]: await self._one(conn, keys[0])}
            else:
                values = await self._many(conn, keys)
        answers = [values[key] for key, _ in batch]  # a key the statement missed fails the whole batch
        for (_, future), answer in zip(batch, answers, strict=True):
            _answer(future, answer)


class Together(_Waiting[T, V]):
    """Writes that are each a whole transaction of one statement, sent together: those that arrive while a
    group's statement runs go together in the next.

    ``one(conn, w)`` runs one write; ``many(conn, group)`` runs a group (two or more) as one statement and
    answers each one's result in the group's order. Writes that share one of their ``keys`` never share a group:
    a write with a key of one waiting or in a group being sent runs alone at once, on its request's own
    connection (one Idempotency-Key's second write: alone, it finds the first's lock or record as it should).
    A group is sorted by ``order`` (the order it takes its locks in, the same in every group). A group whose
    statement fails (a deadlock detected, any error) is sent again one write at a time, each failing alone with
    its own error. Groups run on connections of :func:`app.core.db.together_connection`'s pool, at most
    ``in_flight`` at once per process, each of at most ``most`` writes.
    """

    def __init__(
        self,
        one: One[T, V],
        many: ManyInOrder[T, V],
        *,
        keys: Callable[[T], Iterable[Hashable]],
        order: Callable[[T], Any],
        in_flight: int = db.TOGETHER_CONNECTIONS,
        most: int = 16,
    ):
        super().__init__(in_flight=in_flight, most=most)
        self._one, self._many, self._keys, self._order = one, many, keys, order
        self._held: Counter[Hashable] = Counter()  # the keys of the writes waiting or being sent

    async def run(self, session: AsyncSession, write: T) -> V:
        """``write``'s result: sent together with the writes waiting at the same time if ``session`` is a direct
        write's that has begun no transaction and none of them has one of its keys, else run alone on the
        session's connection (:func:`app.core.db.statement_connection`: in the request's transaction, if one
        began)."""
        if db.writes_apart(session):
            if asyncio.get_running_loop() is not self._loop:  # a new event loop (a test's)
                self._held.clear()
            keys = set(self._keys(write))
            if not any(self._held[key] for key in keys):
                self._held.update(keys)
                try:
                    return await self._wait(write)
                finally:
                    self._held.subtract(keys)
                    for key in keys:
                        if self._held[key] <= 0:
                            del self._held[key]
        return await self._one(await db.statement_connection(session), write)

    def _take(self) -> list[Waiter[T, V]]:
        group = super()._take()
        group.sort(key=lambda waiter: self._order(waiter[0]))
        return group

    async def _send(self, group: list[Waiter[T, V]]) -> None:
        async with db.together_connection() as conn:
            if len(group) > 1:
                try:
                    results = await self._many(conn, [write for write, _ in group])
                except Exception:
                    log.warning("a group of %d writes failed; each is sent alone", len(group), exc_info=True)
                else:
                    for (_, future), result in zip(group, results, strict=True):
                        _answer(future, result)
                    return
            for write, future in group:
                try:
                    result = await self._one(conn, write)
                except Exception as exc:
                    if not future.done():
                        future.set_exception(exc)
                else:
                    _answer(future, result)
