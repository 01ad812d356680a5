"""A caller's standing is kept by the process until a change is heard of: at once here, on commit elsewhere."""

import asyncio
from collections import OrderedDict

import asyncpg
import httpx
import pytest

from app.auth import service as auth_service
from app.core import callers, db, proofs
from bench.chaos import ChaosServer
from tests.factories import make_org


async def heard_of_a_change(since: int) -> bool:
    """Whether the epoch moved past ``since`` within two seconds (a notification crosses a socket)."""
    for _ in range(200):
        if callers.epoch() not in (None, since):
            return True
        await asyncio.sleep(0.01)
    return False


async def listening() -> None:
    """Until the app's listener has heard its own announcement (it connects while the app starts)."""
    for _ in range(500):
        if callers.epoch() is not None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the app's standing listener did not start")


def counted_reads(monkeypatch) -> list:
    """The callers whose standing is read from PostgreSQL from now on."""
    reads = []
    check = auth_service._check_still_allowed

    async def counted(session, principal):
        reads.append(principal.subject)
        await check(session, principal)

    monkeypatch.setattr(auth_service, "_check_still_allowed", counted)
    return reads


async def unheard(database_url: str, statement: str, *args) -> None:
    """A change no process hears of: this session fires no trigger (``session_replication_role = replica``)."""
    conn = await asyncpg.connect(db.plain_url(database_url))
    try:
        await conn.execute("SET session_replication_role = replica")
        await conn.execute(statement, *args)
    finally:
        await conn.close()


async def heard(database_url: str) -> str:
    """A committed change every listener hears of (a statement on a watched table, no row), once this process
    has heard it; its transaction's id."""
    conn = await asyncpg.connect(db.plain_url(database_url))
    try:
        async with conn.transaction():
            xid = await conn.fetchval("SELECT pg_current_xact_id()::text")
            await conn.execute("UPDATE organizations SET status = status WHERE false")
    finally:
        await conn.close()
    for _ in range(200):
        if callers._last_heard == xid.encode():
            break
        await asyncio.sleep(0.01)
    return xid


async def a_caller_heard_of(client, database_url: str):
    """A new organisation (its staff the caller) and its URL, once this process listens and has heard of the
    organisation's approval (a change made here: nothing is shared until it is heard of)."""
    org = await make_org(client, "merchant")
    await listening()
    await heard(database_url)
    return org, f"/v1/organizations/{org.id}"


class TestKept:
    async def test_a_kept_standing_is_read_again_only_after_a_change(self, client, monkeypatch):
        org = await make_org(client, "merchant")
        reads = counted_reads(monkeypatch)
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
        await listening()
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
        await listening()
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
        await listening()
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


@pytest.mark.commits  # changes made where nobody hears of them, on connections of their own
class TestShared:
    """What one process found good, another that heard the same last change trusts (app.core.callers)."""

    async def test_a_notification_names_its_transaction(self, app, servers):
        await listening()
        xid = await heard(servers.database_url)
        assert callers._last_heard == xid.encode()
        assert callers.shared_proof(b"someone") is not None

    def test_what_may_not_be_shared(self, monkeypatch):
        monkeypatch.setattr(callers, "_listening", True)
        monkeypatch.setattr(callers, "_last_heard", None)
        monkeypatch.setattr(callers, "_heard_before", OrderedDict())
        assert callers.shared_proof(b"someone") is None  # nothing heard yet
        callers._heard("7001")
        first = callers.shared_proof(b"someone")
        assert first is not None
        epoch = callers.epoch()
        callers._heard("7002")
        assert callers.epoch() == epoch + 1
        second = callers.shared_proof(b"someone")
        assert second is not None and second[0] != first[0]
        callers.standing_changed()  # changed here: nothing shared until the next change heard
        assert callers.shared_proof(b"someone") is None
        callers._heard("7001")  # heard before: only a NOTIFY by hand repeats one
        assert callers.shared_proof(b"someone") is None
        for payload in ("", "not-a-transaction", "7003 ", "\u0667\u0660\u0660\u0663"):
            callers._heard(payload)
            assert callers.shared_proof(b"someone") is None, payload
        callers._heard("7003")
        assert callers.shared_proof(b"someone")[0] not in (first[0], second[0])
        assert callers.epoch() == epoch + 8  # every notification moved the epoch, shared or not
        monkeypatch.setattr(callers, "_listening", False)
        assert callers.shared_proof(b"someone") is None

    def test_a_proof_names_its_caller_and_lasts_to_the_end_of_its_window(self, monkeypatch):
        monkeypatch.setattr(callers, "_listening", True)
        monkeypatch.setattr(callers, "_last_heard", b"7001")
        window = 59_000_000
        monkeypatch.setattr(callers.time, "time", lambda: window * callers.KEEP_SECONDS + 29.5)
        late, left = callers.shared_proof(b"someone")
        assert left == pytest.approx(0.5)
        assert late != callers.shared_proof(b"someone else")[0]
        monkeypatch.setattr(callers.time, "time", lambda: (window + 1) * callers.KEEP_SECONDS)
        fresh, left = callers.shared_proof(b"someone")
        assert (fresh != late, left) == (True, callers.KEEP_SECONDS)

    async def test_a_standing_found_good_is_trusted_until_a_change_is_heard(
        self, client, servers, monkeypatch
    ):
        org, url = await a_caller_heard_of(client, servers.database_url)
        reads = counted_reads(monkeypatch)
        assert (await client.get(url, headers=org.headers)).status_code == 200
        assert len(reads) == 1
        auth_service._verified.clear()  # as a process that never saw the token
        assert (await client.get(url, headers=org.headers)).status_code == 200
        assert len(reads) == 1  # found in the shared table
        # suspended where no process hears of it: the proof still stands (as a kept standing would)
        await unheard(
            servers.database_url, "UPDATE organizations SET status = 'suspended' WHERE id = $1", org.id
        )
        auth_service._verified.clear()
        assert (await client.get(url, headers=org.headers)).status_code == 200
        assert len(reads) == 1
        before = callers.epoch()
        await heard(servers.database_url)  # any change heard: no proof of before is trusted
        assert await heard_of_a_change(before)
        r = await client.get(url, headers=org.headers)
        assert (r.status_code, r.json()["code"], len(reads)) == (403, "organization_not_active", 2)
        auth_service._verified.clear()
        r = await client.get(url, headers=org.headers)  # a refusal is never shared
        assert (r.status_code, len(reads)) == (403, 3)

    async def test_a_change_made_here_trusts_no_proof_until_heard(self, client, servers, monkeypatch):
        org, url = await a_caller_heard_of(client, servers.database_url)
        reads = counted_reads(monkeypatch)
        assert (await client.get(url, headers=org.headers)).status_code == 200
        callers.standing_changed()
        auth_service._verified.clear()
        assert (await client.get(url, headers=org.headers)).status_code == 200
        assert len(reads) == 2

    async def test_nothing_is_shared_while_not_listening(self, client, servers, monkeypatch):
        org, url = await a_caller_heard_of(client, servers.database_url)
        monkeypatch.setattr(callers, "_listening", False)
        reads = counted_reads(monkeypatch)
        for _ in range(2):
            auth_service._verified.clear()
            assert (await client.get(url, headers=org.headers)).status_code == 200
        assert len(reads) == 2


class TestTwoProcesses:
    async def test_one_process_trusts_what_the_other_found_and_both_hear_a_change(self, client, servers):
        """Two server processes (as ``serve --workers 2`` runs them) on one shared table, each asked directly.

        A caller read by the first and then suspended where nobody hears of it is let through by the second,
        which never saw its token: the second trusted the first's proof. A second just started may not stand where
        the first does yet (each announces itself when its listener connects), so each try has a new caller; then
        a change heard by both stops the caller in both.
        """
        with proofs.shared_by_workers(2):  # the table's file, named to both processes' environments
            first = ChaosServer(servers.database_url, servers.redis_url)
            second = ChaosServer(servers.database_url, servers.redis_url)
            await asyncio.gather(asyncio.to_thread(first.start), asyncio.to_thread(second.start))
            try:
                async with httpx.AsyncClient(timeout=30) as http:
                    for _ in range(30):
                        org = await make_org(client, "merchant")
                        url = f"/v1/organizations/{org.id}"
                        await asyncio.sleep(0.2)  # the approval's notification reaches both
                        assert (await http.get(first.base_url + url, headers=org.headers)).status_code == 200
                        await unheard(
                            servers.database_url,
                            "UPDATE organizations SET status = 'suspended' WHERE id = $1",
                            org.id,
                        )
                        if (await http.get(second.base_url + url, headers=org.headers)).status_code == 200:
                            break
                    else:
                        raise AssertionError("the second process never trusted the first's proof")
                    await heard(servers.database_url)
                    for server in (first, second):
                        for _ in range(100):
                            r = await http.get(server.base_url + url, headers=org.headers)
                            if r.status_code != 200:
                                break
                            await asyncio.sleep(0.05)
                        assert (r.status_code, r.json()["code"]) == (403, "organization_not_active")
            finally:
                await asyncio.gather(asyncio.to_thread(first.stop), asyncio.to_thread(second.stop))
