import httpx
import pytest

from tests.web.helpers import HTML


@pytest.fixture
async def browser_client(app):
    """An in-process client that asks for HTML, as a browser does, and keeps cookies."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=HTML, timeout=60) as c:
        yield c
