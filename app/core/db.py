"""The database: async engine on asyncpg, sessions, and the raw connection for hot paths.

One request = one session = one transaction, committed by :class:`app.core.routing.CommitRoute`
before the response leaves. Services flush, never commit. Hot paths reach the asyncpg
connection of the *same* transaction with :func:`raw_connection`.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Self, cast

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION
metadata = SQLModel.metadata

_engine: AsyncEngine | None = None
_sessionmaker: async_sessionmaker[AsyncSession] | None = None
_direct: asyncpg.Pool | None = None
_shared: asyncpg.Pool | None = None
_direct_settings: tuple[str, int] | None = None
_direct_lock = asyncio.Lock()
SHARED_CONNECTIONS = 4
"""Connections of the pool that statements shared between requests run on (:func:`shared_connection`)."""
TOGETHER_CONNECTIONS = 2
"""Connections of the pool that writes sent together run on (:func:`together_connection`): the groups of orders
a process sends at once. Two rather than four: groups half as many and twice as large cost each spread order ~6 %
less CPU (docs/scaling.md)."""


DIRECT_POOL_SIZE = 8
"""The direct pool's connections in a process by default (``CARBON_DB_DIRECT_POOL_SIZE``): the statements of
balance reads and orders it runs at once. Each is taken by a request's first statement and given back when
the request ends, so a few keep a process's requests going; more make PostgreSQL's backends wait for each
other (the stock, the audit chains' heads) and switch between them, which costs CPU: on two cores an order
cost PostgreSQL ~12 % less with 8 a process than with 20, a hot item's attempt ~25 % less
(docs/scaling.md)."""

ACQUIRE_TIMEOUT_SECONDS = 30.0
"""How long a request waits for a direct connection before it is answered 503 ``database_unavailable`` (as
long as SQLAlchemy's pool waits for one of its own)."""


class DirectPoolTimeout(Exception):
    """No direct connection came free within :data:`ACQUIRE_TIMEOUT_SECONDS`: raised before the statement that
    needed it, so nothing of the request was done (:func:`app.core.errors.database_unavailable`)."""


def connections_per_process(pool_size: int, direct_pool_size: int = DIRECT_POOL_SIZE) -> int:
    """The most connections one server process opens: the ORM's pool and as many again in overflow, the
    direct pool (:func:`direct_connection`), the shared reads' pool, the pool of writes sent together, and one
    each for the sandbox clock, the callers' listener and the scheduler's lock."""
    return 2 * pool_size + direct_pool_size + SHARED_CONNECTIONS + TOGETHER_CONNECTIONS + 3


def budget_warning(
    available: int, workers: int, pool_size: int, direct_pool_size: int = DIRECT_POOL_SIZE
) -> str | None:
    """What to say when ``workers`` processes may open more connections than PostgreSQL gives (None if not)."""
    each = connections_per_process(pool_size, direct_pool_size)
    if workers * each <= available:
        return None
    fitting = max((available // workers - connections_per_process(0, direct_pool_size)) // 2, 1)
    return (
        f"PostgreSQL gives {available} connections; {workers} worker process(es) may open up to"
        f" {workers * each} ({each} each with CARBON_DB_POOL_SIZE={pool_size} and CARBON_DB_DIRECT_POOL_SIZE="
        f"{direct_pool_size}): under load, requests beyond it are answered 503 database_unavailable."
        f" Set CARBON_DB_POOL_SIZE={fitting} or raise max_connections."
    )


async def available_connections(url: str) -> int:
    """The connections PostgreSQL gives a role that is not a superuser."""
    conn = await asyncpg.connect(plain_url(url))
    try:
        value = await conn.fetchval(
            "SELECT current_setting('max_connections')::int"
            " - current_setting('superuser_reserved_connections')::int"
        )
    finally:
        await conn.close()
    return int(value)


def asyncpg_url(url: str) -> str:
    """``postgresql://…`` in any spelling → the SQLAlchemy asyncpg form."""
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url!r}")


def plain_url(url: str) -> str:
    """The libpq form asyncpg.connect() and psql understand."""
    return "postgresql://" + asyncpg_url(url)[len("postgresql+asyncpg://") :]


def create_engine(url: str, pool_size: int = 20) -> AsyncEngine:
    engine = create_async_engine(
        asyncpg_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        # No pre-ping (it costs three round trips a request): a connection the server ended is known closed
        # without one (_closed_is_gone); one that died unseen fails one request, and SQLAlchemy then recycles
        # every connection opened before it.
        pool_pre_ping=False,
        connect_args={"server_settings": {"timezone": "UTC", "application_name": "carbon-points"}},
    )
    sa.event.listen(engine.sync_engine, "checkout", _closed_is_gone)
    return engine


def _closed_is_gone(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """A pooled connection the server has ended (a restart, ``pg_terminate_backend``) is given to no request:
    asyncpg marks it closed as soon as the server's goodbye arrives, so checking costs no round trip, and the
    pool, told it is gone, takes another."""
    if dbapi_connection.driver_connection.is_closed():
        raise sa.exc.DisconnectionError("the server ended this connection")


def init(url: str, pool_size: int = 20, direct_pool_size: int = DIRECT_POOL_SIZE) -> AsyncEngine:
    global _engine, _sessionmaker, _direct, _shared, _together, _direct_settings
    _engine = create_engine(url, pool_size)
    _sessionmaker = async_sessionmaker(_engine, expire_on_commit=False, autoflush=False)
    _direct, _shared, _together = None, None, None  # opened on first use
    _direct_settings = (plain_url(url), direct_pool_size)
    return _engine


async def dispose() -> None:
    global _engine, _sessionmaker, _direct, _shared, _together, _direct_settings
    if _engine is not None:
        await _engine.dispose()
    for pool in (_direct, _shared, _together):
        if pool is not None:
            await pool.close()
    _engine, _sessionmaker, _direct, _shared, _together, _direct_settings = None, None, None, None, None, None


def engine() -> AsyncEngine:
    if _engine is None:
        raise RuntimeError("database not initialised")
    return _engine


def sessionmaker() -> async_sessionmaker[AsyncSession]:
    if _sessionmaker is None:
        raise RuntimeError("database not initialised")
    return _sessionmaker


@asynccontextmanager
async def session_scope() -> AsyncIterator[AsyncSession]:
    """A session committed once at the end (jobs, CLI commands), rolled back on error.

    Audit entries recorded on it are written just before the commit, as for a request.
    """
    from app.core import audit

    async with sessionmaker()() as session:
        try:
            yield session
            await audit.flush(session)
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


Conn = asyncpg.Connection
"""The asyncpg connection of a session's transaction: what tier-2 repository functions take first."""

READS_ONLY = "reads_only"
"""``session.info`` key: the session's raw statements run without a transaction (each its own)."""

DIRECT = "direct"
"""``session.info`` key: a :class:`DirectLease` whose plain asyncpg connection the session's raw statements
run on instead of the session's own."""


class DirectLease:
    """A plain pooled asyncpg connection for one request (:func:`direct_connection`), taken when a statement
    first needs it (a direct read whose caller is known and whose data comes from a shared statement takes
    none; an order takes it after its caller and its body are checked) and given back when the request ends
    (:func:`direct_lease`): checking who is asking holds no connection."""

    __slots__ = ("_conn", "_taken")

    def __init__(self) -> None:
        self._conn: Conn | None = None
        self._taken: Any = None

    async def connection(self) -> Conn:
        if self._conn is None:
            taken = direct_connection()  # entered here, left by release(): the request's end
            conn = await taken.__aenter__()
            assert conn is not None  # a lease is made only while direct_reads is on
            self._taken, self._conn = taken, conn
        return self._conn

    async def release(self) -> None:
        taken, self._taken, self._conn = self._taken, None, None
        if taken is not None:
            await taken.__aexit__(None, None, None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()


class DirectTransaction(DirectLease):
    """A direct write's connection (:class:`app.core.routing.DirectWriteRoute`): its transaction begins with
    the first statement that needs one (:func:`raw_connection`); a statement that needs none of the request's
    (:func:`statement_connection`: a read, or a write that is a whole change by itself) runs before that on
    its own. A request whose one write is such a statement sends neither ``BEGIN`` nor ``COMMIT``."""

    __slots__ = ("_transaction",)

    def __init__(self) -> None:
        super().__init__()
        self._transaction: Any = None

    async def connection(self) -> Conn:
        conn = await super().connection()
        if self._transaction is None:
            self._transaction = conn.transaction()
            await self._transaction.start()
        return conn

    def apart_still(self) -> bool:
        """Whether the request's transaction has not begun: a statement may still run outside it."""
        return self._transaction is None

    async def apart(self) -> Conn | None:
        """The connection outside any transaction, or None once the request's transaction began."""
        return None if self._transaction is not None else await super().connection()

    async def commit(self) -> None:
        if self._transaction is not None:
            await self._transaction.commit()

    async def rollback(self) -> None:
        if self._transaction is not None:
            await self._transaction.rollback()


async def statement_connection(session: AsyncSession) -> Conn:
    """The connection for a statement that needs no transaction of the request's: a read, or a write that is a
    whole change by itself (its own locks, audit entry and stored response: an order, ``mall_order_request``).
    On a direct write that has begun no transaction, the connection outside any (the statement is its own
    transaction; a read sees what it would have seen inside, at read committed); otherwise
    :func:`raw_connection`'s, inside the request's transaction, with what it wrote before."""
    lease = session.info.get(DIRECT)
    if isinstance(lease, DirectTransaction):
        conn = await lease.apart()
        if conn is not None:
            return conn
    return await raw_connection(session)


async def raw_connection(session: AsyncSession) -> Conn:
    """The asyncpg connection under ``session``, inside the session's open transaction.

    No round trip of its own: the first call of a transaction sends the ``BEGIN`` SQLAlchemy would
    have sent with the session's first statement; later calls cost nothing. A session marked
    :data:`READS_ONLY` (a route that only reads, see :class:`app.core.routing.CommitRoute`) begins
    none: each statement is its own transaction, and the request saves the ``BEGIN`` and ``COMMIT``
    round trips. A session given a :data:`DIRECT` connection (:class:`app.core.routing.DirectReadRoute`)
    runs its raw statements on that one, without SQLAlchemy's connection at all.
    """
    lease = session.info.get(DIRECT)
    if lease is not None:
        return await lease.connection()
    fairy = await (await session.connection()).get_raw_connection()
    if not session.info.get(READS_ONLY):
        await _begin_now(fairy.dbapi_connection)
    return cast(Conn, fairy.driver_connection)


async def _begin_now(adapted: Any) -> None:
    """Begin the asyncpg transaction SQLAlchemy's adapter would begin on the session's first statement.

    SQLAlchemy's asyncpg adapter begins its transaction lazily, with the first statement it runs
    itself; a raw statement sent before that would run in autocommit, outside the session's
    transaction. SQLAlchemy has no public call to begin it now, so this — and only this — touches the
    adapter's private ``_transaction`` / ``_start_transaction`` (``AsyncAdapt_asyncpg_connection``;
    ``tests/core/test_core_db.py`` fails if a SQLAlchemy release changes them).
    """
    if adapted._transaction is None:
        await adapted._start_transaction()


async def ping() -> None:
    """One round trip to PostgreSQL on a pooled connection (readiness)."""
    async with engine().connect() as conn:
        await conn.execute(sa.text("SELECT 1"))


async def advisory_xact_lock(session: AsyncSession, key: int) -> None:
    """Wait for the transaction-scoped advisory lock ``key`` (released at commit or rollback)."""
    await session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


async def _direct_codecs(conn: Conn) -> None:
    """JSON as SQLAlchemy's asyncpg dialect sets it on its connections: raw statements read and write
    ``json`` / ``jsonb`` the same way on either kind of connection."""
    await conn.set_type_codec(
        "json",
        encoder=str.encode,
        decoder=lambda b: json.loads(b.decode()),
        schema="pg_catalog",
        format="binary",
    )
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda s: b"\x01" + s.encode(),
        decoder=lambda b: json.loads(b[1:].decode()),
        schema="pg_catalog",
        format="binary",
    )


async def _no_reset(conn: Conn) -> None:
    """A direct connection comes back as it left: autocommit reads set nothing to reset (a transaction
    left open is rolled back by asyncpg before this)."""


async def _plain_pool(size: int, **settings: str) -> asyncpg.Pool:
    if _direct_settings is None:
        raise RuntimeError("database not initialised")
    return await asyncpg.create_pool(
        _direct_settings[0],
        min_size=0,
        max_size=size,
        init=_direct_codecs,
        reset=_no_reset,
        server_settings={"timezone": "UTC", "application_name": "carbon-points", **settings},
    )


async def _direct_pool() -> asyncpg.Pool:
    global _direct
    if _direct is None:
        async with _direct_lock:
            if _direct is None:
                _direct = await _plain_pool(_direct_settings[1] if _direct_settings else 0)
    return _direct


SHARED_PLANS = {
    "plan_cache_mode": "force_generic_plan",
    "enable_seqscan": "off",
    "enable_hashjoin": "off",
    "enable_mergejoin": "off",
}
"""How the shared pool's connections plan: once a statement, for any number of keys, and always as a lookup of each
key through an index (a nested loop). A shared statement reads an array of keys, whose length a plan made once
cannot know (PostgreSQL guesses ten); left to choose, it may hash or scan a table for a long array or a small
table. Planned for each statement's own keys instead, planning cost ~120–250 µs of PostgreSQL's CPU a statement,
more than reading a dozen people's balances (docs/scaling.md, "Shared statements planned once")."""


async def _shared_pool() -> asyncpg.Pool:
    global _shared
    if _shared is None:
        async with _direct_lock:
            if _shared is None:
                _shared = await _plain_pool(SHARED_CONNECTIONS, **SHARED_PLANS)
    return _shared


_together: asyncpg.Pool | None = None


async def _together_pool() -> asyncpg.Pool:
    global _together
    if _together is None:
        async with _direct_lock:
            if _together is None:
                _together = await _plain_pool(TOGETHER_CONNECTIONS)
    return _together


@asynccontextmanager
async def together_connection() -> AsyncIterator[Conn]:
    """A connection for a group of writes sent together (:class:`app.core.coalesce.Together`), from a pool of its
    own: a request waiting for its group may hold a direct or a shared connection, so the group never waits for
    those. Answered like the direct pool when none comes free in time."""
    async with _acquired(await _together_pool(), "connection for writes sent together") as conn:
        yield conn


@asynccontextmanager
async def _acquired(pool: asyncpg.Pool, what: str) -> AsyncIterator[Conn]:
    """A connection of ``pool``, given back at the end; :class:`DirectPoolTimeout` when none comes free within
    :data:`ACQUIRE_TIMEOUT_SECONDS`."""
    try:  # not acquire(timeout=…): asyncpg would run the acquire, and the release, as tasks of their own
        async with asyncio.timeout(ACQUIRE_TIMEOUT_SECONDS):
            conn = await pool.acquire()
    except TimeoutError as exc:
        raise DirectPoolTimeout(f"no {what} came free in {ACQUIRE_TIMEOUT_SECONDS} s") from exc
    try:
        yield cast(Conn, conn)  # a pool's proxy: every Connection method, forwarded
    finally:
        await pool.release(conn)


direct_reads = True
"""False while every session is bound to one connection (a test's transaction, rolled back at its end):
:func:`direct_connection` then gives none, direct reads run on the session's connection and direct writes
take the ordinary route (:class:`app.core.routing.DirectWriteRoute`)."""


@asynccontextmanager
async def direct_connection() -> AsyncIterator[Conn | None]:
    """A pooled plain asyncpg connection, outside SQLAlchemy: for the reads made on every app open and the
    orders of a lunch hour, where an ORM session's bookkeeping would cost more than the statements
    (:class:`app.core.routing.DirectReadRoute`, :class:`app.core.routing.DirectWriteRoute`). None when
    :data:`direct_reads` is off."""
    if not direct_reads:
        yield None
        return
    async with _acquired(await _direct_pool(), "direct connection") as conn:
        yield conn


@asynccontextmanager
async def shared_connection() -> AsyncIterator[Conn]:
    """A plain asyncpg connection for a statement shared between requests (:mod:`app.core.coalesce`), from
    a pool of its own: a request may hold a direct connection while it waits for a shared statement, so
    the two never wait for each other's connections."""
    async with (await _shared_pool()).acquire() as conn:
        yield cast(Conn, conn)


IDLE_SESSIONS = 64
"""The most untouched sessions a process keeps for its direct routes (:func:`carrier_session`)."""
_idle_sessions: list[AsyncSession] = []
_idle_maker: async_sessionmaker[AsyncSession] | None = None


@asynccontextmanager
async def carrier_session() -> AsyncIterator[AsyncSession]:
    """A session for a direct route, which uses it to carry ``info`` (the request's lease or connection, a
    deferred Idempotency-Key, audit entries) and no ORM: one an earlier request gave back untouched, or a
    new one. Given back if this request left it untouched too (no ORM transaction began, no object in it),
    with its ``info`` emptied; otherwise closed, as ``async with`` a new session would. Making a session and
    closing it was ~6 % of a balance read's CPU. A session of another sessionmaker is never given out; while
    :data:`direct_reads` is off, each request has a session of its own, as ``async with`` it."""
    global _idle_maker
    maker = sessionmaker()
    if not direct_reads:  # every session is bound to one connection (a test's) and used through the ORM
        async with maker() as made:
            yield made
        return
    if _idle_maker is not maker:
        _idle_sessions.clear()
        _idle_maker = maker
    session = _idle_sessions.pop() if _idle_sessions else maker()
    try:
        yield session
    finally:
        untouched = not (
            session.in_transaction()
            or session.identity_map
            or session.new
            or session.dirty
            or session.deleted
        )
        if untouched and len(_idle_sessions) < IDLE_SESSIONS:
            session.info.clear()
            _idle_sessions.append(session)
        else:
            await session.close()


@asynccontextmanager
async def direct_lease() -> AsyncIterator[DirectLease | None]:
    """A :class:`DirectLease` for a direct read, given back at the end; None when :data:`direct_reads` is
    off."""
    if not direct_reads:
        yield None
        return
    async with DirectLease() as lease:
        yield lease


def writes_apart(session: AsyncSession) -> bool:
    """Whether the session is a direct write's that has begun no transaction: a statement that is a whole change
    by itself (its own locks, audit entry and stored response: an order) runs as its own transaction on a
    connection that is not the request's, and may be sent together with other requests' in one statement
    (:class:`app.core.coalesce.Together`): nothing of the request's own would be missed or left uncommitted."""
    lease = session.info.get(DIRECT)
    return isinstance(lease, DirectTransaction) and lease.apart_still()


def reads_committed_apart(session: AsyncSession) -> bool:
    """Whether the session is a direct read's: its statements run each on its own, on a connection that is
    not the session's, and see what is committed when they start. Such a read may share its statement with
    other requests' (:mod:`app.core.coalesce`): nothing of its own transaction could be missed."""
    return session.info.get(READS_ONLY, False) and isinstance(session.info.get(DIRECT), DirectLease)
