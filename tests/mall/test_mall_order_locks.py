"""What an order locks: the person's account, a stock slot, the per-person count; not the rows of the
organisations its events go to (``webhook_events`` carries no foreign key: migration 0022)."""

import asyncio
import uuid

import asyncpg
import pytest
import sqlalchemy as sa

from app.core import db
from tests.factories import make_operator
from tests.factories_mall import make_item, make_merchant, people, place

# another connection holds the organisations' rows while the order is placed
pytestmark = pytest.mark.commits


async def test_an_order_waits_for_no_organisations_row(client, world, servers):
    merchant = await make_merchant(client, world.authority)
    operator = await make_operator(client, world.authority)
    [buyer] = await people(client, operator, world.btype, 1, points=100)
    it = await make_item(client, merchant, points_price=30, stock=5)
    other = await asyncpg.connect(db.plain_url(servers.database_url))
    try:
        # both recipients' rows held as a change of their key would hold them: a foreign key's check would wait
        async with other.transaction():
            await other.execute(
                "SELECT FROM organizations WHERE id = ANY($1::uuid[]) FOR UPDATE",
                [uuid.UUID(merchant.id), uuid.UUID(operator.id)],
            )
            r = await asyncio.wait_for(place(client, buyer, it["id"]), timeout=10)
    finally:
        await other.close()
    assert r.status_code == 201, r.text
    async with db.session_scope() as session:
        recipients = await session.execute(
            sa.text(
                "SELECT org_id::text FROM webhook_events WHERE type = 'order.created' AND subject_id = :o"
            ),
            {"o": r.json()["id"]},
        )
        assert sorted(recipients.scalars()) == sorted([merchant.id, operator.id])


async def test_events_carry_no_foreign_key(client):
    async with db.session_scope() as session:
        keys = await session.execute(
            sa.text(
                "SELECT conname FROM pg_constraint WHERE conrelid = 'webhook_events'::regclass AND contype = 'f'"
            )
        )
        assert list(keys.scalars()) == []
