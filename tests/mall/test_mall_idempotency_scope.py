"""An Idempotency-Key of a user token belongs to the person *and* the operator the token was issued to.

One person enrolled by operators A and B is one account. Their app at B reusing a key that their
app at A used first must run B's request (B's redemption recorded, B's order placed) and never
answer with A's stored response.
"""

import uuid
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from app.core import db
from tests.factories import make_operator, unique
from tests.factories_mall import Person, balance, entries, fund, ledger_violations, make_item, make_merchant
from tests.factories_points import enrol, phone, user_headers


@dataclass
class TwoApps:
    at_a: Person
    at_b: Person


@pytest.fixture
async def two_apps(client, world) -> TwoApps:
    """One person entrusting the shared operator (A) and a second one (B), with 400 points."""
    number = phone()
    b = await make_operator(client, world.authority)
    people = []
    for op in (world.operator, b):
        u = await enrol(client, op, number=number)
        people.append(
            Person(
                u["external_user_id"], u["user_id"], await user_headers(client, op, u["external_user_id"]), op
            )
        )
    at_a, at_b = people
    assert at_a.user_id == at_b.user_id
    await fund(client, world.operator, world.btype, [at_a], 400)
    return TwoApps(at_a, at_b)


async def redemptions(user_id: str) -> list[tuple[str, str, int]]:
    async with db.session_scope() as session:
        rows = await session.execute(
            sa.text(
                "SELECT operator_id::text, operator_order_id, points FROM operator_redemptions"
                " WHERE user_id = :u ORDER BY created_at, id"
            ),
            {"u": uuid.UUID(user_id)},
        )
        return [tuple(r) for r in rows]


class TestUserTokensOfTwoOperators:
    async def test_operator_redemption_with_the_key_used_at_the_other_operator_runs(self, client, two_apps):
        key = unique("key")
        payload = {"operator_order_id": unique("order"), "points": 100, "description": "a tote bag"}
        first = await client.post(
            "/v1/me/operator-redemptions",
            json=payload,
            headers={**two_apps.at_a.headers, "Idempotency-Key": key},
        )
        assert first.status_code == 201, first.text
        second = await client.post(
            "/v1/me/operator-redemptions",
            json=payload,
            headers={**two_apps.at_b.headers, "Idempotency-Key": key},
        )
        assert second.status_code == 201, second.text
        assert "idempotent-replayed" not in second.headers
        assert second.json()["operator_id"] == two_apps.at_b.operator.id
        assert second.json()["id"] != first.json()["id"]
        assert await redemptions(two_apps.at_a.user_id) == [
            (two_apps.at_a.operator.id, payload["operator_order_id"], 100),
            (two_apps.at_b.operator.id, payload["operator_order_id"], 100),
        ]
        assert await balance(client, two_apps.at_b) == 200
        assert [e for e in await entries(two_apps.at_a.user_id) if e[0] == "redeem"] == [
            ("redeem", -100, 300),
            ("redeem", -100, 200),
        ]
        # each app still replays its own request
        again = await client.post(
            "/v1/me/operator-redemptions",
            json=payload,
            headers={**two_apps.at_b.headers, "Idempotency-Key": key},
        )
        assert (again.status_code, again.headers["idempotent-replayed"]) == (201, "true")
        assert again.json() == second.json()
        assert await ledger_violations() == []

    async def test_an_order_with_the_key_used_at_the_other_operator_is_its_own(self, client, world, two_apps):
        merchant = await make_merchant(client, world.authority)
        item = await make_item(client, merchant, points_price=150, stock=5)
        key = unique("order")
        body = {"item_id": item["id"], "quantity": 1}
        first = await client.post(
            "/v1/me/orders", json=body, headers={**two_apps.at_a.headers, "Idempotency-Key": key}
        )
        assert first.status_code == 201, first.text
        second = await client.post(
            "/v1/me/orders", json=body, headers={**two_apps.at_b.headers, "Idempotency-Key": key}
        )
        assert second.status_code == 201, second.text
        assert "idempotent-replayed" not in second.headers
        assert second.json()["id"] != first.json()["id"]
        assert second.json()["voucher"]["code"] != first.json()["voucher"]["code"]
        assert await balance(client, two_apps.at_b) == 100
        assert [e for e in await entries(two_apps.at_a.user_id) if e[0] != "earn"] == [
            ("redeem", -150, 250),
            ("redeem", -150, 100),
        ]
        assert await ledger_violations() == []
