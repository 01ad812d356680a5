"""The hash-chained audit log: entries, verification, tamper detection, concurrent appends, the CLI."""

import asyncio
import json
import os
import subprocess
import sys
from collections import defaultdict

import pytest
import sqlalchemy as sa

from app.core import audit, db, security
from tests.factories import application, bearer, invoke_cli, unique

COLUMNS = "chain, seq, at, actor, action, subject_type, subject_id, data, prev_hash, hash"


async def entries_of(subject_id: str) -> list:
    async with db.session_scope() as session:
        result = await session.execute(
            sa.text(f"SELECT {COLUMNS} FROM audit_entries WHERE subject_id = :s ORDER BY chain, seq"),
            {"s": subject_id},
        )
        return list(result.all())


async def verify() -> audit.VerifyResult:
    async with db.session_scope() as session:
        return await audit.verify(session)


async def execute(sql: str, params: dict) -> None:
    async with db.session_scope() as session:
        await session.execute(sa.text(sql), params)


async def restore(row) -> None:
    await execute(
        f"INSERT INTO audit_entries ({COLUMNS}) VALUES (:chain, :seq, :at, :actor, :action, :subject_type,"
        " :subject_id, CAST(:data AS jsonb), :prev_hash, :hash)",
        {**row._asdict(), "data": json.dumps(row.data)},
    )


@pytest.fixture
async def org_entries(client, authority) -> tuple[str, list]:
    """An organisation with two entries on one chain: applied, then approved."""
    org_id = (await client.post("/v1/organizations", json=application("merchant"))).json()["id"]
    r = await client.post(
        f"/v1/organizations/{org_id}/approve", json={"reason": "ok"}, headers=bearer(authority)
    )
    assert r.status_code == 200, r.text
    return org_id, await entries_of(org_id)


class TestEntries:
    async def test_decisions_append_linked_entries(self, org_entries, authority):
        org_id, rows = org_entries
        assert [(r.action, r.subject_type, r.subject_id) for r in rows] == [
            ("organization.applied", "organization", org_id),
            ("organization.approve", "organization", org_id),
        ]
        applied, approved = rows
        assert applied.actor == "public"
        authority_id = security.unverified_claims(authority)["sub"]
        assert approved.actor == f"authority:{authority_id}"
        assert approved.data == {"to": "approved", "reason": "ok"}
        assert approved.chain == applied.chain
        assert approved.seq == applied.seq + 1
        assert approved.prev_hash == applied.hash
        assert approved.hash == audit.entry_hash(
            applied.hash,
            approved.chain,
            approved.seq,
            approved.at,
            approved.actor,
            approved.action,
            approved.subject_type,
            approved.subject_id,
            approved.data,
        )

    async def test_refused_actions_leave_no_entry(self, client, authority, org_entries):
        org_id, rows = org_entries
        r = await client.post(f"/v1/organizations/{org_id}/approve", headers=bearer(authority))
        assert r.status_code == 409
        assert len(await entries_of(org_id)) == len(rows)

    async def test_jobs_and_cli_sessions_write_their_entries(self, app):  # the database set up
        subject = unique("job")
        async with db.session_scope() as session:
            audit.record(session, actor="job:test", action="test.ran", subject_type="job", subject_id=subject)
        rows = await entries_of(subject)
        assert [(r.actor, r.action, r.data) for r in rows] == [("job:test", "test.ran", {})]


class TestVerify:
    async def test_intact_log_verifies(self, org_entries):
        result = await verify()
        assert result.broken == []
        assert result.ok

    async def test_altered_data_names_the_entry(self, org_entries):
        org_id, (applied, _) = org_entries
        try:
            await execute(
                "UPDATE audit_entries SET data = CAST(:d AS jsonb) WHERE chain = :c AND seq = :s",
                {
                    "d": json.dumps({**applied.data, "name": "someone else"}),
                    "c": applied.chain,
                    "s": applied.seq,
                },
            )
            result = await verify()
            assert result.broken == [
                f"entry {applied.chain}:{applied.seq} (organization.applied organization {org_id}) was altered"
            ]
        finally:
            await execute(
                "UPDATE audit_entries SET data = CAST(:d AS jsonb) WHERE chain = :c AND seq = :s",
                {"d": json.dumps(applied.data), "c": applied.chain, "s": applied.seq},
            )
        assert (await verify()).ok

    async def test_altered_actor_or_time_is_detected(self, org_entries):
        _, (_, approved) = org_entries
        for column, value in (("actor", "authority:someone-else"), ("at", approved.at.replace(year=2020))):
            try:
                await execute(
                    f"UPDATE audit_entries SET {column} = :v WHERE chain = :c AND seq = :s",
                    {"v": value, "c": approved.chain, "s": approved.seq},
                )
                assert len((await verify()).broken) == 1
            finally:
                await execute(
                    f"UPDATE audit_entries SET {column} = :v WHERE chain = :c AND seq = :s",
                    {"v": getattr(approved, column), "c": approved.chain, "s": approved.seq},
                )
        assert (await verify()).ok

    async def test_rewritten_entry_with_a_fresh_hash_breaks_the_link(self, org_entries):
        _, (applied, approved) = org_entries
        forged = audit.entry_hash(
            applied.prev_hash,
            applied.chain,
            applied.seq,
            applied.at,
            applied.actor,
            applied.action,
            applied.subject_type,
            applied.subject_id,
            {"forged": True},
        )
        try:
            await execute(
                "UPDATE audit_entries SET data = '{\"forged\": true}', hash = :h WHERE chain = :c AND seq = :s",
                {"h": forged, "c": applied.chain, "s": applied.seq},
            )
            assert (await verify()).broken == [
                f"entry {approved.chain}:{approved.seq} does not link to the previous entry's hash"
            ]
        finally:
            await execute(
                "UPDATE audit_entries SET data = CAST(:d AS jsonb), hash = :h WHERE chain = :c AND seq = :s",
                {"d": json.dumps(applied.data), "h": applied.hash, "c": applied.chain, "s": applied.seq},
            )
        assert (await verify()).ok

    async def test_deleted_entry_is_named_as_missing(self, org_entries):
        _, (applied, approved) = org_entries
        await execute(
            "DELETE FROM audit_entries WHERE chain = :c AND seq = :s", {"c": applied.chain, "s": applied.seq}
        )
        try:
            assert (await verify()).broken == [
                f"entry {applied.chain}:{applied.seq} is missing (before {approved.chain}:{approved.seq})"
            ]
        finally:
            await restore(applied)
        assert (await verify()).ok

    async def test_deleting_the_newest_entries_is_caught_by_the_chain_head(self, org_entries):
        _, (applied, approved) = org_entries  # approved is the newest entry of its chain
        await execute(
            "DELETE FROM audit_entries WHERE chain = :c AND seq = :s",
            {"c": approved.chain, "s": approved.seq},
        )
        try:
            assert (await verify()).broken == [
                f"entry {approved.chain}:{approved.seq} is missing (the end of the chain)"
            ]
        finally:
            await restore(approved)
        assert (await verify()).ok


class TestConcurrentAppends:
    async def test_thirty_concurrent_applications_and_approvals_keep_every_chain(self, client, authority):
        bodies = [application("buyer") for _ in range(30)]
        applied = await asyncio.gather(*(client.post("/v1/organizations", json=b) for b in bodies))
        assert [r.status_code for r in applied] == [201] * 30
        ids = [r.json()["id"] for r in applied]
        approved = await asyncio.gather(
            *(client.post(f"/v1/organizations/{i}/approve", headers=bearer(authority)) for i in ids)
        )
        assert [r.status_code for r in approved] == [200] * 30

        rows = [row for i in ids for row in await entries_of(i)]
        assert len(rows) == 60
        assert len({(r.chain, r.seq) for r in rows}) == 60
        by_org = defaultdict(list)
        for r in rows:
            by_org[r.subject_id].append(r.action)
        assert all(actions == ["organization.applied", "organization.approve"] for actions in by_org.values())
        result = await verify()
        assert result.broken == []


class TestVerifyCommand:
    async def test_exit_codes(self, run_sync, org_entries):
        ok = await invoke_cli(run_sync, "audit", "verify")
        assert ok.exit_code == 0, ok.output
        assert ok.output.startswith("audit log intact: ")

        _, (applied, _) = org_entries
        await execute(
            "UPDATE audit_entries SET actor = 'nobody' WHERE chain = :c AND seq = :s",
            {"c": applied.chain, "s": applied.seq},
        )
        try:
            broken = await invoke_cli(run_sync, "audit", "verify")
            assert broken.exit_code == 1
            assert broken.output == (
                f"broken: entry {applied.chain}:{applied.seq} (organization.applied organization"
                f" {applied.subject_id}) was altered\n"
            )
        finally:
            await execute(
                "UPDATE audit_entries SET actor = :a WHERE chain = :c AND seq = :s",
                {"a": applied.actor, "c": applied.chain, "s": applied.seq},
            )

    async def test_the_installed_command(self, run_sync, servers):
        command = [os.path.join(os.path.dirname(sys.executable), "carbon-points"), "audit", "verify"]
        done = await run_sync(
            subprocess.run, command, capture_output=True, text=True, env=dict(os.environ), timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "audit log intact" in done.stdout
