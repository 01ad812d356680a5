"""Test session: real embedded PostgreSQL and Redis in a temporary folder, migrated once.

Tests talk HTTP to the real app (``httpx.AsyncClient`` over ``ASGITransport``). Requests commit
for real (concurrency tests need real transactions), so instead of rolling back, every test
makes its own organisations, people and items with unique names (see ``tests/factories.py``).
Set ``CARBON_TEST_DATABASE_URL`` / ``CARBON_TEST_REDIS_URL`` to use external servers (an empty,
throw-away database).
"""

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

import httpx
import pytest

_tmp = Path(tempfile.mkdtemp(prefix="carbon-test-"))
os.environ.update(
    {
        "CARBON_ENVIRONMENT": "test",
        "CARBON_DATA_DIR": str(_tmp),
        "CARBON_PUBLIC_BASE_URL": "http://test",
        "CARBON_SCHEDULER_ENABLED": "false",
        "CARBON_RATE_LIMIT_PER_MINUTE": "1000000",
        "CARBON_LOGIN_RATE_LIMIT_PER_MINUTE": "1000000",
        "CARBON_LOG_LEVEL": "WARNING",
    }
)
for name in ("DATABASE_URL", "REDIS_URL"):
    os.environ.pop(f"CARBON_{name}", None)
    if os.environ.get(f"CARBON_TEST_{name}"):
        os.environ[f"CARBON_{name}"] = os.environ[f"CARBON_TEST_{name}"]

from app.core import embedded, migrate  # noqa: E402
from app.core.config import get_settings  # noqa: E402
from app.main import create_app  # noqa: E402


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


@pytest.fixture(scope="session")
async def app(servers):
    application = create_app(get_settings())
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app):
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as c:
        yield c


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
