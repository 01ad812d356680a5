"""The demo loader of this domain: an operator, experts, two approved scenes; loading again adds nothing."""

import re
import uuid

from app.core import db
from app.methodologies import demo as methodologies_demo
from app.points import demo as points_demo
from app.points import service as points_service
from app.scenes import demo
from app.scenes.repository import haversine_m
from tests.factories import authority_token, bearer

ALREADY = ["scenes: demo scenes already there — GET /v1/public/scenes"]


class TestDemo:
    async def test_it_loads_two_approved_scenes_once(self, client):
        await authority_token(client)  # the demo decides as the first authority account
        async with db.session_scope() as session:
            # the points demo's operator sends the own-cup drinks recorded at the café
            await methodologies_demo.load(session)
            await points_demo.load(session)
            lines = await demo.load(session)
        # A browser test that ran before on this worker may have committed the whole demo (it needs a
        # live server): then this load printed only "already there", and the data is checked the same way.
        fresh = lines != ALREADY
        token = (await client.post("/v1/auth/token", data={
            "grant_type": "password", "username": demo.OPERATOR[0], "password": demo.OPERATOR[1]})).json()  # fmt: skip
        scenes = (await client.get("/v1/scenes", headers=bearer(token["access_token"]))).json()["items"]
        labels = [s["label_code"] for s in reversed(scenes) if s["status"] == "approved"]  # oldest first
        assert len(labels) == 2
        if fresh:
            assert labels == [m.group(0) for line in lines if (m := re.search(r"SZ-CJ-\d{4}-\d{6}", line))]
            # a third application under review, one of two opinions in; drinks recorded at the café
            assert "scene in review: Nanshan Library Water Refill Station (1 of 2 opinions in)" in lines
        assert {s["name"]: s["status"] for s in scenes}[
            "Nanshan Library Water Refill Station"
        ] == "under_review"
        r = await client.get("/v1/public/scenes", params={"lat": 22.541, "lng": 113.953, "radius_m": 3000})
        cafe = next(s for s in r.json()["items"] if s["label_code"] in labels)
        assert (cafe["name"], cafe["behaviour_types"], cafe["distance_m"]) == (
            "Green Bean Café (Science Park)",
            ["own_cup"],
            round(haversine_m(22.541, 113.953, 22.54093, 113.95281)),
        )
        r = await client.get("/v1/public/scenes", params={"city_code": "440300", "district_code": "440304"})
        assert [s["label_code"] for s in r.json()["items"] if s["label_code"] in labels] == [labels[1]]
        async with db.session_scope() as session:
            activity = await points_service.scene_activity(session, uuid.UUID(cafe["id"]))
        assert activity.records > 0 and set(activity.by_type) == {"own_cup"} and activity.reduction_g > 0
        if fresh:
            recorded = next(line for line in lines if line.startswith("scene records:"))
            assert (
                recorded
                == f"scene records: {activity.records} own-cup drinks at Green Bean Café (Science Park)"
            )
        async with db.session_scope() as session:
            again = await demo.load(session)
        assert again == ALREADY
