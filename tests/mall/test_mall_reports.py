import csv
import io
from datetime import timedelta

from app.core import clock
from tests.factories import bearer, make_operator
from tests.factories_mall import make_item, make_merchant, people, place


async def report(client, path, headers, **params):
    return await client.get(path, params=params, headers=headers)


def day_params(**extra) -> dict:
    today = clock.today().isoformat()
    return {"from": today, "to": today, **extra}


class TestUsedPoints:
    async def test_merchant_operator_and_platform_views(self, client, world):
        merchant, other_merchant = (
            await make_merchant(client, world.authority),
            await make_merchant(client, world.authority),
        )
        operator = await make_operator(client, world.authority)
        [buyer] = await people(client, operator, world.btype, 1, points=400)
        it = await make_item(client, merchant, points_price=40)
        elsewhere = await make_item(client, other_merchant, points_price=15)
        kept = (await place(client, buyer, it["id"], 2)).json()
        dropped = (await place(client, buyer, it["id"])).json()
        await place(client, buyer, elsewhere["id"])
        assert (
            await client.post(f"/v1/me/orders/{dropped['id']}/cancel", headers=buyer.headers)
        ).status_code == 200
        r = await client.post(
            "/v1/me/operator-redemptions",
            headers=buyer.headers,
            json={"operator_order_id": "shop-1", "points": 25, "description": "umbrella"},
        )
        assert r.status_code == 201
        await client.post(
            "/v1/me/operator-redemptions",
            headers=buyer.headers,
            json={"operator_order_id": "shop-2", "points": 10},
        )
        assert (
            await client.post("/v1/operator/redemptions/shop-2/reverse", headers=operator.headers)
        ).status_code == 200
        day = clock.today().isoformat()

        r = await report(client, "/v1/merchant/reports/used-points", merchant.headers, **day_params())
        assert r.status_code == 200, r.text
        assert r.json()["rows"] == [
            {
                "day": day,
                "merchant_id": merchant.id,
                "orders": 2,
                "points_used": 120,
                "points_refunded": 40,
                "net_points": 80,
            }
        ]
        assert r.json()["totals"] == {
            "orders": 2,
            "points_used": 120,
            "points_refunded": 40,
            "net_points": 80,
        }
        assert (r.json()["group_by"], r.json()["from"], r.json()["to"]) == ("merchant", day, day)
        assert kept["points"] == 80

        r = await report(client, "/v1/operator/reports/used-points", operator.headers, **day_params())
        assert r.json()["rows"] == [
            {
                "day": day,
                "operator_id": operator.id,
                "orders": 2,
                "points_used": 35,
                "points_refunded": 10,
                "net_points": 25,
            }
        ]

        authority = bearer(world.authority)
        r = await report(client, "/v1/reports/used-points", authority, **day_params(group_by="merchant"))
        rows = {row["merchant_id"]: row for row in r.json()["rows"]}
        assert rows[merchant.id]["net_points"] == 80
        assert rows[other_merchant.id] == {
            "day": day,
            "merchant_id": other_merchant.id,
            "orders": 1,
            "points_used": 15,
            "points_refunded": 0,
            "net_points": 15,
        }
        r = await report(client, "/v1/reports/used-points", authority, **day_params(group_by="operator"))
        assert {row["operator_id"]: row["net_points"] for row in r.json()["rows"]}[operator.id] == 25

    async def test_csv(self, client, world):
        merchant = await make_merchant(client, world.authority)
        [buyer] = await people(client, world.operator, world.btype, 1, points=100)
        it = await make_item(client, merchant, points_price=30)
        await place(client, buyer, it["id"], 3)
        r = await report(
            client, "/v1/merchant/reports/used-points", merchant.headers, **day_params(format="csv")
        )
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/csv; charset=utf-8"
        assert r.headers["content-disposition"].startswith('attachment; filename="used-points-merchant-')
        assert list(csv.reader(io.StringIO(r.text))) == [
            ["day", "merchant_id", "orders", "points_used", "points_refunded", "net_points"],
            [clock.today().isoformat(), merchant.id, "1", "90", "0", "90"],
        ]

    async def test_each_sees_its_own_and_periods_are_checked(self, client, world):
        merchant = await make_merchant(client, world.authority)
        r = await report(client, "/v1/merchant/reports/used-points", merchant.headers, **day_params())
        assert r.json()["rows"] == []
        r = await report(client, "/v1/reports/used-points", merchant.headers, **day_params())
        assert (r.status_code, r.json()["code"]) == (403, "forbidden_role")
        r = await report(client, "/v1/operator/reports/used-points", merchant.headers, **day_params())
        assert (r.status_code, r.json()["code"]) == (403, "forbidden_role")
        today = clock.today()
        bad = [
            {"from": today.isoformat(), "to": (today - timedelta(days=1)).isoformat()},
            {"from": (today - timedelta(days=366)).isoformat(), "to": today.isoformat()},
        ]
        for params in bad:
            r = await report(client, "/v1/merchant/reports/used-points", merchant.headers, **params)
            assert (r.status_code, r.json()["code"]) == (422, "invalid_period")
        r = await report(client, "/v1/merchant/reports/used-points", merchant.headers, to=today.isoformat())
        assert (r.status_code, r.json()["code"]) == (422, "validation_error")
        r = await report(
            client, "/v1/reports/used-points", bearer(world.authority), **day_params(group_by="item")
        )
        assert (r.status_code, r.json()["code"]) == (422, "validation_error")
