"""Factories for the mall: merchants, items, people with points, orders."""

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa

from app.core import clock, db
from app.points.verify import verify
from tests.factories import Org, make_org, unique
from tests.factories_points import enrol, record, submit, user_headers

DAILY = 200  # the test rule's daily cap; with make_methodology(factor="1000"), 1 km = 100 points


@dataclass
class Person:
    ext: str
    user_id: str
    headers: dict[str, str]
    operator: Org
    days_funded: int = 0  # the days before today whose behaviours earned this person points


async def make_merchant(client: httpx.AsyncClient, authority: str | None = None) -> Org:
    return await make_org(client, "merchant", authority=authority)


def item_body(**overrides) -> dict:
    body = {
        "title": unique("Reusable cup"),
        "description": "A cup for your coffee",
        "images": ["https://example.org/cup.png"],
        "points_price": 100,
        "stock": 10,
        "per_user_limit": None,
        "voucher_valid_days": 30,
    }
    body.update(overrides)
    return body


async def make_item(client: httpx.AsyncClient, merchant: Org, **overrides) -> dict:
    r = await client.post("/v1/mall/items", json=item_body(**overrides), headers=merchant.headers)
    assert r.status_code == 201, r.text
    return r.json()


async def fund(client: httpx.AsyncClient, op: Org, btype: str, people: list[Person], points: int) -> None:
    """Credit each person ``points`` (a multiple of 50) through signed behaviour batches, 200 a day.

    Each funding uses days before today (by the real time, so that a moved clock still credits new
    days) that this person has not used yet: no overlap, no daily cap in the way. The points land
    in the lot of the day the batch is credited (``clock.now()``).
    """
    assert points % 50 == 0
    records = []
    today = datetime.now(UTC).replace(hour=4, minute=0, second=0, microsecond=0)  # noon in Shanghai
    for p in people:
        left = points
        while left > 0:
            take = min(DAILY, left)
            p.days_funded += 1
            records.append(
                record(p.ext, btype, quantity=take / 100, start=today - timedelta(days=p.days_funded))
            )
            left -= take
    for i in range(0, len(records), 1000):
        r = await submit(client, op, records[i : i + 1000])
        assert r.status_code == 200, r.text
        assert r.json()["summary"]["accepted"] == len(records[i : i + 1000]), r.text


async def people(client: httpx.AsyncClient, op: Org, btype: str, n: int, points: int = 0) -> list[Person]:
    """``n`` people enrolled by ``op`` with ``points`` each and a user token issued through ``op``."""
    gate = asyncio.Semaphore(20)

    async def one() -> Person:
        async with gate:
            u = await enrol(client, op, accepted_at=clock.now() - timedelta(days=60))
            headers = await user_headers(client, op, u["external_user_id"])
            return Person(u["external_user_id"], u["user_id"], headers, op)

    out = await asyncio.gather(*[one() for _ in range(n)])
    if points:
        await fund(client, op, btype, out, points)
    return list(out)


async def place(client: httpx.AsyncClient, person: Person, item_id: str, quantity=1, key: str | None = None):
    headers = {**person.headers, "Idempotency-Key": key or unique("order")}
    return await client.post(
        "/v1/me/orders", json={"item_id": item_id, "quantity": quantity}, headers=headers
    )


async def balance(client: httpx.AsyncClient, person: Person) -> int:
    r = await client.get("/v1/me/account", headers=person.headers)
    assert r.status_code == 200, r.text
    return r.json()["balance"]


async def item(client: httpx.AsyncClient, item_id: str) -> dict:
    r = await client.get(f"/v1/mall/items/{item_id}")
    assert r.status_code == 200, r.text
    return r.json()


async def ledger_violations() -> list:
    async with db.sessionmaker()() as session:
        violations = await verify(session)
        await session.rollback()
    return violations


async def entries(user_id: str) -> list[tuple]:
    async with db.session_scope() as session:
        rows = await session.execute(
            sa.text("SELECT kind, amount, balance_after FROM ledger_entries WHERE user_id = :u ORDER BY id"),
            {"u": uuid.UUID(user_id)},
        )
        return [tuple(r) for r in rows]


async def purchased(item_id: str, user_id: str) -> int:
    async with db.session_scope() as session:
        return (
            await session.execute(
                sa.text(
                    "SELECT coalesce(sum(quantity), 0) FROM mall_purchases WHERE item_id = :i AND user_id = :u"
                ),
                {"i": uuid.UUID(item_id), "u": uuid.UUID(user_id)},
            )
        ).scalar_one()


async def order_created_points(order_id: str) -> dict[str, int]:
    """The points each recipient of the order's ``order.created`` event was told: {organisation id: points}."""
    async with db.session_scope() as session:
        rows = await session.execute(
            sa.text(
                "SELECT org_id::text, payload FROM webhook_events WHERE type = 'order.created' AND subject_id = :o"
            ),
            {"o": order_id},
        )
        return {org: payload["points"] for org, payload in rows}
