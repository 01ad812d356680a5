"""Behaviour records that carry a scene: only approved scenes, only the types they record."""

import uuid
from datetime import timedelta

import pytest

from app.core import clock
from tests.factories import authority_token, bearer, make_operator, make_org
from tests.factories_points import enrol, ensure_rule, record, submit
from tests.factories_scenes import approved_scene


@pytest.fixture(autouse=True)
async def rule(app):
    await ensure_rule()


def cup(ext: str, scene_id, *, hours_ago: float = 3, items: int = 1) -> dict:
    return record(
        ext,
        "own_cup",
        quantity=items,
        unit="item",
        minutes=1,
        start=clock.now() - timedelta(hours=hours_ago),
        scene_id=str(scene_id) if scene_id else None,
    )


class TestSceneRecords:
    async def test_accepted_only_while_the_scene_is_approved_and_for_its_types(self, client):
        authority = await authority_token(client)
        scene_operator = await make_org(client, "scene_operator", authority=authority)
        scene = await approved_scene(client, authority, scene_operator)
        op = await make_operator(client, authority)
        u = await enrol(client, op)
        ext = u["external_user_id"]

        r = await submit(
            client,
            op,
            [
                cup(ext, scene["id"], hours_ago=5, items=2),  # 2 items × 23.8 g = 47 g → 4 points
                cup(ext, None, hours_ago=4),
                cup(ext, uuid.uuid4(), hours_ago=3.5),
                record(
                    ext, "metro", quantity=5, start=clock.now() - timedelta(hours=3), scene_id=scene["id"]
                ),
            ],
        )
        got = [(x["status"], x["code"], x["reduction_g"], x["points"]) for x in r.json()["results"]]
        assert got == [
            ("accepted", None, 47, 4),
            ("rejected", "scene_required", 0, 0),
            ("rejected", "scene_not_approved", 0, 0),
            ("rejected", "scene_not_approved", 0, 0),
        ]

        r = await client.post(
            f"/v1/scenes/{scene['id']}/suspend", json={"reason": "inspection"}, headers=bearer(authority)
        )
        assert r.status_code == 200, r.text
        r = await submit(client, op, [cup(ext, scene["id"], hours_ago=2)])
        assert (r.json()["results"][0]["status"], r.json()["results"][0]["code"]) == (
            "rejected",
            "scene_not_approved",
        )

        r = await client.post(
            f"/v1/scenes/{scene['id']}/reinstate", json={"reason": "fixed"}, headers=bearer(authority)
        )
        assert r.status_code == 200, r.text
        r = await submit(client, op, [cup(ext, scene["id"], hours_ago=1)])
        assert r.json()["results"][0]["status"] == "accepted"
