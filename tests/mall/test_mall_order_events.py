"""order.created: written by the order's own statement, to the item's merchant and to the operator whose token
placed it, with the order's facts; never for a refused order or a replayed key."""

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa

from app.core import clock, db
from tests.factories import bearer, make_operator
from tests.factories_mall import make_item, make_merchant, people, place

HOOK = "https://hooks.example.com/carbon"


async def created_events(org_id: str) -> list[dict]:
    async with db.session_scope() as session:
        rows = await session.execute(
            sa.text(
                "SELECT id, subject_type, subject_id, payload FROM webhook_events"
                " WHERE org_id = :o AND type = 'order.created' ORDER BY created_at, id"
            ),
            {"o": uuid.UUID(org_id)},
        )
        return [dict(r._mapping) for r in rows]


async def deliveries(event_id: uuid.UUID) -> list[tuple[str, str]]:
    async with db.session_scope() as session:
        rows = await session.execute(
            sa.text("SELECT subscription_id::text, status FROM webhook_deliveries WHERE event_id = :e"),
            {"e": event_id},
        )
        return [tuple(r) for r in rows]


async def subscribe(client, org) -> str:
    """``org``'s admin subscribes it to order.created (an operator acts with its client token otherwise)."""
    admin = bearer(org.extra["admin_token"]) if "admin_token" in org.extra else org.headers
    r = await client.post(
        "/v1/webhooks/subscriptions", json={"url": HOOK, "event_types": ["order.created"]}, headers=admin
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def as_events_write(api_time: str) -> str:
    """A time of the API's answers (``…Z``) as events carry it (``isoformat``: ``…+00:00``)."""
    return datetime.fromisoformat(api_time).astimezone(UTC).isoformat()


async def a_shop(client, world, *, points=100, price=30, stock=5):
    merchant = await make_merchant(client, world.authority)
    operator = await make_operator(client, world.authority)
    [buyer] = await people(client, operator, world.btype, 1, points=points)
    it = await make_item(client, merchant, points_price=price, stock=stock, title="燕麦拿铁 Oat latte")
    return merchant, operator, buyer, it


class TestOrderCreated:
    async def test_the_merchant_and_the_app_hear_of_the_order_with_its_facts(self, client, world):
        merchant, operator, buyer, it = await a_shop(client, world)
        merchant_hook, operator_hook = await subscribe(client, merchant), await subscribe(client, operator)
        r = await place(client, buyer, it["id"], 2)
        assert r.status_code == 201, r.text
        order = r.json()
        facts = {
            "order_id": order["id"],
            "item_id": it["id"],
            "merchant_id": merchant.id,
            "operator_id": operator.id,
            "title": "燕麦拿铁 Oat latte",
            "quantity": 2,
            "points": 60,
            "status": "issued",
            "voucher_expires_at": as_events_write(order["voucher"]["expires_at"]),
            "refunded_points": 0,
            "created_at": as_events_write(order["created_at"]),
            "redeemed_at": None,
            "cancelled_at": None,
            "expired_at": None,
        }
        [to_merchant] = await created_events(merchant.id)
        assert (to_merchant["subject_type"], to_merchant["subject_id"]) == ("mall_order", order["id"])
        assert to_merchant["payload"] == facts
        [to_operator] = await created_events(operator.id)
        assert to_operator["payload"] == {**facts, "user_id": buyer.user_id}
        assert await deliveries(to_merchant["id"]) == [(merchant_hook, "pending")]
        assert await deliveries(to_operator["id"]) == [(operator_hook, "pending")]

    async def test_a_whole_second_is_written_without_a_fraction(self, client, world):
        merchant, operator, buyer, it = await a_shop(client, world)
        clock.freeze(datetime(2026, 12, 1, 4, 30, 0, tzinfo=UTC))
        r = await place(client, buyer, it["id"])
        assert r.status_code == 201, r.text
        [event] = await created_events(merchant.id)
        assert event["payload"]["created_at"] == "2026-12-01T04:30:00+00:00"
        assert event["payload"]["voucher_expires_at"] == "2026-12-31T04:30:00+00:00"  # 30 days' voucher

    async def test_no_event_for_a_refused_order_nor_for_a_replayed_key(self, client, world):
        merchant, operator, buyer, it = await a_shop(client, world, points=100, price=30, stock=5)
        dear = await make_item(client, merchant, points_price=200, stock=5)
        assert (await place(client, buyer, dear["id"])).json()["code"] == "insufficient_points"
        one_each = await make_item(client, merchant, points_price=30, stock=5, per_user_limit=1)
        first = await place(client, buyer, one_each["id"], key="lunch")
        again = await place(client, buyer, one_each["id"], key="lunch")
        assert first.status_code == 201 and again.headers["idempotent-replayed"] == "true"
        # refused after the points were spent and the stock taken: the statement's events go with them
        assert (await place(client, buyer, one_each["id"])).json()["code"] == "per_user_limit_exceeded"
        assert [e["subject_id"] for e in await created_events(merchant.id)] == [first.json()["id"]]
        assert [e["subject_id"] for e in await created_events(operator.id)] == [first.json()["id"]]

    async def test_a_title_with_percent_signs_quotes_and_backslashes_comes_back_as_written(
        self, client, world
    ):
        merchant, operator, buyer, _ = await a_shop(client, world)
        title = '50% off "双11" \\ %1$s %%'
        it = await make_item(client, merchant, points_price=30, stock=5, title=title)
        r = await place(client, buyer, it["id"])
        assert r.status_code == 201, r.text
        assert (r.json()["title"], r.json()["unit_price"], r.json()["points"]) == (title, 30, 30)
        [event] = await created_events(merchant.id)
        assert event["payload"]["title"] == title
        read = await client.get(f"/v1/me/orders/{r.json()['id']}", headers=buyer.headers)
        assert read.content == r.content  # the statement's answer is the order as it reads back
