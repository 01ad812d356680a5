import sqlalchemy as sa

from app.core import db
from app.mall import demo
from tests.factories import login
from tests.factories_mall import people, place


async def load() -> list[str]:
    async with db.session_scope() as session:
        return await demo.load(session)


class TestDemo:
    async def test_a_newcomer_can_order_and_redeem_at_once(self, client, world):
        first = await load()
        again = await load()
        assert again[0].startswith("mall: demo merchant already there")
        async with db.session_scope() as session:
            merchant_id = (
                await session.execute(
                    sa.text("SELECT id FROM organizations WHERE credit_code = :c"),
                    {"c": demo.MERCHANT_CREDIT_CODE},
                )
            ).scalar_one()
        items = (await client.get("/v1/mall/items", params={"merchant_id": str(merchant_id)})).json()["items"]
        assert sorted(i["title"] for i in items) == sorted(d.title for d in demo.ITEMS)
        if first[0].startswith("merchant login"):
            assert any(items[0]["id"] in line for line in first)
        token = await login(client, *demo.MERCHANT)
        [buyer] = await people(client, world.operator, world.btype, 1, points=200)
        coffee = next(i for i in items if i["stock"] is None)
        r = await place(client, buyer, coffee["id"])
        assert r.status_code == 201, r.text
        r = await client.post(
            f"/v1/merchant/vouchers/{r.json()['voucher']['code']}/redeem",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 200, r.text
