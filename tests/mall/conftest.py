from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest

from app.core import clock
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
