"""The public scene list for maps and apps: filters, cursor pages, and near me (nearest first)."""

import math
import random

import pytest

from app.scenes.repository import METRES_PER_DEGREE, haversine_m
from tests.factories import assert_problem, authority_token, make_org
from tests.factories_scenes import (
    BAG,
    PLATE,
    RECEIPT,
    approved_scene,
    ensure_experts,
    make_scene,
    random_city,
)

PROBLEM = "application/problem+json"


def offset(lat: float, lng: float, north_m: float, east_m: float) -> tuple[float, float]:
    return (
        round(lat + north_m / METRES_PER_DEGREE, 7),
        round(lng + east_m / (METRES_PER_DEGREE * math.cos(math.radians(lat))), 7),
    )


@pytest.fixture(scope="module")
def center() -> tuple[float, float]:
    # somewhere no other test puts scenes, and straddling a 0.01° latitude band edge
    lat = random.randint(-4000, -3000) / 100 + 0.0003
    return lat, random.randint(14000, 15000) / 100 + random.random() / 100


@pytest.fixture(scope="module")
async def neighbourhood(client_module, center):
    """Approved scenes at known offsets from ``center``, one draft, one suspended."""
    client = client_module
    authority = await authority_token(client)
    await ensure_experts(client, authority)
    operator = await make_org(client, "scene_operator", authority=authority)
    city, district = random_city()
    spots = {
        # name: (north m, east m, category, behaviour types)
        "n120": (120, 0, "business_premises", ["own_cup"]),
        "e250": (0, 250, "public_place", [BAG]),
        "s480": (-480, 0, "business_premises", ["own_cup", PLATE]),
        "w900": (0, -900, "public_institution", [RECEIPT]),
        "ne1700": (1200, 1202, "business_premises", ["own_cup"]),
        "far3000": (0, 3000, "business_premises", ["own_cup"]),
    }
    scenes = {}
    for name, (north, east, category, types) in spots.items():
        lat, lng = offset(*center, north, east)
        scenes[name] = await approved_scene(
            client,
            authority,
            operator,
            name=name,
            lat=lat,
            lng=lng,
            category=category,
            behaviour_types=types,
            city_code=city,
            district_code=district,
        )
    lat, lng = offset(*center, 10, 10)
    scenes["draft"] = await make_scene(
        client, operator, name="draft", lat=lat, lng=lng, city_code=city, district_code=district
    )
    lat, lng = offset(*center, 20, 0)
    suspended = await approved_scene(
        client,
        authority,
        operator,
        name="suspended",
        lat=lat,
        lng=lng,
        city_code=city,
        district_code=district,
    )
    r = await client.post(
        f"/v1/scenes/{suspended['id']}/suspend",
        json={"reason": "x"},
        headers={"Authorization": f"Bearer {authority}"},
    )
    assert r.status_code == 200
    return {"scenes": scenes, "city": city, "district": district}


@pytest.fixture(scope="module")
async def client_module(app):
    import httpx

    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as c:
        yield c


async def near(client, center, **params) -> dict:
    r = await client.get("/v1/public/scenes", params={"lat": center[0], "lng": center[1], **params})
    assert r.status_code == 200, r.text
    return r.json()


class TestNearMe:
    async def test_nearest_first_within_the_radius(self, client, center, neighbourhood):
        page = await near(client, center, radius_m=2000)
        assert [s["name"] for s in page["items"]] == ["n120", "e250", "s480", "w900", "ne1700"]
        distances = [s["distance_m"] for s in page["items"]]
        assert distances[:4] == [120, 250, 480, 900]
        assert abs(distances[4] - math.hypot(1200, 1202)) < 3
        for item in page["items"]:
            assert item["distance_m"] == round(haversine_m(*center, item["lat"], item["lng"]))
        assert page["next_cursor"] is None

    async def test_the_radius_cuts_exactly(self, client, center, neighbourhood):
        assert [s["name"] for s in (await near(client, center, radius_m=479))["items"]] == ["n120", "e250"]
        assert [s["name"] for s in (await near(client, center, radius_m=481))["items"]] == [
            "n120",
            "e250",
            "s480",
        ]
        assert [s["name"] for s in (await near(client, center, radius_m=5000))["items"]][-1] == "far3000"

    async def test_pages_keep_the_order(self, client, center, neighbourhood):
        names, cursor = [], None
        while True:
            page = await near(
                client, center, radius_m=5000, limit=2, **({"cursor": cursor} if cursor else {})
            )
            assert len(page["items"]) <= 2
            names += [s["name"] for s in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert names == ["n120", "e250", "s480", "w900", "ne1700", "far3000"]

    async def test_filters_apply_near_me_too(self, client, center, neighbourhood):
        page = await near(client, center, radius_m=5000, behaviour_type="own_cup")
        assert [s["name"] for s in page["items"]] == ["n120", "s480", "ne1700", "far3000"]
        page = await near(client, center, radius_m=5000, category="public_institution")
        assert [s["name"] for s in page["items"]] == ["w900"]

    async def test_the_default_radius_is_five_kilometres(self, client, center, neighbourhood):
        assert len((await near(client, center))["items"]) == 6


class TestFilters:
    async def test_by_city_district_category_and_behaviour(self, client, neighbourhood):
        city, district = neighbourhood["city"], neighbourhood["district"]

        async def names(**params) -> list[str]:
            r = await client.get("/v1/public/scenes", params={"limit": 200, **params})
            assert r.status_code == 200, r.text
            return sorted(s["name"] for s in r.json()["items"])

        everything = ["e250", "far3000", "n120", "ne1700", "s480", "w900"]
        assert await names(city_code=city) == everything
        assert await names(city_code=city, district_code=district) == everything
        assert await names(city_code=city, category="public_place") == ["e250"]
        assert await names(city_code=city, behaviour_type=PLATE) == ["s480"]
        assert await names(city_code=city, behaviour_type="metro") == []

    async def test_pages_by_label_code(self, client, neighbourhood):
        city = neighbourhood["city"]
        labels, cursor = [], None
        while True:
            params = {"city_code": city, "limit": 4, **({"cursor": cursor} if cursor else {})}
            r = await client.get("/v1/public/scenes", params=params)
            labels += [s["label_code"] for s in r.json()["items"]]
            cursor = r.json()["next_cursor"]
            if not cursor:
                break
        assert labels == sorted(s["label_code"] for k, s in neighbourhood["scenes"].items() if k != "draft")

    async def test_an_item_shows_what_an_app_needs(self, client, neighbourhood):
        scene = neighbourhood["scenes"]["n120"]
        r = await client.get(f"/v1/public/scenes/{scene['id']}")
        item = r.json()
        assert r.headers["cache-control"] == "public, max-age=60"
        assert set(item) == {
            "id",
            "name",
            "category",
            "address",
            "city_code",
            "district_code",
            "lat",
            "lng",
            "opening_hours",
            "behaviour_types",
            "description",
            "label_code",
            "operator_id",
            "operator_name",
            "approved_at",
            "distance_m",
        }
        assert (item["label_code"], item["lat"], item["lng"]) == (
            scene["label_code"],
            scene["lat"],
            scene["lng"],
        )
        assert item["distance_m"] is None

    async def test_drafts_are_not_public(self, client, neighbourhood):
        r = await client.get(f"/v1/public/scenes/{neighbourhood['scenes']['draft']['id']}")
        assert_problem(r, 404, "scene_not_found")


class TestBadQueries:
    @pytest.mark.parametrize(
        ("params", "code"),
        [
            ({"lat": 22.5}, "near_query_incomplete"),
            ({"lng": 114}, "near_query_incomplete"),
            ({"radius_m": 100}, "near_query_incomplete"),
            ({"lat": 90.5, "lng": 114}, "coordinates_out_of_range"),
            ({"lat": 22.5, "lng": 181}, "coordinates_out_of_range"),
            ({"lat": 22.5, "lng": 114, "radius_m": 0}, "invalid_radius"),
            ({"lat": 22.5, "lng": 114, "radius_m": 50001}, "invalid_radius"),
            ({"category": "shop"}, "unknown_category"),
        ],
    )
    async def test_each_has_its_own_code(self, client, params, code):
        assert_problem(await client.get("/v1/public/scenes", params=params), 422, code)

    @pytest.mark.parametrize(
        "params", [{"cursor": "not-a-cursor"}, {"lat": 22.5, "lng": 114, "cursor": "WyJhIiwgImIiXQ"}]
    )
    async def test_a_cursor_not_given_out_is_refused(self, client, params):
        assert_problem(await client.get("/v1/public/scenes", params=params), 400, "invalid_cursor")
