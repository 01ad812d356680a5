import pytest

from app.core import db
from app.methodologies import catalogue


@pytest.fixture(scope="session", autouse=True)
async def shipped_catalogue(app):
    """The shipped catalogue, published before any test here (the exchange rule in force now)."""
    async with db.session_scope() as session:
        return await catalogue.load(session)
