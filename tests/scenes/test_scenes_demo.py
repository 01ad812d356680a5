"""The demo loader of this domain: an operator, experts, two approved scenes; loading again adds nothing."""

import re

from app.core import db
from app.scenes import demo
from app.scenes.repository import haversine_m
from tests.factories import authority_token


class TestDemo:
    async def test_it_loads_two_approved_scenes_once(self, client):
        await authority_token(client)  # the demo decides as the first authority account
        async with db.session_scope() as session:
            lines = await demo.load(session)
        labels = [m.group(0) for line in lines if (m := re.search(r"SZ-CJ-\d{4}-\d{6}", line))]
        assert len(labels) == 2
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
            again = await demo.load(session)
        assert again == ["scenes: demo scenes already there — GET /v1/public/scenes"]
