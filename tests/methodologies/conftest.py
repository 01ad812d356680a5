import httpx
import pytest

from app.core import db
from app.methodologies import catalogue
from tests.factories import authority_token


@pytest.fixture(scope="session", autouse=True)
async def shipped_catalogue(app):
    """The shipped catalogue, published before any test here (the exchange rule in force now)."""
    async with db.session_scope() as session:
        return await catalogue.load(session)


@pytest.fixture(scope="session")
async def authority(app) -> str:
    """An authority token shared by the tests of this folder."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        return await authority_token(c)
