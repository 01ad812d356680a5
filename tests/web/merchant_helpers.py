"""Helpers of the merchant pages' tests: a merchant with an item, and people holding its vouchers."""

from dataclasses import dataclass

import httpx

from tests.factories import Org, authority_token, make_operator
from tests.factories_mall import Person, make_item, make_merchant, people, place
from tests.factories_points import ensure_rule, make_methodology


@dataclass
class MallWorld:
    authority: str
    operator: Org
    btype: str


async def mall_world(app) -> MallWorld:
    """The exchange rule, a behaviour type (1 km = 100 points) and an operator."""
    await ensure_rule()
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50003))
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as c:
        authority = await authority_token(c)
        operator = await make_operator(c, authority)
        btype = await make_methodology(factor="1000")
    return MallWorld(authority, operator, btype)


@dataclass
class Shop:
    merchant: Org
    item: dict
    buyer: Person


async def shop(client: httpx.AsyncClient, world: MallWorld, **item) -> Shop:
    """An approved merchant with an item of 50 points, and a person with 200 points to spend."""
    merchant = await make_merchant(client, world.authority)
    listed = await make_item(client, merchant, **{"points_price": 50, "stock": None, **item})
    [buyer] = await people(client, world.operator, world.btype, 1, points=200)
    return Shop(merchant, listed, buyer)


async def voucher(client: httpx.AsyncClient, s: Shop, quantity: int = 1) -> dict:
    """An order of the shop's item; its voucher code is ``order["voucher"]["code"]``."""
    r = await place(client, s.buyer, s.item["id"], quantity)
    assert r.status_code == 201, r.text
    return r.json()
