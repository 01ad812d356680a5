"""Projects: what goes in (once, ever), the report, overlap, publicity, verification and review refusals."""

import asyncio
import uuid
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.cer import repository
from app.cer.models import CerProject
from app.core import clock, db
from app.methodologies import service as methodologies_service
from tests.factories import bearer, make_org
from tests.factories_cer import (
    add_records,
    after_publicity,
    create_project,
    days_ago,
    make_owner,
    project_body,
    review,
    to_verified,
    verifier,
)
from tests.factories_points import make_methodology, record, submit
from tests.factories_scenes import approved_scene


def period(first: int = 6, last: int = 1):
    today = clock.today()
    return today - timedelta(days=first), today - timedelta(days=last)


async def members(project_id: str) -> list[int]:
    async with db.session_scope() as session:
        rows = await session.execute(
            sa.text("SELECT record_id FROM cer_project_records WHERE project_id = :p ORDER BY record_id"),
            {"p": uuid.UUID(project_id)},
        )
        return [r[0] for r in rows]


async def record_ids(owner) -> list[int]:
    async with db.session_scope() as session:
        rows = await session.execute(
            sa.text("SELECT id FROM behaviour_records WHERE operator_id = :o ORDER BY id"),
            {"o": uuid.UUID(owner.org.id)},
        )
        return [r[0] for r in rows]


class TestAggregation:
    async def test_cutoff_date_excludes_earlier_records(self, client, authority, settings, monkeypatch):
        owner = await make_owner(client, authority)
        await add_records(client, owner, [(5, 10.0), (4, 10.0), (2, 10.0), (1, 10.0)])
        monkeypatch.setattr(settings, "cer_cutoff_date", clock.today() - timedelta(days=3))
        project = await create_project(client, owner, *period())
        assert project["record_count"] == 2
        assert project["claimed_g"] == 1_000_000
        ex = project["exclusions"]
        assert (ex["candidates"], ex["before_cutoff"], ex["outside_region"], ex["included"]) == (4, 2, 0, 2)
        assert ex["cutoff_date"] == (clock.today() - timedelta(days=3)).isoformat()
        assert project["report"]["rules"]["cutoff_date"] == ex["cutoff_date"]

    async def test_scene_records_outside_the_region_are_left_out(
        self, client, authority, settings, monkeypatch
    ):
        monkeypatch.setattr(settings, "region_code", "4403")
        owner = await make_owner(client, authority)
        scene_type = await make_methodology(factor="50000", max_record="100", max_day=None, category="scene")
        scene_op = await make_org(client, "scene_operator", authority=authority)
        inside = await approved_scene(
            client,
            authority,
            scene_op,
            behaviour_types=[scene_type],
            city_code="440300",
            district_code="440305",
        )
        outside = await approved_scene(
            client,
            authority,
            scene_op,
            behaviour_types=[scene_type],
            city_code="310100",
            district_code="310104",
        )
        await add_records(client, owner, [(3, 10.0)])  # travel: no scene, in the region
        records = [
            record(owner.ext, scene_type, quantity=q, start=days_ago(n, hour), scene_id=s["id"])
            for n, hour, q, s in ((3, 12, 4.0, inside), (2, 12, 6.0, outside), (2, 15, 2.0, inside))
        ]
        r = await submit(client, owner.org, records)
        assert r.json()["summary"]["accepted"] == 3, r.text
        project = await create_project(client, owner, *period(), methodology_codes=[owner.code, scene_type])
        assert project["record_count"] == 3
        assert project["claimed_g"] == 500_000 + 200_000 + 100_000
        assert (project["exclusions"]["outside_region"], project["exclusions"]["region_code"]) == (1, "4403")
        versions = {v["code"]: v["reduction_g"] for v in project["report"]["by_methodology_version"]}
        assert versions == {owner.code: 500_000, scene_type: 300_000}

    async def test_only_the_owners_records_of_the_codes_and_period(self, client, authority):
        owner = await make_owner(client, authority)
        other = await make_owner(client, authority)
        await add_records(client, owner, [(8, 10.0), (3, 20.0), (2, 30.0)])
        await add_records(client, other, [(3, 40.0)])
        project = await create_project(client, owner, *period())
        mine = await record_ids(owner)
        assert await members(project["id"]) == mine[1:]  # not the one 8 days ago, nor the other owner's
        assert project["claimed_g"] == 2_500_000

    async def test_the_report_is_reproducible(self, client, authority):
        owner = await make_owner(client, authority)
        await add_records(client, owner, [(3, 10.5), (2, 7.25), (1, 3.0)])
        project = await create_project(client, owner, *period())
        r = await client.get(f"/v1/public/cer/projects/{project['id']}/report")
        check = r.json()
        assert check["match"] is True
        assert check["stored_sha256"] == check["recomputed_sha256"] == project["report_sha256"]
        assert check["report"] == project["report"]
        # a tampered membership shows at once
        async with db.session_scope() as session:
            await session.execute(
                sa.text(
                    "DELETE FROM cer_project_records WHERE record_id = (SELECT min(record_id)"
                    " FROM cer_project_records WHERE project_id = :p)"
                ),
                {"p": uuid.UUID(project["id"])},
            )
        r = await client.get(f"/v1/public/cer/projects/{project['id']}/report")
        assert r.json()["match"] is False


class TestOneProjectPerRecord:
    async def test_overlapping_project_is_refused_and_nothing_changes(self, client, authority):
        owner = await make_owner(client, authority)
        await add_records(client, owner, [(4, 10.0), (2, 10.0)])
        first = await create_project(client, owner, *period(6, 3))
        r = await client.post(
            "/v1/cer/projects", json=project_body(owner, *period(5, 1)), headers=owner.headers
        )
        assert (r.status_code, r.json()["code"]) == (409, "overlapping_project")
        assert r.json()["projects"] == [first["id"]]
        # the period after the first one is fine
        second = await create_project(client, owner, *period(2, 1))
        assert (first["record_count"], second["record_count"]) == (1, 1)
        r = await client.get("/v1/cer/projects", headers=owner.headers)
        assert {p["id"] for p in r.json()["items"]} == {first["id"], second["id"]}

    async def test_concurrent_creation_puts_each_record_in_one_project(self, client, authority):
        owner = await make_owner(client, authority)
        await add_records(client, owner, [(3, 10.0), (3, 12.0), (2, 14.0), (2, 16.0)])
        bodies = [project_body(owner, *period()), project_body(owner, *period(5, 2))]
        responses = await asyncio.gather(
            *(client.post("/v1/cer/projects", json=b, headers=owner.headers) for b in bodies * 2)
        )
        statuses = sorted((r.status_code, r.json().get("code")) for r in responses)
        assert statuses == [
            (201, None),
            (409, "overlapping_project"),
            (409, "overlapping_project"),
            (409, "overlapping_project"),
        ]
        [created] = [r.json() for r in responses if r.status_code == 201]
        assert await members(created["id"]) == await record_ids(owner)

    async def test_the_database_refuses_a_record_in_two_projects(self, client, authority):
        """Even without the owner lock and the overlap rule, concurrent aggregations never share a record."""
        owner = await make_owner(client, authority)
        await add_records(client, owner, [(3, 10.0), (2, 10.0), (2, 11.0)])
        start, end = period()
        owner_id = uuid.UUID(owner.org.id)

        async def aggregate_in_own_transaction() -> tuple[uuid.UUID, repository.Aggregation]:
            async with db.session_scope() as session:
                now = clock.now()
                project = CerProject(
                    owner_org_id=owner_id,
                    name="raw",
                    methodology_codes=[owner.code],
                    period_start=start,
                    period_end=end,
                    record_count=0,
                    claimed_g=0,
                    report={},
                    report_sha256="",
                    exclusions={},
                    publicity_starts_on=start,
                    publicity_ends_on=end,
                    created_at=now,
                    updated_at=now,
                )
                session.add(project)
                await session.flush()
                versions = await methodologies_service.versions_by_code(session, [owner.code])
                counts = await repository.aggregate(
                    await db.raw_connection(session),
                    project.id,
                    owner_id,
                    [v.id for v in versions],
                    days_ago(10),
                    days_ago(0, 0),
                    days_ago(400),
                    "",
                )
                await asyncio.sleep(0.05)  # hold the transaction open while the other one runs
                return project.id, counts

        results = await asyncio.gather(aggregate_in_own_transaction(), aggregate_in_own_transaction())
        assert sorted(c.included for _, c in results) == [0, 3]
        assert sorted(c.in_other_projects for _, c in results) == [0, 3]
        together = [rid for pid, _ in results for rid in await members(str(pid))]
        assert sorted(together) == await record_ids(owner)
        async with db.session_scope() as session:
            try:
                async with session.begin_nested():
                    await session.execute(
                        sa.text("INSERT INTO cer_project_records (record_id, project_id) VALUES (:r, :p)"),
                        {"r": together[0], "p": results[0][0]},
                    )
                raise AssertionError("a record went into a second project")
            except IntegrityError:
                pass
        async with db.session_scope() as session:  # the raw projects have no report: they leave no trace
            ids = [pid for pid, _ in results]
            await session.execute(
                sa.text("DELETE FROM cer_project_records WHERE project_id = ANY(:ids)"), {"ids": ids}
            )
            await session.execute(sa.text("DELETE FROM cer_projects WHERE id = ANY(:ids)"), {"ids": ids})


class TestCreationRefusals:
    async def test_bad_input(self, client, authority):
        owner = await make_owner(client, authority)
        await add_records(client, owner, [(3, 10.0)])
        today = clock.today()
        cases = [
            (
                project_body(owner, today - timedelta(days=2), today - timedelta(days=3)),
                422,
                "invalid_period",
            ),
            (project_body(owner, today - timedelta(days=3), today), 422, "invalid_period"),
            (project_body(owner, *period(), methodology_codes=["no-such-code"]), 422, "unknown_methodology"),
            (
                project_body(owner, *period(), compiled_by_org_id=str(uuid.uuid4())),
                422,
                "unknown_organization",
            ),
            (project_body(owner, *period(60, 50)), 409, "no_eligible_records"),
            ({**project_body(owner, *period()), "methodology_codes": []}, 422, "validation_error"),
            (project_body(owner, *period(), name="nul\x00byte"), 422, "validation_error"),
            (
                project_body(owner, date(1999, 12, 31), today - timedelta(days=1)),
                422,
                "validation_error",
            ),  # a Day
        ]
        for body, status, code in cases:
            r = await client.post("/v1/cer/projects", json=body, headers=owner.headers)
            assert (r.status_code, r.json()["code"]) == (status, code), body
        r = await client.get("/v1/cer/projects", headers=owner.headers)
        assert r.json()["items"] == []
        assert await members(str(uuid.uuid4())) == []

    async def test_only_operators_create_projects(self, client, authority):
        buyer = await make_org(client, "buyer", authority=authority)
        r = await client.post("/v1/cer/projects", json={}, headers=buyer.headers)
        assert (r.status_code, r.json()["code"]) == (403, "forbidden_role")


class TestVerificationAndReview:
    async def test_verifier_rules(self, client, authority):
        owner = await make_owner(client, authority)
        await add_records(client, owner, [(3, 10.0)])
        project = await create_project(client, owner, *period())
        pid, auth = project["id"], bearer(authority)
        checker = await verifier(client, authority)
        r = await client.post(
            f"/v1/cer/projects/{pid}/verifier", json={"verifier_org_id": checker.id}, headers=auth
        )
        assert (r.status_code, r.json()["code"]) == (409, "invalid_project_state")
        after_publicity(project)
        r = await client.post(f"/v1/cer/projects/{pid}/submit", headers=owner.headers)
        assert r.status_code == 200, r.text
        stranger = await verifier(client, authority)
        r = await client.post(
            f"/v1/cer/projects/{pid}/verifier", json={"verifier_org_id": checker.id}, headers=auth
        )
        assert r.status_code == 200
        body = {"verified_g": 100, "statement": "ok"}
        r = await client.post(f"/v1/cer/projects/{pid}/verification", json=body, headers=stranger.headers)
        assert (r.status_code, r.json()["code"]) == (404, "project_not_found")
        r = await client.post(
            f"/v1/cer/projects/{pid}/verification",
            json={**body, "documents": ["ftp://x"]},
            headers=checker.headers,
        )
        assert (r.status_code, r.json()["code"]) == (422, "invalid_document_link")
        r = await client.get(f"/v1/cer/projects/{pid}", headers=checker.headers)
        assert (r.json()["status"], r.json()["verified_g"]) == ("verification", None)

    async def test_a_failed_review_rejects_the_project(self, client, authority):
        owner = await make_owner(client, authority)
        await add_records(client, owner, [(3, 10.0)])
        project = await create_project(client, owner, *period())
        await to_verified(client, authority, owner, project)
        r = await client.post(
            "/v1/reviews",
            headers=bearer(authority),
            json={
                "subject_type": "cer_project",
                "subject_id": project["id"],
                "field": "verification",
                "size": 1,
            },
        )
        assert (r.status_code, r.json()["code"]) == (422, "subject_managed_elsewhere")
        await review(client, authority, project["id"], "fail")
        r = await client.get(f"/v1/cer/projects/{project['id']}", headers=owner.headers)
        assert (r.json()["status"], r.json()["decision_reason"]) == ("rejected", "checked")
        r = await client.post(
            f"/v1/cer/projects/{project['id']}/filing",
            json={"outcome": "filed", "reason": "x"},
            headers=bearer(authority),
        )
        assert (r.status_code, r.json()["code"]) == (409, "invalid_project_state")
        r = await client.post(f"/v1/cer/projects/{project['id']}/issue", headers=bearer(authority))
        assert (r.status_code, r.json()["code"]) == (409, "not_filed")

    async def test_projects_are_visible_to_their_owner_and_verifier_only(self, client, authority):
        owner = await make_owner(client, authority)
        other = await make_owner(client, authority)
        await add_records(client, owner, [(3, 10.0)])
        project = await create_project(client, owner, *period())
        r = await client.get(f"/v1/cer/projects/{project['id']}", headers=other.headers)
        assert (r.status_code, r.json()["code"]) == (404, "project_not_found")
        r = await client.post(f"/v1/cer/projects/{project['id']}/submit", headers=other.headers)
        assert (r.status_code, r.json()["code"]) == (404, "project_not_found")
        r = await client.get(f"/v1/public/cer/projects/{project['id']}")
        assert r.status_code == 200 and r.json()["publicity"] == "in_progress"
