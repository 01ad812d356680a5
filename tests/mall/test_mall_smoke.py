from tests.factories_mall import balance, item, ledger_violations, make_item, make_merchant, people, place


async def test_order_and_redeem(client, world):
    merchant = await make_merchant(client, world.authority)
    it = await make_item(client, merchant, points_price=120, stock=5)
    [p] = await people(client, world.operator, world.btype, 1, points=400)
    assert await balance(client, p) == 400
    r = await place(client, p, it["id"], 2)
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["points"] == 240
    assert await balance(client, p) == 160
    assert (await item(client, it["id"]))["stock"] == 3
    r = await client.post(f"/v1/merchant/vouchers/{order['voucher']['code']}/redeem", headers=merchant.headers)
    assert r.status_code == 200, r.text
    r = await client.post(f"/v1/merchant/vouchers/{order['voucher']['code']}/redeem", headers=merchant.headers)
    assert r.status_code == 409, r.text
    assert await ledger_violations() == []
