"""A person who deletes their account ends every live entrustment: each operator concerned gets
``entrustment.withdrawn`` with ``reason: account_deleted``, once, in the deletion's transaction; an operator
whose entrustment had already ended gets nothing more."""

import uuid

import sqlalchemy as sa

from app.core import db
from tests.factories import bearer, make_operator, person_session, staff_token
from tests.factories_points import enrol, phone

HOOK = "https://hooks.example.com/carbon"


async def _withdrawn(org_id) -> list[tuple[str, dict]]:
    async with db.session_scope() as session:
        rows = await session.execute(
            sa.text(
                "SELECT subject_id, payload FROM webhook_events WHERE org_id = :o AND type = 'entrustment.withdrawn'"
                " ORDER BY created_at, id"
            ),
            {"o": uuid.UUID(str(org_id))},
        )
        return [(r.subject_id, r.payload) for r in rows]


async def _deliveries(subscription_id: str) -> list[str]:
    async with db.session_scope() as session:
        rows = await session.execute(
            sa.text(
                "SELECT e.subject_id FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id"
                " WHERE d.subscription_id = :s AND d.status = 'pending'"
            ),
            {"s": uuid.UUID(subscription_id)},
        )
        return [r.subject_id for r in rows]


class TestAccountDeletion:
    async def test_every_operator_whose_entrustment_ended_is_told_once(self, client):
        number = phone()
        metro, bikes, gone = [await make_operator(client) for _ in range(3)]
        metro_ext = (await enrol(client, metro, number=number))["external_user_id"]
        bikes_ext = (await enrol(client, bikes, number=number))["external_user_id"]
        gone_ext = (await enrol(client, gone, number=number))["external_user_id"]
        r = await client.post(
            "/v1/webhooks/subscriptions",
            json={"url": HOOK, "event_types": ["entrustment.withdrawn"]},
            headers=bearer(await staff_token(client, metro, is_org_admin=True)),
        )
        assert r.status_code == 201, r.text
        subscription = r.json()["id"]
        assert (
            await client.delete(f"/v1/operator/users/{gone_ext}", headers=gone.headers)
        ).status_code == 200
        assert [p["by"] for _, p in await _withdrawn(gone.id)] == ["operator"]

        token = await person_session(client, number)
        r = await client.delete("/v1/me", headers={"X-CSRF-Token": token})
        assert r.status_code == 200, r.text
        deleted_at = r.json()["deleted_at"]

        for op, ext in ((metro, metro_ext), (bikes, bikes_ext)):
            events = await _withdrawn(op.id)
            assert events == [
                (
                    ext,
                    {
                        "external_user_id": ext,
                        "withdrawn_at": events[0][1]["withdrawn_at"],
                        "by": "person",
                        "reason": "account_deleted",
                    },
                )
            ]
            assert events[0][1]["withdrawn_at"][:19] == deleted_at[:19]
        assert [p["by"] for _, p in await _withdrawn(gone.id)] == ["operator"]  # nothing more
        assert await _deliveries(subscription) == [metro_ext]

    async def test_a_person_without_entrustments_writes_no_event(self, client):
        number = phone()
        op = await make_operator(client)
        ext = (await enrol(client, op, number=number))["external_user_id"]
        assert (await client.delete(f"/v1/operator/users/{ext}", headers=op.headers)).status_code == 200
        token = await person_session(client, number)
        assert (await client.delete("/v1/me", headers={"X-CSRF-Token": token})).status_code == 200
        assert [(s, p["by"]) for s, p in await _withdrawn(op.id)] == [(ext, "operator")]
