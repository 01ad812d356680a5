"""Test session: real embedded PostgreSQL and Redis in a temporary folder, migrated once.

Tests talk HTTP to the real app (``httpx.AsyncClient`` over ``ASGITransport``). Each test runs in
one database transaction rolled back at its end: the app's sessions are bound to that transaction's
connection and their commits become savepoints (:func:`_rolled_back`). Tests that need real commits
— concurrent requests (one connection cannot serve two at once), CLI commands or servers on other
threads and processes, chaos — are marked ``@pytest.mark.commits`` and make their own organisations,
people and items with unique names (see ``tests/factories.py``). Session- and module-scoped
fixtures are set up before the test's transaction begins, so what they make is committed.
Set ``CARBON_TEST_DATABASE_URL`` / ``CARBON_TEST_REDIS_URL`` to use external servers (an empty,
throw-away database).
"""

import asyncio
import atexit
import contextlib
import inspect
import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

_tmp = Path(tempfile.mkdtemp(prefix="carbon-test-"))
# removed by the servers fixture; this also removes the one xdist's controlling process makes (it starts none)
atexit.register(shutil.rmtree, _tmp, ignore_errors=True)
os.environ.update(
    {
        "CARBON_ENVIRONMENT": "test",
        "CARBON_DATA_DIR": str(_tmp),
        "CARBON_PUBLIC_BASE_URL": "http://test",
        "CARBON_SCHEDULER_ENABLED": "false",
        "CARBON_RATE_LIMIT_PER_MINUTE": "1000000",
        "CARBON_LOGIN_RATE_LIMIT_PER_MINUTE": "1000000",
        # every test person asks from loopback: the per-address code budget is set by the tests of it
        "CARBON_OTP_PER_IP_PER_HOUR": "1000000",
        "CARBON_LOG_LEVEL": "WARNING",
        # the public figures read fresh for each request: tests see their own changes (the tests of the kept
        # figures set their age themselves)
        "CARBON_PUBLIC_FIGURES_MAX_AGE_SECONDS": "0",
    }
)
for name in ("DATABASE_URL", "REDIS_URL"):
    os.environ.pop(f"CARBON_{name}", None)
    if os.environ.get(f"CARBON_TEST_{name}"):
        os.environ[f"CARBON_{name}"] = os.environ[f"CARBON_TEST_{name}"]

from app.core import callers, db, embedded, migrate  # noqa: E402
from app.core.config import get_settings  # noqa: E402
from app.main import create_app  # noqa: E402
from tests.factories import Statement  # noqa: E402


@pytest.fixture(scope="session")
def servers():
    settings = get_settings()
    urls = embedded.ensure_servers(settings.database_url, settings.redis_url, settings.data_dir)
    migrate.upgrade(urls.database_url)
    os.environ["CARBON_DATABASE_URL"] = urls.database_url
    os.environ["CARBON_REDIS_URL"] = urls.redis_url
    get_settings.cache_clear()
    yield urls
    embedded.stop_all(fast=True)  # throw-away data: no checkpoint, no save
    shutil.rmtree(_tmp, ignore_errors=True)


@pytest.fixture
async def own_database(servers):
    """A database of its own on the suite's server, migrated and empty (its plain URL), dropped afterwards: for
    tests that load tables to a size and analyse them, which the suite's shared database must not see."""
    import urllib.parse

    import asyncpg

    name = "own_database_check"
    url = db.plain_url(servers.database_url)
    admin = await asyncpg.connect(url)
    await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await admin.execute(f"CREATE DATABASE {name}")
    own = urllib.parse.urlsplit(servers.database_url)._replace(path=f"/{name}").geturl()
    try:
        await asyncio.to_thread(migrate.upgrade, own)
        yield db.plain_url(own)
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


@pytest.fixture(scope="session")
async def app(servers):
    application = create_app(get_settings())
    async with application.router.lifespan_context(application):
        yield application


ISOLATED = os.environ.get("CARBON_TEST_ISOLATION", "1") != "0"  # 0: every test commits (to debug one)


# Modules whose every test needs real commits, and why.
COMMITTING_MODULES = {
    "tests/chaos/test_chaos.py": "kills servers and backends under load",
    "tests/model/test_model_ledger.py": "concurrent requests and the expiry jobs' own sessions",
    "tests/fuzz/test_fuzz_api.py": "shares its cast of organisations across examples",
    "tests/fuzz/test_fuzz_bad_input.py": "shares its cast of organisations across examples",
    "tests/core/test_core_cli.py": "CLI commands run on other threads with their own engine",
    "tests/auth/test_auth_platform_keys.py": "rotates the platform key the whole app signs with",
    "tests/core/test_core_db.py": "checks commits and rollbacks themselves",
    "tests/core/test_core_errors.py": "a deferred constraint that fails at COMMIT",
    "tests/core/test_core_embedded.py": "starts servers",
    "tests/core/test_core_scheduler.py": "advisory locks held across connections",
    "tests/core/test_core_migrations.py": "reads the catalogue as migrated",
    "tests/mall/test_mall_concurrency.py": "concurrent orders",
    "tests/operators_sdk/test_sdk_cli_live.py": "a live server on another thread",
    "tests/points/test_points_cli.py": "CLI commands run on other threads with their own engine",
    "tests/scenes/test_scenes_cli.py": "CLI commands run on other threads with their own engine",
}


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "commits: the test needs real commits (concurrency, other threads or processes, live servers)",
    )


# A test whose own code runs requests side by side, or work on other threads, commits for real:
# one connection cannot serve two statements at once, and another thread has its own engine.
CONCURRENT = (
    "gather(",
    "TaskGroup",
    "create_task(",
    "to_thread(",
    "run_sync(",
    "client_at(",
    "asyncpg.connect(",
)


SIDE_BY_SIDE_FIXTURES = {"run_sync", "client_at", "live_server"}


def _runs_side_by_side(item) -> bool:
    if SIDE_BY_SIDE_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    try:
        source = inspect.getsource(item.function)
    except (OSError, TypeError):
        return False
    return any(hint in source for hint in CONCURRENT)


# Seconds each test file took in a full run on the reference machine (two cores). The slowest files
# start first, so neither worker idles at the end waiting for one long file. Refresh after adding
# slow tests: CARBON_RECORD_DURATIONS=1 python3 run.py test
DURATIONS = Path(__file__).with_name("durations.json")


def _file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = _file(item.nodeid)
        if path in COMMITTING_MODULES or path.startswith("tests/web/") or _runs_side_by_side(item):
            item.add_marker(pytest.mark.commits)
    seconds = json.loads(DURATIONS.read_text(encoding="utf-8")) if DURATIONS.exists() else {}
    counts = Counter(_file(item.nodeid) for item in items)
    # a file not measured yet counts half a second a test; the sort is stable, so a file's own
    # tests keep their order
    items.sort(
        key=lambda item: (
            -seconds.get(_file(item.nodeid), counts[_file(item.nodeid)] / 2),
            _file(item.nodeid),
        )
    )


_durations: Counter[str] = Counter()


def pytest_runtest_logreport(report):
    if os.environ.get("CARBON_RECORD_DURATIONS"):
        _durations[_file(report.nodeid)] += report.duration


def pytest_sessionfinish(session):
    if os.environ.get("CARBON_RECORD_DURATIONS") and not hasattr(session.config, "workerinput"):
        measured = {path: round(s, 1) for path, s in _durations.most_common()}
        DURATIONS.write_text(json.dumps(measured, indent=1) + "\n", encoding="utf-8")


class _OneAtATime:
    """Sessions on the test's one connection, one at a time: requests a factory sends side by side
    take turns (a connection runs one statement at a time). A session opened inside another would
    wait for ever, so it fails after a while, naming the fix."""

    def __init__(self, maker: async_sessionmaker) -> None:
        self.maker, self.turn = maker, asyncio.Lock()

    def __call__(self) -> "_Turn":
        return _Turn(self)


class _Turn:
    def __init__(self, sessions: _OneAtATime) -> None:
        self.sessions = sessions

    async def __aenter__(self):
        try:
            await asyncio.wait_for(self.sessions.turn.acquire(), timeout=30)
        except TimeoutError:
            raise RuntimeError(
                "a session waited 30 s for its turn: mark the test @pytest.mark.commits"
            ) from None
        self.session = self.sessions.maker()
        return await self.session.__aenter__()

    async def __aexit__(self, *exc):
        try:
            return await self.session.__aexit__(*exc)
        finally:
            self.sessions.turn.release()


@pytest.fixture(autouse=True)
async def _rolled_back(request):
    """The test's transaction, rolled back at its end (unless the test is marked ``commits``)."""
    if not ISOLATED or "app" not in request.fixturenames or request.node.get_closest_marker("commits"):
        yield
        return
    request.getfixturevalue("app")
    async with db.engine().connect() as conn:
        outer = await conn.begin()
        saved = db._sessionmaker
        db.direct_reads = False  # they would not see the test's transaction
        db._sessionmaker = _OneAtATime(  # type: ignore[assignment]
            async_sessionmaker(
                bind=conn, expire_on_commit=False, autoflush=False, join_transaction_mode="create_savepoint"
            )
        )
        try:
            yield
        finally:
            db._sessionmaker = saved
            db.direct_reads = True
            await outer.rollback()


@pytest.fixture
async def client(app):
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as c:
        yield c


@pytest.fixture(scope="session")
async def authority(app) -> str:
    """A token of an authority account, shared by the whole suite (made before any test's transaction)."""
    from tests.factories import authority_token

    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50002))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        return await authority_token(c)


@pytest.fixture
def settings(app, monkeypatch):
    """The live settings object; tests may monkeypatch its fields (restored afterwards)."""
    return get_settings()


@pytest.fixture
def run_sync():
    """Run blocking code (CLI commands) off the event loop."""

    async def _run(fn, *args, **kwargs):
        return await asyncio.to_thread(fn, *args, **kwargs)

    return _run


@pytest.fixture
def client_at(app):
    """``async with client_at("10.1.2.3") as c``: a client calling from another IP address."""

    def _make(ip: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(ip, 50000))
        return httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60)

    return _make


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
