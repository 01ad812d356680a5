"""The database: async engine on asyncpg, sessions, and the raw connection for hot paths.

One request = one session = one transaction, committed by :class:`app.core.routing.CommitRoute`
before the response leaves. Services flush, never commit. Hot paths reach the asyncpg
connection of the *same* transaction with :func:`raw_connection`.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

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
    return create_async_engine(
        asyncpg_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        # No pre-ping (it costs three round trips a request): a connection that died with its server
        # fails one request, and SQLAlchemy then recycles every connection opened before it.
        pool_pre_ping=False,
        connect_args={"server_settings": {"timezone": "UTC", "application_name": "carbon-points"}},
    )


def init(url: str, pool_size: int = 20) -> AsyncEngine:
    global _engine, _sessionmaker
    _engine = create_engine(url, pool_size)
    _sessionmaker = async_sessionmaker(_engine, expire_on_commit=False, autoflush=False)
    return _engine


async def dispose() -> None:
    global _engine, _sessionmaker
    if _engine is not None:
        await _engine.dispose()
    _engine, _sessionmaker = None, None


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
READS_ONLY = "reads_only"
"""``session.info`` key: the session's raw statements run without a transaction (each its own)."""
"""The asyncpg connection of a session's transaction: what tier-2 repository functions take first."""


async def raw_connection(session: AsyncSession) -> Conn:
    """The asyncpg connection under ``session``, inside the session's open transaction.

    No round trip of its own: the first call of a transaction sends the ``BEGIN`` SQLAlchemy would
    have sent with the session's first statement; later calls cost nothing. A session marked
    :data:`READS_ONLY` (a route that only reads, see :class:`app.core.routing.CommitRoute`) begins
    none: each statement is its own transaction, and the request saves the ``BEGIN`` and ``COMMIT``
    round trips.
    """
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
