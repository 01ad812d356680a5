"""Scenes over HTTP: application, expert review, approval with a label, suspension, revocation, changes."""

import re
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from app.core import db
from app.scenes import service as scenes_service
from app.scenes.exceptions import UnknownBehaviourType
from tests.factories import assert_problem, bearer, make_org
from tests.factories_scenes import (
    PLATE,
    active_expert_ids,
    approved_scene,
    decide_panel,
    ensure_experts,
    make_scene,
    open_scene_review,
    scene_body,
    strangers,
)

PROBLEM = "application/problem+json"
LABEL = re.compile(r"SZ-CJ-\d{4}-\d{6}")


@pytest.fixture(autouse=True)
async def expert_pool(authority, client) -> None:
    """An expert pool to draw panels from."""
    await ensure_experts(client, authority)


@pytest.fixture
async def operator(client, authority):
    return await make_org(client, "scene_operator", authority=authority)


async def get(client, scene: dict, headers) -> dict:
    r = await client.get(f"/v1/scenes/{scene['id']}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def public_ids(client, **params) -> set[str]:
    r = await client.get("/v1/public/scenes", params={"limit": 200, **params})
    assert r.status_code == 200, r.text
    return {s["id"] for s in r.json()["items"]}


async def audit_actions(scene_id: str) -> list[str]:
    async with db.session_scope() as session:
        rows = await session.execute(
            sa.text(
                "SELECT action FROM audit_entries WHERE subject_type = 'scene' AND subject_id = :id"
                " ORDER BY at, seq"
            ),
            {"id": scene_id},
        )
        return list(rows.scalars())


class TestApplication:
    async def test_a_scene_operator_applies_with_a_draft(self, client, operator):
        body = scene_body(behaviour_types=["own_cup", PLATE, "own_cup"])
        r = await client.post("/v1/scenes", json=body, headers=operator.headers)
        assert r.status_code == 201, r.text
        scene = r.json()
        assert (scene["status"], scene["operator_id"], scene["label_code"]) == ("draft", operator.id, None)
        assert scene["behaviour_types"] == ["own_cup", PLATE]
        for key in (
            "name",
            "category",
            "address",
            "city_code",
            "district_code",
            "lat",
            "lng",
            "opening_hours",
            "description",
            "evidence_links",
        ):
            assert scene[key] == body[key]
        assert scene["change"] is None

    async def test_free_text_opening_hours(self, client, operator):
        scene = await make_scene(client, operator, opening_hours="daily 07:00-22:00")
        assert scene["opening_hours"] == "daily 07:00-22:00"

    async def test_the_whole_lifecycle(self, client, authority, operator):
        scene = await make_scene(client, operator)
        r = await client.post(f"/v1/scenes/{scene['id']}/submit", headers=operator.headers)
        assert r.status_code == 200 and r.json()["status"] == "submitted", r.text
        panel = await open_scene_review(client, authority, scene["id"])
        assert (panel["subject_type"], panel["subject_id"], panel["field"]) == (
            "scene",
            scene["id"],
            "retail",
        )
        under = await get(client, scene, operator.headers)
        assert (under["status"], under["review_panel_id"]) == ("under_review", panel["id"])
        assert scene["id"] not in await public_ids(client, city_code="440300", district_code="440305")

        decided = await decide_panel(client, authority, panel, "pass", "meets the guidelines")
        assert decided["outcome"] == "pass"
        approved = await get(client, scene, operator.headers)
        assert approved["status"] == "approved"
        assert LABEL.fullmatch(approved["label_code"]), approved["label_code"]
        assert approved["label_code"].split("-")[2] == str(datetime.now(UTC).astimezone().year)
        assert approved["reason"] == "meets the guidelines"
        public = (await client.get(f"/v1/public/scenes/{scene['id']}")).json()
        assert (public["label_code"], public["name"]) == (approved["label_code"], scene["name"])

        r = await client.post(
            f"/v1/scenes/{scene['id']}/suspend", json={"reason": "complaints"}, headers=bearer(authority)
        )
        assert (r.status_code, r.json()["status"], r.json()["reason"]) == (200, "suspended", "complaints")
        assert_problem(await client.get(f"/v1/public/scenes/{scene['id']}"), 404, "scene_not_found")

        r = await client.post(
            f"/v1/scenes/{scene['id']}/reinstate", json={"reason": "fixed"}, headers=bearer(authority)
        )
        assert (r.status_code, r.json()["status"], r.json()["label_code"]) == (
            200,
            "approved",
            approved["label_code"],
        )
        assert (await client.get(f"/v1/public/scenes/{scene['id']}")).status_code == 200

        r = await client.post(
            f"/v1/scenes/{scene['id']}/revoke", json={"reason": "fraud"}, headers=bearer(authority)
        )
        assert (r.status_code, r.json()["status"]) == (200, "revoked")
        for action in ("reinstate", "suspend", "revoke"):
            r = await client.post(
                f"/v1/scenes/{scene['id']}/{action}", json={"reason": "x"}, headers=bearer(authority)
            )
            assert_problem(r, 409, "invalid_transition")
        assert_problem(await client.get(f"/v1/public/scenes/{scene['id']}"), 404, "scene_not_found")

        assert await audit_actions(scene["id"]) == [
            "scene.created",
            "scene.submitted",
            "scene.review_opened",
            "scene.approved",
            "scene.suspend",
            "scene.reinstate",
            "scene.revoke",
        ]

    async def test_rejected_with_reasons_then_fixed_and_resubmitted(self, client, authority, operator):
        scene = await make_scene(client, operator, submit=True)
        panel = await open_scene_review(client, authority, scene["id"])
        await decide_panel(client, authority, panel, "fail", "no evidence of reusable cups")
        rejected = await get(client, scene, operator.headers)
        assert (rejected["status"], rejected["reason"], rejected["label_code"]) == (
            "rejected",
            "no evidence of reusable cups",
            None,
        )
        r = await client.patch(
            f"/v1/scenes/{scene['id']}",
            json={"evidence_links": ["https://example.org/cups"]},
            headers=operator.headers,
        )
        assert (r.status_code, r.json()["status"], r.json()["evidence_links"]) == (
            200,
            "rejected",
            ["https://example.org/cups"],
        )
        r = await client.post(f"/v1/scenes/{scene['id']}/submit", headers=operator.headers)
        assert (r.status_code, r.json()["status"], r.json()["reason"]) == (200, "submitted", None)
        panel = await open_scene_review(client, authority, scene["id"])
        await decide_panel(client, authority, panel, "pass", "now fine")
        assert (await get(client, scene, operator.headers))["status"] == "approved"

    async def test_null_clears_only_the_opening_hours(self, client, operator):
        scene = await make_scene(client, operator)
        for body in (
            {"lat": None},
            {"name": None, "lng": None},
            {"behaviour_types": None},
            {"description": None},
        ):
            r = await client.patch(f"/v1/scenes/{scene['id']}", json=body, headers=operator.headers)
            assert_problem(r, 422, "validation_error")
        assert await get(client, scene, operator.headers) == scene
        r = await client.patch(
            f"/v1/scenes/{scene['id']}", json={"opening_hours": None}, headers=operator.headers
        )
        assert (r.status_code, r.json()["opening_hours"], r.json()["lat"]) == (200, None, scene["lat"])

    async def test_two_approved_scenes_get_different_labels(self, client, authority, operator):
        a = await approved_scene(client, authority, operator)
        b = await approved_scene(client, authority, operator)
        assert LABEL.fullmatch(a["label_code"]) and LABEL.fullmatch(b["label_code"])
        assert a["label_code"] != b["label_code"]

    async def test_public_institutions_are_reviewed_by_building_experts(self, client, authority, operator):
        await ensure_experts(client, authority, "buildings")
        scene = await make_scene(client, operator, submit=True, category="public_institution")
        panel = await open_scene_review(client, authority, scene["id"], field="buildings")
        assert panel["field"] == "buildings"


class TestChangesToAnApprovedScene:
    async def test_the_approved_version_stays_live_until_the_change_passes(self, client, authority, operator):
        scene = await approved_scene(client, authority, operator)
        r = await client.patch(
            f"/v1/scenes/{scene['id']}", json={"name": "Renamed Cafe", "lat": 22.55}, headers=operator.headers
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["status"], body["name"], body["lat"]) == ("approved", scene["name"], scene["lat"])
        assert body["change"]["status"] == "submitted"
        assert (body["change"]["proposed"]["name"], body["change"]["proposed"]["lat"]) == (
            "Renamed Cafe",
            22.55,
        )
        assert (await client.get(f"/v1/public/scenes/{scene['id']}")).json()["name"] == scene["name"]

        r = await client.patch(
            f"/v1/scenes/{scene['id']}", json={"name": "Renamed Cafe 2"}, headers=operator.headers
        )
        assert r.json()["change"]["id"] == body["change"]["id"]
        assert (r.json()["change"]["proposed"]["name"], r.json()["change"]["proposed"]["lat"]) == (
            "Renamed Cafe 2",
            22.55,
        )

        panel = await open_scene_review(client, authority, scene["id"])
        assert (panel["subject_type"], panel["subject_id"]) == ("scene_change", body["change"]["id"])
        r = await client.patch(f"/v1/scenes/{scene['id']}", json={"name": "Third"}, headers=operator.headers)
        assert_problem(r, 409, "change_under_review")
        assert (await get(client, scene, operator.headers))["change"]["status"] == "under_review"

        await decide_panel(client, authority, panel, "pass", "ok")
        after = await get(client, scene, operator.headers)
        assert (after["status"], after["name"], after["lat"], after["label_code"]) == (
            "approved",
            "Renamed Cafe 2",
            22.55,
            scene["label_code"],
        )
        assert after["change"]["status"] == "approved"
        assert (await client.get(f"/v1/public/scenes/{scene['id']}")).json()["name"] == "Renamed Cafe 2"
        assert (await audit_actions(scene["id"]))[-4:] == [
            "scene.change_proposed",
            "scene.change_proposed",
            "scene.review_opened",
            "scene.change_approved",
        ]

    async def test_a_rejected_change_leaves_the_scene_as_it_was(self, client, authority, operator):
        scene = await approved_scene(client, authority, operator)
        await client.patch(
            f"/v1/scenes/{scene['id']}", json={"behaviour_types": [PLATE]}, headers=operator.headers
        )
        panel = await open_scene_review(client, authority, scene["id"])
        await decide_panel(client, authority, panel, "fail", "not a cafe thing")
        after = await get(client, scene, operator.headers)
        assert (after["status"], after["behaviour_types"]) == ("approved", ["own_cup"])
        assert (after["change"]["status"], after["change"]["reason"]) == ("rejected", "not a cafe thing")

    async def test_nothing_to_review_on_an_unchanged_approved_scene(self, client, authority, operator):
        scene = await approved_scene(client, authority, operator)
        r = await client.post(f"/v1/scenes/{scene['id']}/review", json={"size": 1}, headers=bearer(authority))
        assert_problem(r, 409, "invalid_transition")


class TestOutOfOrder:
    async def test_transitions_out_of_order(self, client, authority, operator):
        draft = await make_scene(client, operator)
        a = bearer(authority)
        assert_problem(
            await client.post(f"/v1/scenes/{draft['id']}/review", json={}, headers=a),
            409,
            "invalid_transition",
        )
        for action in ("suspend", "reinstate", "revoke"):
            r = await client.post(f"/v1/scenes/{draft['id']}/{action}", json={"reason": "x"}, headers=a)
            assert_problem(r, 409, "invalid_transition")
        await client.post(f"/v1/scenes/{draft['id']}/submit", headers=operator.headers)
        assert_problem(
            await client.post(f"/v1/scenes/{draft['id']}/submit", headers=operator.headers),
            409,
            "invalid_transition",
        )
        r = await client.patch(f"/v1/scenes/{draft['id']}", json={"name": "x"}, headers=operator.headers)
        assert_problem(r, 409, "invalid_transition")
        await open_scene_review(client, authority, draft["id"])
        assert_problem(
            await client.post(f"/v1/scenes/{draft['id']}/review", json={}, headers=a),
            409,
            "invalid_transition",
        )
        r = await client.post(f"/v1/scenes/{draft['id']}/reinstate", json={"reason": "x"}, headers=a)
        assert_problem(r, 409, "invalid_transition")

    async def test_reinstating_an_approved_scene(self, client, authority, operator):
        scene = await approved_scene(client, authority, operator)
        r = await client.post(
            f"/v1/scenes/{scene['id']}/reinstate", json={"reason": "x"}, headers=bearer(authority)
        )
        assert_problem(r, 409, "invalid_transition")


class TestWhoMay:
    async def test_only_scene_operators_apply(self, client, authority):
        merchant = await make_org(client, "merchant", authority=authority)
        assert_problem(
            await client.post("/v1/scenes", json=scene_body(), headers=merchant.headers),
            403,
            "forbidden_role",
        )
        assert_problem(
            await client.post("/v1/scenes", json=scene_body(), headers=bearer(authority)),
            403,
            "forbidden_role",
        )
        assert_problem(await client.post("/v1/scenes", json=scene_body()), 401, "not_authenticated")

    async def test_another_operators_scene_does_not_exist_for_you(self, client, authority, operator):
        scene = await make_scene(client, operator)
        other = await make_org(client, "scene_operator", authority=authority)
        assert_problem(
            await client.get(f"/v1/scenes/{scene['id']}", headers=other.headers), 404, "scene_not_found"
        )
        r = await client.patch(f"/v1/scenes/{scene['id']}", json={"name": "mine now"}, headers=other.headers)
        assert_problem(r, 404, "scene_not_found")
        assert_problem(
            await client.post(f"/v1/scenes/{scene['id']}/submit", headers=other.headers),
            404,
            "scene_not_found",
        )
        r = await client.get("/v1/scenes", headers=other.headers)
        assert r.json()["items"] == []

    async def test_operators_list_their_own_the_authority_all(self, client, authority, operator):
        a = await make_scene(client, operator)
        b = await make_scene(client, operator, submit=True)
        r = await client.get("/v1/scenes", headers=operator.headers)
        assert [s["id"] for s in r.json()["items"]] == [b["id"], a["id"]]
        r = await client.get(
            "/v1/scenes", params={"status": "submitted", "limit": 1}, headers=operator.headers
        )
        assert [s["id"] for s in r.json()["items"]] == [b["id"]]
        r = await client.get("/v1/scenes", params={"limit": 1}, headers=operator.headers)
        r2 = await client.get(
            "/v1/scenes", params={"limit": 1, "cursor": r.json()["next_cursor"]}, headers=operator.headers
        )
        assert [r.json()["items"][0]["id"], r2.json()["items"][0]["id"]] == [b["id"], a["id"]]
        assert (await client.get(f"/v1/scenes/{a['id']}", headers=bearer(authority))).status_code == 200

    async def test_only_the_authority_reviews_and_decides(self, client, operator):
        scene = await make_scene(client, operator, submit=True)
        assert_problem(
            await client.post(f"/v1/scenes/{scene['id']}/review", json={}, headers=operator.headers),
            403,
            "forbidden_role",
        )
        r = await client.post(
            f"/v1/scenes/{scene['id']}/suspend", json={"reason": "x"}, headers=operator.headers
        )
        assert_problem(r, 403, "forbidden_role")


class TestBadApplications:
    @pytest.mark.parametrize(
        ("overrides", "code"),
        [
            ({"lat": 91}, "coordinates_out_of_range"),
            ({"lng": -180.5}, "coordinates_out_of_range"),
            ({"category": "shop"}, "unknown_category"),
            ({"behaviour_types": ["metro"]}, "unknown_behaviour_type"),
            ({"city_code": "440305"}, "invalid_division_code"),
            ({"district_code": "450305"}, "invalid_division_code"),
            ({"city_code": "44030"}, "invalid_division_code"),
            ({"evidence_links": ["ftp://example.org/x"]}, "invalid_evidence_link"),
            ({"evidence_links": ["not a url"]}, "invalid_evidence_link"),
        ],
    )
    async def test_each_has_its_own_code(self, client, operator, overrides, code):
        r = await client.post("/v1/scenes", json=scene_body(**overrides), headers=operator.headers)
        assert_problem(r, 422, code)

    async def test_an_edit_is_validated_too(self, client, operator):
        scene = await make_scene(client, operator)
        r = await client.patch(f"/v1/scenes/{scene['id']}", json={"lat": -90.0001}, headers=operator.headers)
        assert_problem(r, 422, "coordinates_out_of_range")

    async def test_a_missing_field(self, client, operator):
        body = scene_body()
        del body["lat"]
        assert_problem(
            await client.post("/v1/scenes", json=body, headers=operator.headers), 422, "validation_error"
        )

    async def test_a_review_with_more_experts_than_eligible(self, client, authority, operator):
        scene = await make_scene(client, operator, submit=True)
        keep = (await active_expert_ids(client, authority, "retail"))[:1]
        exclude = await strangers(client, authority, "retail", keep)
        r = await client.post(
            f"/v1/scenes/{scene['id']}/review",
            json={"size": 2, "exclude_experts": exclude},
            headers=bearer(authority),
        )
        problem = assert_problem(r, 409, "not_enough_experts")
        assert (problem["eligible"], problem["needed"]) == (1, 2)
        assert (await client.get(f"/v1/scenes/{scene['id']}", headers=operator.headers)).json()[
            "status"
        ] == "submitted"


class TestBehaviourTypes:
    async def test_the_default_list_while_no_scene_methodology_is_published(self, client):
        r = await client.get("/v1/public/scenes/behaviour-types")
        assert r.status_code == 200
        async with db.session_scope() as session:
            published = (
                await session.execute(
                    sa.text(
                        "SELECT count(*) FROM methodology_versions WHERE category = 'scene' AND status = 'published'"
                    )
                )
            ).scalar()
        if published:
            assert r.json()["source"] == "methodologies"
        else:
            assert r.json() == {
                "behaviour_types": list(scenes_service.DEFAULT_BEHAVIOUR_TYPES),
                "source": "default",
            }

    async def test_published_scene_methodologies_decide_once_there_are_any(self, app):
        """In a transaction rolled back at the end, so no other test sees the methodology."""
        async with db.sessionmaker()() as session:
            try:
                await session.execute(
                    sa.text(
                        "INSERT INTO methodology_versions (id, code, version, behaviour_type, category, name, description,"
                        " unit, net_factor_g, max_quantity_per_record, citation, derivation, illustrative, status,"
                        " effective_from, created_at) VALUES (:id, :code, 1, 'refill_bottle', 'scene', 'Refill',"
                        " '', 'item', 20, 10, '', '', true, 'published', now(), now())"
                    ),
                    {"id": uuid.uuid4(), "code": f"t-{uuid.uuid4().hex[:8]}"},
                )
                accepted = await scenes_service.accepted_behaviour_types(session)
                assert accepted.source == "methodologies" and "refill_bottle" in accepted.behaviour_types
                with pytest.raises(UnknownBehaviourType):
                    await scenes_service._validated(
                        session, {**scene_body(behaviour_types=["reusable_bag_xyz"])}
                    )
                values = await scenes_service._validated(
                    session, scene_body(behaviour_types=["refill_bottle"])
                )
                assert values["behaviour_types"] == ["refill_bottle"]
            finally:
                await session.rollback()


class TestTheIngestionInterface:
    async def test_approved_and_type_is_what_ingestion_checks(self, client, authority, operator):
        scene = await approved_scene(client, authority, operator, behaviour_types=["own_cup"])
        check = sa.text(
            "SELECT count(*) FROM scenes WHERE id = :id AND status = 'approved'"
            " AND CAST(:t AS text) = ANY(behaviour_types)"
        )

        async def accepts(t: str) -> bool:
            async with db.session_scope() as session:
                return (await session.execute(check, {"id": scene["id"], "t": t})).scalar() == 1

        assert (await accepts("own_cup"), await accepts(PLATE)) == (True, False)
        await client.post(
            f"/v1/scenes/{scene['id']}/suspend", json={"reason": "x"}, headers=bearer(authority)
        )
        assert await accepts("own_cup") is False
        await client.post(
            f"/v1/scenes/{scene['id']}/reinstate", json={"reason": "x"}, headers=bearer(authority)
        )
        assert await accepts("own_cup") is True
