"""Review panels over HTTP: the draw and its record, conflict exclusion, opinions, the decision."""

import asyncio
import re
import uuid

import pytest
import sqlalchemy as sa

from app.core import db
from app.reviews import service as reviews_service
from app.reviews.draw import draw
from app.reviews.exceptions import ReviewNotPassed
from tests.factories import assert_problem, bearer, make_org, unique
from tests.factories_scenes import EXPERTS, make_expert, make_scene, strangers

PROBLEM = "application/problem+json"
FIELD = "verification"


async def open_panel(
    client, authority: str, *, keep: list[str] | None = None, field: str = FIELD, **body
) -> dict:
    """A panel on a fresh methodology-version subject, drawn only among ``keep`` (default: experts we know)."""
    payload = {
        "subject_type": "methodology_version",
        "subject_id": str(uuid.uuid4()),
        "field": field,
        "size": 2,
        "exclude_experts": await strangers(client, authority, field, keep),
        **body,
    }
    r = await client.post("/v1/reviews", json=payload, headers=bearer(authority))
    assert r.status_code == 201, r.text
    return r.json()


async def opine(client, panel: dict, expert_id, verdict: str = "pass", score: int = 85):
    """The member's opinion, after their declaration of no conflict (a repeat's 409 or an outsider's 403 aside)."""
    headers = EXPERTS[str(expert_id)].headers
    await client.post(f"/v1/reviews/{panel['id']}/declaration", json={"conflict": False}, headers=headers)
    return await client.post(
        f"/v1/reviews/{panel['id']}/opinions",
        json={"verdict": verdict, "score": score, "text": f"{verdict}: well argued"},
        headers=EXPERTS[str(expert_id)].headers,
    )


@pytest.fixture
async def three(client, authority) -> list:
    return [await make_expert(client, authority, fields=[FIELD]) for _ in range(3)]


class TestTheDraw:
    async def test_the_record_lets_anyone_rerun_the_draw(self, client, authority, three):
        keep = [e.id for e in three]
        panel = await open_panel(client, authority, keep=keep, seed="public-seed-2026")
        r = await client.get(f"/v1/reviews/{panel['id']}/draw")  # public, no token
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "public, max-age=86400, immutable"
        record = r.json()
        assert record["seed"] == "public-seed-2026"
        assert record["algorithm"] == "hmac-sha256-rank/v1"
        assert record["candidates"] == sorted(keep)
        assert record["chosen"] == draw("public-seed-2026", record["candidates"], 2)
        assert [str(m["expert_id"]) for m in panel["members"]] == record["chosen"]
        assert [m["position"] for m in panel["members"]] == [1, 2]
        assert {e["reason"] for e in record["excluded"]} <= {"excluded"}

    async def test_the_same_seed_and_pool_draw_the_same_panel(self, client, authority, three):
        keep = [e.id for e in three]
        first = await open_panel(client, authority, keep=keep, seed="same-seed-xyz")
        second = await open_panel(client, authority, keep=keep, seed="same-seed-xyz")
        assert [m["expert_id"] for m in first["members"]] == [m["expert_id"] for m in second["members"]]

    async def test_a_seed_is_generated_when_none_is_given(self, client, authority, three):
        panel = await open_panel(client, authority, keep=[e.id for e in three])
        record = (await client.get(f"/v1/reviews/{panel['id']}/draw")).json()
        assert re.fullmatch(r"[0-9a-f]{32}", record["seed"])
        assert record["chosen"] == draw(record["seed"], record["candidates"], 2)

    async def test_the_draw_is_audited(self, client, authority, three):
        panel = await open_panel(client, authority, keep=[e.id for e in three], seed="audited-seed")
        async with db.session_scope() as session:
            row = (
                await session.execute(
                    sa.text(
                        "SELECT action, data FROM audit_entries WHERE subject_type = 'review_panel'"
                        " AND subject_id = :id"
                    ),
                    {"id": panel["id"]},
                )
            ).one()
        assert row.action == "review.panel_opened"
        assert (row.data["seed"], row.data["chosen"]) == (
            "audited-seed",
            [str(m["expert_id"]) for m in panel["members"]],
        )


class TestConflictExclusion:
    async def test_experts_affiliated_with_the_applicant_are_never_candidates(self, client, authority):
        applicant = await make_org(client, "scene_operator", authority=authority)
        name = unique("Acme Green Co., Ltd")
        by_org = await make_expert(
            client, authority, fields=[FIELD], affiliation="Some Other Name", org_id=applicant.id
        )
        by_name = await make_expert(client, authority, fields=[FIELD], affiliation=f"  {name.upper()}  ")
        by_fullwidth = await make_expert(
            client, authority, fields=[FIELD], affiliation=name.replace("Acme", "Ａｃｍｅ").replace(",", "，")
        )
        declared = await make_expert(client, authority, fields=[FIELD])
        free = [await make_expert(client, authority, fields=[FIELD]) for _ in range(2)]
        others = await strangers(
            client,
            authority,
            FIELD,
            [by_org.id, by_name.id, by_fullwidth.id, declared.id] + [f.id for f in free],
        )
        r = await client.post(
            "/v1/reviews",
            json={
                "subject_type": "methodology_version",
                "subject_id": unique("p"),
                "field": FIELD,
                "size": 2,
                "exclude_affiliations": [applicant.id, name.lower().replace(" ", "")],
                "exclude_experts": others + [declared.id],
            },
            headers=bearer(authority),
        )
        assert r.status_code == 201, r.text
        record = (await client.get(f"/v1/reviews/{r.json()['id']}/draw")).json()
        assert record["candidates"] == sorted(f.id for f in free)
        assert sorted(record["chosen"]) == sorted(f.id for f in free)
        reasons = {e["expert_id"]: e["reason"] for e in record["excluded"]}
        assert {k: reasons[k] for k in (by_org.id, by_name.id, by_fullwidth.id, declared.id)} == {
            by_org.id: "affiliated_with_applicant",
            by_name.id: "affiliated_with_applicant",
            by_fullwidth.id: "affiliated_with_applicant",
            declared.id: "excluded",
        }

    async def test_a_scene_review_excludes_the_scene_operators_experts(self, client, authority):
        operator = await make_org(client, "scene_operator", authority=authority)
        insider = await make_expert(
            client, authority, fields=["retail"], org_id=operator.id, affiliation="Insider"
        )
        outsider = await make_expert(client, authority, fields=["retail"])
        scene = await make_scene(client, operator, submit=True)
        r = await client.post(
            f"/v1/scenes/{scene['id']}/review",
            json={
                "size": 1,
                "exclude_experts": await strangers(client, authority, "retail", [insider.id, outsider.id]),
            },
            headers=bearer(authority),
        )
        assert r.status_code == 201, r.text
        assert [str(m["expert_id"]) for m in r.json()["members"]] == [outsider.id]
        record = (await client.get(f"/v1/reviews/{r.json()['id']}/draw")).json()
        assert insider.id not in record["candidates"]
        assert {"expert_id": insider.id, "reason": "affiliated_with_applicant"} in record["excluded"]

    async def test_inactive_experts_are_not_drawn(self, client, authority, three):
        await client.patch(f"/v1/experts/{three[0].id}", json={"active": False}, headers=bearer(authority))
        panel = await open_panel(client, authority, keep=[e.id for e in three])
        record = (await client.get(f"/v1/reviews/{panel['id']}/draw")).json()
        assert record["candidates"] == sorted([three[1].id, three[2].id])

    async def test_more_experts_than_eligible(self, client, authority, three):
        keep = [three[0].id, three[1].id]
        r = await client.post(
            "/v1/reviews",
            json={
                "subject_type": "methodology_version",
                "subject_id": unique("m"),
                "field": FIELD,
                "size": 3,
                "exclude_experts": await strangers(client, authority, FIELD, keep),
            },
            headers=bearer(authority),
        )
        problem = assert_problem(r, 409, "not_enough_experts")
        assert (problem["eligible"], problem["needed"]) == (2, 3)


class TestBadPanels:
    async def test_an_unknown_field(self, client, authority):
        r = await client.post(
            "/v1/reviews",
            json={"subject_type": "x", "subject_id": "1", "field": "magic"},
            headers=bearer(authority),
        )
        assert_problem(r, 422, "unknown_field")

    async def test_a_quorum_larger_than_the_panel(self, client, authority, three):
        r = await client.post(
            "/v1/reviews",
            json={"subject_type": "x", "subject_id": unique("s"), "field": FIELD, "size": 2, "quorum": 3},
            headers=bearer(authority),
        )
        assert_problem(r, 422, "invalid_panel")

    async def test_one_open_panel_per_subject(self, client, authority, three):
        panel = await open_panel(client, authority, keep=[e.id for e in three])
        r = await client.post(
            "/v1/reviews",
            json={
                "subject_type": panel["subject_type"],
                "subject_id": panel["subject_id"],
                "field": FIELD,
                "size": 1,
            },
            headers=bearer(authority),
        )
        assert_problem(r, 409, "panel_already_open")

    async def test_scene_reviews_open_through_the_scene(self, client, authority):
        r = await client.post(
            "/v1/reviews",
            json={"subject_type": "scene", "subject_id": str(uuid.uuid4()), "field": "retail", "size": 1},
            headers=bearer(authority),
        )
        assert_problem(r, 422, "subject_managed_elsewhere")

    async def test_only_the_authority_opens_panels(self, client, authority, three):
        r = await client.post(
            "/v1/reviews",
            json={"subject_type": "x", "subject_id": "1", "field": FIELD},
            headers=three[0].headers,
        )
        assert_problem(r, 403, "forbidden_role")


class TestOpinions:
    async def test_each_member_gives_one_opinion(self, client, authority, three):
        panel = await open_panel(client, authority, keep=[e.id for e in three])
        member = panel["members"][0]["expert_id"]
        r = await opine(client, panel, member, "pass", 91)
        assert r.status_code == 201, r.text
        mine = next(m for m in r.json()["members"] if m["expert_id"] == member)
        assert (mine["submitted"], mine["verdict"], mine["score"]) == (True, "pass", 91)
        assert r.json()["opinions_in"] == 1
        assert_problem(await opine(client, panel, member, "fail", 10), 409, "opinion_already_submitted")

    async def test_twice_at_once_is_still_once(self, client, authority, three):
        panel = await open_panel(client, authority, keep=[e.id for e in three])
        member = panel["members"][0]["expert_id"]
        results = await asyncio.gather(*(opine(client, panel, member, "pass", 50 + i) for i in range(4)))
        assert sorted(r.status_code for r in results) == [201, 409, 409, 409]
        view = (await client.get(f"/v1/reviews/{panel['id']}", headers=bearer(authority))).json()
        assert view["opinions_in"] == 1

    async def test_an_expert_not_on_the_panel(self, client, authority, three):
        panel = await open_panel(client, authority, keep=[e.id for e in three])
        outsider = next(e for e in three if e.id not in {str(m["expert_id"]) for m in panel["members"]})
        assert_problem(await opine(client, panel, outsider.id), 403, "not_on_panel")
        r = await client.get(f"/v1/reviews/{panel['id']}", headers=outsider.headers)
        assert_problem(r, 404, "review_not_found")

    async def test_a_bad_score(self, client, authority, three):
        panel = await open_panel(client, authority, keep=[e.id for e in three])
        r = await client.post(
            f"/v1/reviews/{panel['id']}/opinions",
            json={"verdict": "pass", "score": 101, "text": "x"},
            headers=EXPERTS[str(panel["members"][0]["expert_id"])].headers,
        )
        assert_problem(r, 422, "validation_error")

    async def test_an_unknown_panel(self, client, three):
        r = await client.post(
            f"/v1/reviews/{uuid.uuid4()}/opinions",
            json={"verdict": "pass", "score": 1, "text": "x"},
            headers=three[0].headers,
        )
        assert_problem(r, 404, "review_not_found")

    async def test_members_see_their_own_opinion_only_the_authority_sees_all(self, client, authority, three):
        panel = await open_panel(client, authority, keep=[e.id for e in three])
        a, b = (m["expert_id"] for m in panel["members"])
        await opine(client, panel, a, "pass", 70)
        await opine(client, panel, b, "fail", 20)
        as_a = (await client.get(f"/v1/reviews/{panel['id']}", headers=EXPERTS[str(a)].headers)).json()
        assert [(m["submitted"], m["verdict"]) for m in as_a["members"]] == [(True, "pass"), (True, None)]
        full = (await client.get(f"/v1/reviews/{panel['id']}", headers=bearer(authority))).json()
        assert [(m["verdict"], m["score"]) for m in full["members"]] == [("pass", 70), ("fail", 20)]
        assert [m["text"] for m in full["members"]] == ["pass: well argued", "fail: well argued"]

    async def test_experts_list_their_own_panels(self, client, authority):
        mine = [await make_expert(client, authority, fields=[FIELD]) for _ in range(2)]
        panel = await open_panel(client, authority, keep=[e.id for e in mine])
        r = await client.get("/v1/reviews", params={"mine": "true"}, headers=mine[0].headers)
        assert [p["id"] for p in r.json()["items"]] == [panel["id"]]
        r = await client.get("/v1/reviews", params={"mine": "true"}, headers=bearer(authority))
        assert_problem(r, 403, "not_an_expert")
        r = await client.get(
            "/v1/reviews", params={"subject_id": panel["subject_id"]}, headers=bearer(authority)
        )
        assert [p["id"] for p in r.json()["items"]] == [panel["id"]]


class TestDecision:
    async def test_not_before_every_opinion_is_in(self, client, authority, three):
        panel = await open_panel(client, authority, keep=[e.id for e in three])
        decide = {"outcome": "pass", "reason": "sound"}
        url = f"/v1/reviews/{panel['id']}/decision"
        problem = assert_problem(
            await client.post(url, json=decide, headers=bearer(authority)), 409, "opinions_missing"
        )
        assert (problem["opinions_in"], problem["quorum"]) == (0, 2)
        await opine(client, panel, panel["members"][0]["expert_id"])
        assert_problem(
            await client.post(url, json=decide, headers=bearer(authority)), 409, "opinions_missing"
        )
        await opine(client, panel, panel["members"][1]["expert_id"], "fail", 40)
        r = await client.post(url, json=decide, headers=bearer(authority))
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["outcome"], r.json()["reason"]) == ("decided", "pass", "sound")
        assert r.json()["decided_by"].startswith("authority:")

    async def test_a_quorum_lets_the_authority_decide_earlier(self, client, authority, three):
        panel = await open_panel(client, authority, keep=[e.id for e in three], quorum=1)
        await opine(client, panel, panel["members"][1]["expert_id"], "fail", 10)
        r = await client.post(
            f"/v1/reviews/{panel['id']}/decision",
            json={"outcome": "fail", "reason": "weak"},
            headers=bearer(authority),
        )
        assert r.status_code == 200, r.text
        late = await opine(client, panel, panel["members"][0]["expert_id"])
        assert_problem(late, 409, "panel_closed")

    async def test_once(self, client, authority, three):
        panel = await open_panel(client, authority, keep=[e.id for e in three], quorum=1)
        await opine(client, panel, panel["members"][0]["expert_id"])
        url = f"/v1/reviews/{panel['id']}/decision"
        results = await asyncio.gather(
            client.post(url, json={"outcome": "pass", "reason": "a"}, headers=bearer(authority)),
            client.post(url, json={"outcome": "fail", "reason": "b"}, headers=bearer(authority)),
        )
        assert sorted(r.status_code for r in results) == [200, 409]
        assert [r.json()["code"] for r in results if r.status_code == 409] == ["panel_closed"]

    async def test_only_the_authority_decides(self, client, authority, three):
        panel = await open_panel(client, authority, keep=[e.id for e in three])
        r = await client.post(
            f"/v1/reviews/{panel['id']}/decision",
            json={"outcome": "pass", "reason": "me"},
            headers=EXPERTS[str(panel["members"][0]["expert_id"])].headers,
        )
        assert_problem(r, 403, "forbidden_role")

    async def test_opinions_and_decision_are_audited(self, client, authority, three):
        panel = await open_panel(client, authority, keep=[e.id for e in three], quorum=1)
        await opine(client, panel, panel["members"][0]["expert_id"])
        await client.post(
            f"/v1/reviews/{panel['id']}/decision",
            json={"outcome": "pass", "reason": "ok"},
            headers=bearer(authority),
        )
        async with db.session_scope() as session:
            actions = (
                (
                    await session.execute(
                        sa.text(
                            "SELECT action FROM audit_entries WHERE subject_type = 'review_panel'"
                            " AND subject_id = :id ORDER BY at, seq"
                        ),
                        {"id": panel["id"]},
                    )
                )
                .scalars()
                .all()
            )
        assert actions == [
            "review.panel_opened",
            "review.no_conflict_declared",
            "review.opinion_submitted",
            "review.decided",
        ]


class TestRequirePassed:
    async def check(self, subject_id: str) -> None:
        async with db.session_scope() as session:
            await reviews_service.require_passed(session, "methodology_version", subject_id)

    async def test_the_gate_follows_the_latest_panel(self, client, authority, three):
        with pytest.raises(ReviewNotPassed):
            await self.check(str(uuid.uuid4()))
        panel = await open_panel(client, authority, keep=[e.id for e in three], quorum=1)
        with pytest.raises(ReviewNotPassed):
            await self.check(panel["subject_id"])
        await opine(client, panel, panel["members"][0]["expert_id"], "fail", 10)
        await client.post(
            f"/v1/reviews/{panel['id']}/decision",
            json={"outcome": "fail", "reason": "no"},
            headers=bearer(authority),
        )
        with pytest.raises(ReviewNotPassed) as failed:
            await self.check(panel["subject_id"])
        assert (failed.value.status, failed.value.code) == (409, "review_not_passed")
        again = await open_panel(
            client, authority, keep=[e.id for e in three], quorum=1, subject_id=panel["subject_id"]
        )
        await opine(client, again, again["members"][0]["expert_id"])
        await client.post(
            f"/v1/reviews/{again['id']}/decision",
            json={"outcome": "pass", "reason": "fixed"},
            headers=bearer(authority),
        )
        await self.check(panel["subject_id"])
