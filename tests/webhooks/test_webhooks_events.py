"""The events outbox: each event written exactly once with its change and never for a refused or rolled-back
one, fanned out to the active subscriptions that want it; ``GET /v1/events`` pages and catches up."""

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.core import clock, db
from app.points import service as points_service
from app.webhooks import service
from tests.factories import assert_problem, bearer, make_operator, make_org
from tests.factories_points import enrol, ensure_rule, make_methodology, record, submit

HOOK = "https://hooks.example.com/carbon"


@pytest.fixture(autouse=True)
async def _clock(app):
    yield
    clock.freeze(None)


async def _events(org_id, type_=None) -> list[dict]:
    async with db.session_scope() as session:
        rows = (
            await session.execute(
                sa.text(
                    "SELECT id, type, subject_type, subject_id, payload FROM webhook_events WHERE org_id = :o"
                    " AND (CAST(:t AS text) IS NULL OR type = :t) ORDER BY created_at, id"
                ),
                {"o": uuid.UUID(str(org_id)), "t": type_},
            )
        ).all()
    return [dict(r._mapping) for r in rows]


async def _deliveries(event_id) -> list[tuple[str, str]]:
    async with db.session_scope() as session:
        rows = await session.execute(
            sa.text(
                "SELECT subscription_id::text, status FROM webhook_deliveries WHERE event_id = :e ORDER BY 1"
            ),
            {"e": event_id},
        )
        return [tuple(r) for r in rows]


async def _subscribe(client, org, types, headers=None) -> str:
    r = await client.post(
        "/v1/webhooks/subscriptions",
        json={"url": HOOK, "event_types": types},
        headers=headers or org.headers,
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


class TestEmit:
    async def test_fan_out_to_active_subscriptions_wanting_the_type(self, client):
        merchant = await make_org(client, "merchant")
        wants = await _subscribe(client, merchant, ["order.created", "order.redeemed"])
        also = await _subscribe(client, merchant, ["order.created"])
        paused = await _subscribe(client, merchant, ["order.created"])
        other_type = await _subscribe(client, merchant, ["order.cancelled"])
        assert (
            await client.post(f"/v1/webhooks/subscriptions/{paused}/pause", headers=merchant.headers)
        ).is_success
        async with db.session_scope() as session:
            event_id = await service.emit(
                session,
                org_id=uuid.UUID(merchant.id),
                type="order.created",
                subject_type="mall_order",
                subject_id="o-1",
                payload={"order_id": "o-1"},
            )
        assert await _deliveries(event_id) == sorted([(wants, "pending"), (also, "pending")])
        assert other_type not in dict(await _deliveries(event_id))
        assert [e["id"] for e in await _events(merchant.id)] == [event_id]

    async def test_a_rolled_back_change_leaves_no_event(self, client):
        merchant = await make_org(client, "merchant")
        await _subscribe(client, merchant, ["order.created"])
        with pytest.raises(RuntimeError):
            async with db.session_scope() as session:
                await service.emit(
                    session,
                    org_id=uuid.UUID(merchant.id),
                    type="order.created",
                    subject_type="mall_order",
                    subject_id="o-2",
                    payload={},
                )
                raise RuntimeError("the change is refused after the event was written")
        assert await _events(merchant.id) == []
        async with db.session_scope() as session:
            n = (
                await session.execute(
                    sa.text(
                        "SELECT count(*) FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id WHERE s.org_id = :o"
                    ),
                    {"o": uuid.UUID(merchant.id)},
                )
            ).scalar_one()
        assert n == 0

    async def test_ids_are_time_ordered(self):
        emissions = [service.Emission(uuid.uuid4(), "order.created", "order", "x", {}) for _ in range(50)]
        made = [e.id for e in emissions]
        assert made == sorted(made) and {i.version for i in made} == {7}


class TestEmittedByChanges:
    async def test_entrustment_withdrawn_once_and_not_when_refused(self, client):
        op = await make_operator(client)
        person = await enrol(client, op)
        ext = person["external_user_id"]
        r = await client.delete(f"/v1/operator/users/{ext}", headers=op.headers)
        assert r.status_code == 200, r.text
        again = await client.delete(f"/v1/operator/users/{ext}", headers=op.headers)
        assert again.status_code == 404
        events = await _events(op.id, "entrustment.withdrawn")
        assert [(e["subject_type"], e["subject_id"]) for e in events] == [("entrustment", ext)]
        assert events[0]["payload"]["external_user_id"] == ext and events[0]["payload"]["by"] == "operator"
        assert "identifier" not in events[0]["payload"]

    async def test_organization_suspended_once(self, client, authority):
        merchant = await make_org(client, "merchant", authority=authority)
        r = await client.post(
            f"/v1/organizations/{merchant.id}/suspend", json={"reason": "fraud"}, headers=bearer(authority)
        )
        assert r.status_code == 200, r.text
        refused = await client.post(
            f"/v1/organizations/{merchant.id}/suspend", json={"reason": "again"}, headers=bearer(authority)
        )
        assert refused.status_code == 409
        events = await _events(merchant.id)
        assert [(e["type"], e["payload"]["reason"]) for e in events] == [("organization.suspended", "fraud")]

    async def test_points_expired_and_the_digest_written_once_a_day(self, client):
        await ensure_rule()
        btype = await make_methodology(factor="100")
        op = await make_operator(client)
        person = await enrol(client, op, accepted_at=clock.now() - timedelta(days=60))
        r = await submit(client, op, [record(person["external_user_id"], btype, quantity=3)])
        assert r.json()["summary"]["accepted"] == 1, r.text
        async with db.session_scope() as session:
            lot = (
                await session.execute(
                    sa.text("SELECT expires_at FROM point_lots WHERE user_id = :u"), {"u": person["user_id"]}
                )
            ).scalar_one()
        async with db.session_scope() as session:
            first = await points_service.send_expiring_digests(session, now=lot - timedelta(days=10))
        async with db.session_scope() as session:
            second = await points_service.send_expiring_digests(
                session, now=lot - timedelta(days=10, hours=-1)
            )
        assert first >= 1 and second == 0
        digests = await _events(op.id, "points.expiring")
        assert len(digests) == 1
        payload = digests[0]["payload"]
        assert payload["people"] == [
            {
                "external_user_id": person["external_user_id"],
                "points": 30,
                "lots": [{"points": 30, "expires_at": lot.isoformat()}],
            }
        ]
        assert (payload["people_total"], payload["points_total"], payload["complete"], payload["days"]) == (
            1,
            30,
            True,
            30,
        )
        async with db.session_scope() as session:
            await points_service.expire_due(session, now=lot)
        expired = await _events(op.id, "points.expired")
        assert [e["payload"]["people"] for e in expired] == [
            [{"external_user_id": person["external_user_id"], "points": 30}]
        ]


class TestListEvents:
    async def _three(self, merchant) -> list[uuid.UUID]:
        ids = []
        for n in range(3):
            async with db.session_scope() as session:
                ids.append(
                    await service.emit(
                        session,
                        org_id=uuid.UUID(merchant.id),
                        type="order.created" if n != 1 else "order.redeemed",
                        subject_type="mall_order",
                        subject_id=f"o-{n}",
                        payload={"n": n},
                    )
                )
        return ids

    async def test_newest_first_paged_then_catch_up_after_an_id(self, client):
        merchant = await make_org(client, "merchant")
        other = await make_org(client, "merchant")
        ids = [str(i) for i in await self._three(merchant)]
        first = await client.get("/v1/events", params={"limit": 2}, headers=merchant.headers)
        assert first.status_code == 200
        assert [e["id"] for e in first.json()["items"]] == [ids[2], ids[1]]
        assert first.json()["items"][0] == {
            "id": ids[2],
            "type": "order.created",
            "created_at": first.json()["items"][0]["created_at"],
            "subject": {"type": "mall_order", "id": "o-2"},
            "data": {"n": 2},
        }
        rest = await client.get(
            "/v1/events", params={"limit": 2, "cursor": first.json()["next_cursor"]}, headers=merchant.headers
        )
        assert [e["id"] for e in rest.json()["items"]] == [ids[0]] and rest.json()["next_cursor"] is None
        after = await client.get("/v1/events", params={"after": ids[0], "limit": 1}, headers=merchant.headers)
        assert [e["id"] for e in after.json()["items"]] == [ids[1]]
        after2 = await client.get(
            "/v1/events",
            params={"after": ids[0], "limit": 1, "cursor": after.json()["next_cursor"]},
            headers=merchant.headers,
        )
        assert [e["id"] for e in after2.json()["items"]] == [ids[2]]
        typed = await client.get("/v1/events", params={"type": "order.redeemed"}, headers=merchant.headers)
        assert [e["id"] for e in typed.json()["items"]] == [ids[1]]
        assert (await client.get("/v1/events", headers=other.headers)).json() == {
            "items": [],
            "next_cursor": None,
        }
        assert_problem(
            await client.get("/v1/events", params={"after": ids[0]}, headers=other.headers),
            404,
            "event_not_found",
        )
        assert_problem(
            await client.get("/v1/events", params={"type": "order.eaten"}, headers=merchant.headers),
            422,
            "unknown_event_type",
        )
        assert_problem(
            await client.get("/v1/events", params={"cursor": "v1.nope.nope"}, headers=merchant.headers),
            400,
            "invalid_cursor",
        )

    async def test_time_filters(self, client):
        merchant = await make_org(client, "merchant")
        t0 = clock.now()
        clock.freeze(t0)
        ids = [str(i) for i in await self._three(merchant)]
        later = t0 + timedelta(minutes=1)
        params = {"since": t0.isoformat(), "until": later.isoformat()}
        got = await client.get("/v1/events", params=params, headers=merchant.headers)
        assert [e["id"] for e in got.json()["items"]] == ids[::-1]
        got = await client.get("/v1/events", params={"since": later.isoformat()}, headers=merchant.headers)
        assert got.json()["items"] == []

    async def test_operator_clients_read_their_events_people_do_not(self, client):
        op = await make_operator(client)
        r = await client.get("/v1/events", headers=op.headers)
        assert r.status_code == 200 and r.json()["items"] == []
        assert (await client.get("/v1/events")).status_code == 401
