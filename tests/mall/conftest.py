import contextlib
from dataclasses import dataclass
from datetime import timedelta
from typing import NamedTuple

import httpx
import pytest

from app.core import callers, clock, db
from tests.factories import Org, authority_token, make_operator
from tests.factories_points import ensure_rule, make_methodology


@dataclass
class World:
    authority: str
    operator: Org
    btype: str


@pytest.fixture(scope="session")
async def world(app) -> World:
    """The exchange rule, a behaviour type (1 km = 100 points) and an operator shared by the mall tests."""
    await ensure_rule()
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50002))
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as c:
        authority = await authority_token(c)
        operator = await make_operator(c, authority)
        btype = await make_methodology(factor="1000")
    return World(authority, operator, btype)


@pytest.fixture(autouse=True)
def reset_clock():
    yield
    clock.freeze(None)
    clock.set_offset(timedelta(0))


class Statement(NamedTuple):
    query: str
    args: tuple


@pytest.fixture
def sent(monkeypatch) -> list[Statement]:
    """The statements sent on the direct path's connections, on those of orders sent together and on those of
    reads shared between requests, with their arguments, as asyncpg logs them; its own look-ups aside (a type's,
    a new connection's JIT setting)."""
    statements: list[Statement] = []

    def log(record) -> None:
        if "typeinfo" not in record.query and "'jit'" not in record.query:
            statements.append(Statement(record.query, tuple(record.args or ())))

    def logging(acquire):
        @contextlib.asynccontextmanager
        async def logged():
            async with acquire() as conn:
                conn.add_query_logger(log)
                try:
                    yield conn
                finally:
                    conn.remove_query_logger(log)

        return logged

    for pool in ("direct_connection", "together_connection", "shared_connection"):
        monkeypatch.setattr(db, pool, logging(getattr(db, pool)))
    return statements


@pytest.fixture
def deaf(monkeypatch) -> None:
    """This process hears no standing change: a caller's standing, once read, stays kept for the test, and what
    the test makes it forget (``callers.standing_changed()``) stays forgotten. (The notification of an earlier
    test's committed change may be heard at any moment and make the next request read its caller again.)"""
    monkeypatch.setattr(callers, "_heard", lambda payload: None)
