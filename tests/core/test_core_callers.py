"""A caller's standing is kept by the process until a change is heard of: at once here, on commit elsewhere."""

import asyncio

import asyncpg

from app.auth import service as auth_service
from app.core import callers, db
from tests.factories import make_org


async def heard_of_a_change(since: int) -> bool:
    """Whether the epoch moved past ``since`` within two seconds (a notification crosses a socket)."""
    for _ in range(200):
        if callers.epoch() not in (None, since):
            return True
        await asyncio.sleep(0.01)
    return False


class TestKept:
    async def test_a_kept_standing_is_read_again_only_after_a_change(self, client, monkeypatch):
        org = await make_org(client, "merchant")
        reads = []
        check = auth_service._check_still_allowed

        async def counted(session, principal):
            reads.append(principal.subject)
            await check(session, principal)

        monkeypatch.setattr(auth_service, "_check_still_allowed", counted)
        for _ in range(3):
            assert (await client.get(f"/v1/organizations/{org.id}", headers=org.headers)).status_code == 200
        assert len(reads) == 1
        callers.standing_changed()
        assert (await client.get(f"/v1/organizations/{org.id}", headers=org.headers)).status_code == 200
        assert len(reads) == 2

    async def test_a_suspension_through_the_api_stops_the_next_request(self, client, authority):
        org = await make_org(client, "merchant")
        assert (await client.get(f"/v1/organizations/{org.id}", headers=org.headers)).status_code == 200
        r = await client.post(
            f"/v1/organizations/{org.id}/suspend",
            json={"reason": "inspection"},
            headers={"Authorization": f"Bearer {authority}"},
        )
        assert r.status_code == 200, r.text
        r = await client.get(f"/v1/organizations/{org.id}", headers=org.headers)
        assert (r.status_code, r.json()["code"]) == (403, "organization_not_active")


class TestHeardFromOtherConnections:
    """Another process's change (here: SQL on a connection of its own) arrives with its commit."""

    async def test_a_committed_change_by_hand_stops_the_kept_caller(self, client, servers):
        org = await make_org(client, "merchant")
        assert (await client.get(f"/v1/organizations/{org.id}", headers=org.headers)).status_code == 200
        before = callers.epoch()
        assert before is not None  # the app listens
        conn = await asyncpg.connect(db.plain_url(servers.database_url))
        try:
            await conn.execute("UPDATE organizations SET status = 'suspended' WHERE id = $1", org.id)
        finally:
            await conn.close()
        assert await heard_of_a_change(before)
        r = await client.get(f"/v1/organizations/{org.id}", headers=org.headers)
        assert (r.status_code, r.json()["code"]) == (403, "organization_not_active")

    async def test_a_rolled_back_change_is_not_heard_of(self, app, servers):
        before = callers.epoch()
        conn = await asyncpg.connect(db.plain_url(servers.database_url))
        try:
            transaction = conn.transaction()
            await transaction.start()
            await conn.execute("UPDATE entrustments SET withdrawn_at = withdrawn_at WHERE false")
            await transaction.rollback()
        finally:
            await conn.close()
        assert not await heard_of_a_change(before)

    async def test_every_watched_write_notifies(self, app, servers):
        conn = await asyncpg.connect(db.plain_url(servers.database_url))
        try:
            for statement in (
                "UPDATE organizations SET status = status WHERE false",
                "UPDATE staff_users SET disabled_at = disabled_at WHERE false",
                "UPDATE users SET deleted_at = deleted_at WHERE false",
                "UPDATE entrustments SET withdrawn_at = withdrawn_at WHERE false",
                "UPDATE oauth_refresh_tokens SET revoked_at = revoked_at WHERE false",
                "DELETE FROM oauth_refresh_tokens WHERE false",
            ):
                before = callers.epoch()
                await conn.execute(statement)
                assert await heard_of_a_change(before), statement
        finally:
            await conn.close()
