from datetime import timedelta

import httpx
import pytest

from app.core import clock
from tests.factories import authority_token


@pytest.fixture(autouse=True)
def clock_back():
    """Tests move the clock past publicity periods; put it back after each."""
    yield
    clock.set_offset(timedelta(0))


@pytest.fixture(scope="session")
async def authority(app) -> str:
    """An authority token shared by the CER tests."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50002))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        return await authority_token(c)
