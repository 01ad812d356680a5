from datetime import timedelta

import httpx
import pytest

from app.core import clock
from tests.factories_points import ensure_rule, make_methodology
from tests.web.helpers import HTML


@pytest.fixture
async def browser_client(app):
    """An in-process client that asks for HTML, as a browser does, and keeps cookies (the consent pages)."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50004))
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=HTML, timeout=60) as c:
        yield c


@pytest.fixture(scope="session")
async def btype(app) -> str:
    """The exchange rule and a behaviour type of these tests (1 km = 100 points)."""
    await ensure_rule()
    return await make_methodology(factor="1000")


@pytest.fixture(autouse=True)
def reset_clock():
    yield
    clock.freeze(None)
    clock.set_offset(timedelta(0))
