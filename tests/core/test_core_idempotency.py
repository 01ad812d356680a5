"""Idempotency-Key over HTTP: replay, mismatch, concurrency, durability, expiry."""

import asyncio
import uuid
from datetime import timedelta

import asyncpg
import pytest
import sqlalchemy as sa

from app.core import clock, db, idempotency, redis
from app.organizations import service as org_service
from tests.factories import application, authority_token, bearer, random_ip


def key() -> str:
    return uuid.uuid4().hex


async def orgs_with_credit_code(code: str) -> int:
    async with db.session_scope() as session:
        return (
            await session.execute(
                sa.text("SELECT count(*) FROM organizations WHERE credit_code = :c"), {"c": code}
            )
        ).scalar()


async def audit_count(action: str, subject_id: str) -> int:
    async with db.session_scope() as session:
        return (
            await session.execute(
                sa.text("SELECT count(*) FROM audit_entries WHERE action = :a AND subject_id = :s"),
                {"a": action, "s": subject_id},
            )
        ).scalar()


@pytest.fixture
async def anonymous(client_at):
    """An anonymous caller of its own (public idempotency keys are scoped by client IP)."""
    async with client_at(random_ip()) as c:
        yield c


class TestReplay:
    async def test_same_key_same_body_replays_and_creates_once(self, anonymous):
        body, k = application(), key()
        first = await anonymous.post("/v1/organizations", json=body, headers={"Idempotency-Key": k})
        assert first.status_code == 201, first.text
        assert "idempotent-replayed" not in first.headers
        again = await anonymous.post("/v1/organizations", json=body, headers={"Idempotency-Key": k})
        assert again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["content-type"] == "application/json"
        assert again.json() == first.json()
        assert await orgs_with_credit_code(body["credit_code"]) == 1
        assert await audit_count("organization.applied", first.json()["id"]) == 1

    async def test_without_a_key_the_second_request_runs_again(self, anonymous):
        body = application()
        assert (await anonymous.post("/v1/organizations", json=body)).status_code == 201
        r = await anonymous.post("/v1/organizations", json=body)
        assert r.status_code == 409
        assert r.json()["code"] == "organization_exists"

    async def test_authority_decision_replays(self, client, anonymous):
        authority = await authority_token(client)
        org_id = (await anonymous.post("/v1/organizations", json=application())).json()["id"]
        headers = {**bearer(authority), "Idempotency-Key": key()}
        first = await client.post(f"/v1/organizations/{org_id}/approve", headers=headers)
        assert first.status_code == 200, first.text
        again = await client.post(f"/v1/organizations/{org_id}/approve", headers=headers)
        assert again.status_code == 200
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
        assert await audit_count("organization.approve", org_id) == 1
        # without the key, approving twice is refused
        r = await client.post(f"/v1/organizations/{org_id}/approve", headers=bearer(authority))
        assert r.status_code == 409
        assert r.json()["code"] == "invalid_transition"

    async def test_same_key_other_body(self, anonymous):
        k = key()
        assert (
            await anonymous.post("/v1/organizations", json=application(), headers={"Idempotency-Key": k})
        ).status_code == 201
        r = await anonymous.post("/v1/organizations", json=application(), headers={"Idempotency-Key": k})
        assert r.status_code == 422
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "idempotency_key_reused"

    async def test_same_key_other_path(self, client):
        authority = await authority_token(client)
        ids = []
        for _ in range(2):
            ids.append((await client.post("/v1/organizations", json=application())).json()["id"])
        headers = {**bearer(authority), "Idempotency-Key": key()}
        assert (await client.post(f"/v1/organizations/{ids[0]}/approve", headers=headers)).status_code == 200
        r = await client.post(f"/v1/organizations/{ids[1]}/approve", headers=headers)
        assert r.status_code == 422
        assert r.json()["code"] == "idempotency_key_reused"

    async def test_keys_of_different_callers_never_meet(self, client_at):
        k = key()
        for _ in range(2):
            async with client_at(random_ip()) as c:
                r = await c.post("/v1/organizations", json=application(), headers={"Idempotency-Key": k})
                assert r.status_code == 201, r.text
                assert "idempotent-replayed" not in r.headers

    async def test_failed_requests_are_not_stored(self, anonymous):
        body, k = application(), key()
        assert (await anonymous.post("/v1/organizations", json=body)).status_code == 201
        twin = application(credit_code=body["credit_code"])
        for _ in range(2):
            r = await anonymous.post("/v1/organizations", json=twin, headers={"Idempotency-Key": k})
            assert r.status_code == 409
            assert r.json()["code"] == "organization_exists"
            assert "idempotent-replayed" not in r.headers

    @pytest.mark.parametrize("bad", ["", "x" * 201, "tab\there"])
    async def test_invalid_keys(self, anonymous, bad):
        r = await anonymous.post("/v1/organizations", json=application(), headers={"Idempotency-Key": bad})
        assert r.status_code == 400
        assert r.json()["code"] == "idempotency_key_invalid"

    async def test_key_survives_a_redis_flush(self, anonymous):
        body, k = application(), key()
        first = await anonymous.post("/v1/organizations", json=body, headers={"Idempotency-Key": k})
        await redis.client().flushall()
        again = await anonymous.post("/v1/organizations", json=body, headers={"Idempotency-Key": k})
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()


class TestConcurrency:
    async def test_ten_concurrent_requests_with_one_key_have_one_effect(self, anonymous, monkeypatch):
        real_apply = org_service.apply

        async def slow_apply(session, data):
            await asyncio.sleep(0.3)
            return await real_apply(session, data)

        monkeypatch.setattr(org_service, "apply", slow_apply)
        body, k = application(), key()
        responses = await asyncio.gather(
            *(
                anonymous.post("/v1/organizations", json=body, headers={"Idempotency-Key": k})
                for _ in range(10)
            )
        )
        created = [r for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers]
        replayed = [r for r in responses if r.status_code == 201 and "idempotent-replayed" in r.headers]
        in_use = [r for r in responses if r.status_code == 409]
        assert len(created) == 1
        assert len(created) + len(replayed) + len(in_use) == 10
        assert all(r.json()["code"] == "idempotency_key_in_use" for r in in_use)
        assert all(r.headers["retry-after"] == "1" for r in in_use)
        assert all(r.json() == created[0].json() for r in replayed)
        assert await orgs_with_credit_code(body["credit_code"]) == 1

        after = await anonymous.post("/v1/organizations", json=body, headers={"Idempotency-Key": k})
        assert after.headers["idempotent-replayed"] == "true"
        assert after.json() == created[0].json()


class TestExpiry:
    async def test_expired_keys_are_purged_and_no_longer_replay(self, anonymous, settings):
        body, k = application(), key()
        first = await anonymous.post("/v1/organizations", json=body, headers={"Idempotency-Key": k})
        assert first.status_code == 201
        async with db.session_scope() as session:
            expires_at = (
                await session.execute(
                    sa.text("SELECT expires_at - created_at FROM idempotency_records WHERE key = :k"),
                    {"k": k},
                )
            ).scalar()
        assert expires_at == timedelta(hours=settings.idempotency_ttl_hours)
        try:
            clock.set_offset(timedelta(hours=settings.idempotency_ttl_hours, minutes=1))
            async with db.session_scope() as session:
                await idempotency.purge_expired(session)
            async with db.session_scope() as session:
                left = (
                    await session.execute(
                        sa.text("SELECT count(*) FROM idempotency_records WHERE key = :k"), {"k": k}
                    )
                ).scalar()
            assert left == 0
        finally:
            clock.set_offset(timedelta(0))
        # the key is forgotten: the same request runs again (and meets the organisation it created)
        again = await anonymous.post("/v1/organizations", json=body, headers={"Idempotency-Key": k})
        assert again.status_code == 409
        assert again.json()["code"] == "organization_exists"

    async def test_live_keys_are_kept(self, anonymous):
        k = key()
        await anonymous.post("/v1/organizations", json=application(), headers={"Idempotency-Key": k})
        async with db.session_scope() as session:
            await idempotency.purge_expired(session)
        async with db.session_scope() as session:
            left = (
                await session.execute(
                    sa.text("SELECT count(*) FROM idempotency_records WHERE key = :k"), {"k": k}
                )
            ).scalar()
        assert left == 1

    async def test_the_purge_job_is_registered(self):
        from app.core import tasks
        from app.core.scheduler import JOBS

        names = {j.name for j in JOBS}
        assert tasks.purge_expired_idempotency_keys.__module__ + ".purge_expired_idempotency_keys" in names


class TestBeginInOneRoundTrip:
    """``idempotency_begin`` (migration 0015) tries the key's lock, then looks the key up with a snapshot
    taken under the lock: a record committed by the request that held it a moment ago is seen."""

    async def test_a_record_committed_while_the_call_waited_for_the_lock_is_replayed(self, app, servers):
        scope, k = "test:begin", key()
        lock, now = idempotency._lock_key(scope, k), clock.now()
        first = await asyncpg.connect(db.plain_url(servers.database_url))
        second = await asyncpg.connect(db.plain_url(servers.database_url))
        try:
            holding = first.transaction()
            await holding.start()
            assert await first.fetchval("SELECT pg_try_advisory_xact_lock($1)", lock)
            await first.execute(
                idempotency.STORE_SQL.format(*(f"${n}" for n in range(1, 9))),
                scope,
                k,
                "f" * 64,
                201,
                b'{"n":1}',
                "application/json",
                now,
                now + timedelta(hours=1),
            )
            in_use = await second.fetchrow(
                "SELECT * FROM idempotency_begin($1, $2, $3, $4)", lock, scope, k, now
            )
            assert (in_use["locked"], in_use["fingerprint"]) == (False, None)
            # the call's statement starts (its snapshot taken) before the first commits; its lock and lookup
            # run after: the first's record is seen, not missed
            waited = asyncio.create_task(
                second.fetchrow(
                    "SELECT f.* FROM (SELECT $4::timestamptz AS now, pg_sleep(0.5)) s,"
                    " LATERAL idempotency_begin($1, $2, $3, s.now) f",
                    lock,
                    scope,
                    k,
                    now,
                )
            )
            await asyncio.sleep(0.15)
            await holding.commit()
            row = await waited
            assert (row["locked"], row["fingerprint"], row["status_code"], row["body"]) == (
                True,
                "f" * 64,
                201,
                b'{"n":1}',
            )
            fresh = await second.fetchrow(
                "SELECT * FROM idempotency_begin($1, $2, $3, $4)", lock, scope, "never-used", now
            )
            assert (fresh["locked"], fresh["fingerprint"], fresh["body"]) == (True, None, None)
            expired = await second.fetchrow(
                "SELECT * FROM idempotency_begin($1, $2, $3, $4)", lock, scope, k, now + timedelta(hours=2)
            )
            assert (expired["locked"], expired["fingerprint"]) == (True, None)
        finally:
            await first.close()
            await second.close()
