from tests.factories import make_operator
from tests.factories_points import enrol, ensure_rule, make_methodology, record, submit, user_headers


async def test_one_batch(client):
    await ensure_rule()
    btype = await make_methodology()
    op = await make_operator(client)
    u = await enrol(client, op)
    r = await submit(client, op, [record(u["external_user_id"], btype, quantity=12.4)])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["results"][0]["status"] == "accepted", body
    assert body["results"][0]["reduction_g"] == 579
    assert body["results"][0]["points"] == 57
    h = await user_headers(client, op, u["external_user_id"])
    acc = (await client.get("/v1/me/account", headers=h)).json()
    assert acc["balance"] == 57, acc
