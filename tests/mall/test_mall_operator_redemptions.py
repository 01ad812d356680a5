import asyncio
import uuid
from datetime import timedelta

import pytest

from app.core import clock
from tests.factories import make_operator, unique
from tests.factories_mall import balance, entries, fund, ledger_violations, make_merchant, people
from tests.factories_points import enrol, user_headers


def body(order_id: str | None = None, points: int = 120, description: str = "a tote bag") -> dict:
    return {"operator_order_id": order_id or unique("op-order"), "points": points, "description": description}


async def redeem(client, person, payload):
    return await client.post("/v1/me/operator-redemptions", json=payload, headers=person.headers)


async def reverse(client, operator, order_id):
    return await client.post(f"/v1/operator/redemptions/{order_id}/reverse", headers=operator.headers)


@pytest.fixture
async def member(client, world):
    [person] = await people(client, world.operator, world.btype, 1, points=400)
    return person


class TestRedemption:
    async def test_points_used_in_the_operators_mall_are_spent_here(self, client, world, member):
        payload = body(points=120)
        r = await redeem(client, member, payload)
        assert r.status_code == 201, r.text
        got = r.json()
        assert {
            k: got[k]
            for k in (
                "operator_id",
                "operator_order_id",
                "user_id",
                "points",
                "description",
                "status",
                "reversed_at",
            )
        } == {
            "operator_id": world.operator.id,
            "operator_order_id": payload["operator_order_id"],
            "user_id": member.user_id,
            "points": 120,
            "description": "a tote bag",
            "status": "completed",
            "reversed_at": None,
        }
        assert await balance(client, member) == 280
        assert (await entries(member.user_id))[-1] == ("redeem", -120, 280)
        assert await ledger_violations() == []

    async def test_a_repeat_returns_the_first_result(self, client, member):
        payload = body(points=50)
        first = await redeem(client, member, payload)
        again = await redeem(client, member, payload)
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json() == first.json()
        assert await balance(client, member) == 350
        r = await redeem(client, member, {**payload, "points": 60})
        assert (r.status_code, r.json()["code"]) == (409, "operator_order_conflict")

    async def test_concurrent_repeats_spend_once(self, client, member):
        payload = body(points=70)
        responses = await asyncio.gather(*[redeem(client, member, payload) for _ in range(6)])
        assert sorted(r.status_code for r in responses) == [200, 200, 200, 200, 200, 201]
        assert len({r.json()["id"] for r in responses}) == 1
        assert await balance(client, member) == 330

    async def test_the_order_id_belongs_to_the_operator(self, client, world, member):
        payload = body(points=10)
        assert (await redeem(client, member, payload)).status_code == 201
        [someone] = await people(client, world.operator, world.btype, 1, points=100)
        r = await redeem(client, someone, payload)
        assert (r.status_code, r.json()["code"]) == (409, "operator_order_conflict")
        other = await make_operator(client, world.authority)  # the same person, through another operator
        enrolled = await enrol(client, other, external_user_id=unique("u"))
        assert enrolled["user_id"] != member.user_id  # another phone number: another person
        other_member = type(member)(
            enrolled["external_user_id"],
            enrolled["user_id"],
            await user_headers(client, other, enrolled["external_user_id"]),
            other,
        )
        await fund(client, other, world.btype, [other_member], 50)
        r = await redeem(client, other_member, payload)
        assert (r.status_code, r.json()["operator_id"]) == (201, other.id)

    async def test_refusals_change_nothing(self, client, world, member):
        cases = [
            (body(points=401), 409, "insufficient_points"),
            (body(points=0), 422, "invalid_points"),
            (body(points=-5), 422, "invalid_points"),
            (body(points=10**10), 422, "invalid_points"),
            ({**body(), "operator_order_id": ""}, 422, "validation_error"),
            ({**body(), "operator_order_id": "has space"}, 422, "validation_error"),
        ]
        for payload, status, code in cases:
            r = await redeem(client, member, payload)
            assert (r.status_code, r.json()["code"]) == (status, code), (payload, r.text)
        assert await balance(client, member) == 400
        short = body(points=401)
        assert (await redeem(client, member, short)).status_code == 409
        await fund(client, world.operator, world.btype, [member], 50)  # the same order id works once funded
        assert (await redeem(client, member, short)).status_code == 201
        r = await client.post("/v1/me/operator-redemptions", json=body(), headers=world.operator.headers)
        assert (r.status_code, r.json()["code"]) == (403, "forbidden_role")


class TestReversal:
    async def test_the_operator_reverses_within_the_window_once(self, client, world, member):
        payload = body(points=150)
        created = (await redeem(client, member, payload)).json()
        r = await reverse(client, world.operator, payload["operator_order_id"])
        assert r.status_code == 200, r.text
        assert (r.json()["id"], r.json()["status"]) == (created["id"], "reversed")
        assert await balance(client, member) == 400
        assert (await entries(member.user_id))[-2:] == [("redeem", -150, 250), ("refund", 150, 400)]
        r = await reverse(client, world.operator, payload["operator_order_id"])
        assert (r.status_code, r.json()["code"]) == (409, "redemption_already_reversed")
        assert await balance(client, member) == 400
        again = await redeem(client, member, payload)
        assert (again.status_code, again.json()["status"]) == (200, "reversed")
        assert await ledger_violations() == []

    async def test_not_after_the_window_nor_by_another_operator(self, client, world, member, settings):
        payload = body(points=100)
        created = (await redeem(client, member, payload)).json()
        other = await make_operator(client, world.authority)
        r = await reverse(client, other, payload["operator_order_id"])
        assert (r.status_code, r.json()["code"]) == (404, "redemption_not_found")
        r = await reverse(client, world.operator, "never-placed")
        assert (r.status_code, r.json()["code"]) == (404, "redemption_not_found")
        assert settings.operator_redemption_reversal_days == 7
        assert created["reversible_until"] > created["created_at"]
        clock.set_offset(timedelta(days=7, seconds=1))
        r = await reverse(client, world.operator, payload["operator_order_id"])
        assert (r.status_code, r.json()["code"]) == (409, "reversal_window_closed")
        assert await balance(client, member) == 300
        merchant = await make_merchant(client, world.authority)
        r = await reverse(client, merchant, payload["operator_order_id"])
        assert (r.status_code, r.json()["code"]) == (403, "forbidden_role")

    async def test_the_operator_lists_its_own(self, client, world, member):
        ids = [(await redeem(client, member, body(points=5))).json()["id"] for _ in range(3)]
        r = await client.get("/v1/operator/redemptions", params={"limit": 2}, headers=world.operator.headers)
        first = r.json()
        r = await client.get(
            "/v1/operator/redemptions",
            params={"limit": 200, "cursor": first["next_cursor"]},
            headers=world.operator.headers,
        )
        listed = [x["id"] for x in first["items"]] + [x["id"] for x in r.json()["items"]]
        assert listed[:3] == ids[::-1]
        other = await make_operator(client, world.authority)
        r = await client.get("/v1/operator/redemptions", headers=other.headers)
        assert r.json()["items"] == []
        assert str(uuid.UUID(ids[0])) == ids[0]
