"""Public reads are cacheable: ``Cache-Control: public, max-age``, a strong ``ETag``, ``304 Not Modified``.

Every anonymous GET of the app (the access table says who may call what, and the inventory test
keeps that table complete) is called with a real object, so a new public route without caching
fails here until it has an example below.
"""

import base64
import hashlib
import re
from datetime import date, timedelta

import httpx
import pytest

from app.core import clock
from app.routers import ROUTERS
from tests.factories import authority_token, bearer, make_org, unique
from tests.factories_cer import issued_units
from tests.factories_mall import make_item, make_merchant
from tests.factories_points import ensure_rule
from tests.factories_scenes import approved_scene, publish_scene_types
from tests.security.access import ACCESS, ANONYMOUS

# Operations answer about this very moment: never cached.
NEVER_CACHED = {"/healthz", "/readyz", "/metrics"}
PUBLIC_CACHE = re.compile(r"public, max-age=[1-9][0-9]*(, immutable)?")
# ten trading days (no holiday among them) before Monday 18 November 2024
NOVEMBER = [date(2024, 11, d) for d in (15, 14, 13, 12, 11, 8, 7, 6, 5, 4)]


def public_get_paths() -> set[str]:
    """The GET routes of the app that anyone may call, operations aside."""
    return {
        route.path
        for router in ROUTERS
        for route in router.routes
        if "GET" in route.methods
        and ANONYMOUS in ACCESS[("GET", route.path)]
        and route.path not in NEVER_CACHED
    }


def strong_tag(body: bytes) -> str:
    return '"' + base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode() + '"'


@pytest.fixture(scope="module")
async def examples(app, tmp_path_factory) -> dict[str, str]:
    """One URL per public GET route that answers 200: a world with one object of each kind."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50004))
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as c:
        authority = await authority_token(c)
        await ensure_rule()
        await publish_scene_types(tmp_path_factory.mktemp("scene-types"))
        methodology = (await c.get("/v1/methodologies", params={"limit": 1})).json()["items"][0]
        rule = (await c.get("/v1/exchange-rules", params={"limit": 1})).json()["items"][0]
        scene = await approved_scene(c, authority, await make_org(c, "scene_operator", authority=authority))
        r = await c.get("/v1/reviews", params={"subject_id": scene["id"]}, headers=bearer(authority))
        [panel] = r.json()["items"]
        item = await make_item(c, await make_merchant(c, authority))
        try:
            owner, issuance = await issued_units(c, authority, 1)
        finally:
            clock.set_offset(timedelta(0))
        r = await c.post(
            "/v1/cer/retirements",
            json={
                "tonnes": 1,
                "beneficiary": {"kind": "event", "name": unique("Marathon")},
                "purpose": "neutral",
            },
            headers=owner.headers,
        )
        assert r.status_code == 201, r.text
        certificate = r.json()["certificate_number"]
        for i, day in enumerate(NOVEMBER):
            r = await c.post(
                "/v1/cer/prices",
                json={"date": day.isoformat(), "price_fen": 8000 + i},
                headers=bearer(authority),
            )
            assert r.status_code == 200, r.text
    pid = issuance["project_id"]
    return {
        "/.well-known/jwks.json": "/.well-known/jwks.json",
        "/v1/methodologies": "/v1/methodologies",
        "/v1/methodologies/{version_id}": f"/v1/methodologies/{methodology['id']}",
        "/v1/exchange-rules": "/v1/exchange-rules",
        "/v1/exchange-rules/current": "/v1/exchange-rules/current",
        "/v1/exchange-rules/{version_id}": f"/v1/exchange-rules/{rule['id']}",
        "/v1/public/experts": "/v1/public/experts",
        "/v1/webhooks/event-types": "/v1/webhooks/event-types",
        "/v1/reviews/{panel_id}/draw": f"/v1/reviews/{panel['id']}/draw",
        "/v1/public/scenes": "/v1/public/scenes",
        "/v1/public/scenes/behaviour-types": "/v1/public/scenes/behaviour-types",
        "/v1/public/scenes/{scene_id}": f"/v1/public/scenes/{scene['id']}",
        "/v1/mall/items": "/v1/mall/items",
        "/v1/mall/items/{item_id}": f"/v1/mall/items/{item['id']}",
        "/v1/cer/calendar": "/v1/cer/calendar?from=2024-11-01&to=2024-11-30",
        "/v1/cer/prices": "/v1/cer/prices?from=2024-11-01&to=2024-11-30",
        "/v1/cer/reference-price": "/v1/cer/reference-price?on=2024-11-18",
        "/v1/public/cer/projects": "/v1/public/cer/projects",
        "/v1/public/cer/projects/{project_id}": f"/v1/public/cer/projects/{pid}",
        "/v1/public/cer/projects/{project_id}/report": f"/v1/public/cer/projects/{pid}/report",
        "/v1/public/cer/projects/{project_id}/objections": f"/v1/public/cer/projects/{pid}/objections",
        "/v1/public/cer/issuances": "/v1/public/cer/issuances",
        "/v1/public/cer/retirements": "/v1/public/cer/retirements",
        "/v1/public/cer/totals": "/v1/public/cer/totals",
        "/v1/public/certificates/{number}.pdf": f"/v1/public/certificates/{certificate}.pdf",
        "/v1/public/certificates/{number}": f"/v1/public/certificates/{certificate}",
        "/v1/public/operators": "/v1/public/operators",
        "/v1/public/merchants": "/v1/public/merchants",
        "/v1/public/scene-operators": "/v1/public/scene-operators",
        "/v1/public/verifiers": "/v1/public/verifiers",
        "/v1/public/totals": "/v1/public/totals",
    }


class TestEveryPublicRead:
    async def test_each_public_route_has_an_example(self, examples):
        assert sorted(public_get_paths() - set(examples)) == [], (
            "a new public GET route needs an example here"
        )
        assert sorted(set(examples) - public_get_paths()) == []

    async def test_cache_control_and_a_strong_etag_over_the_body(self, client, examples):
        for path, url in examples.items():
            r = await client.get(url)
            assert r.status_code == 200, (path, r.text)
            assert PUBLIC_CACHE.fullmatch(r.headers["cache-control"]), (path, r.headers["cache-control"])
            assert r.headers["etag"] == strong_tag(r.content), path

    async def test_if_none_match_answers_304_without_a_body(self, client, examples):
        for path, url in examples.items():
            first = await client.get(url)
            tag = first.headers["etag"]
            for header in (tag, f"W/{tag}", f'"elsewhere", {tag}', f'W/"x",W/{tag}', "*"):
                r = await client.get(url, headers={"If-None-Match": header})
                assert r.status_code == 304, (path, header, r.status_code)
                assert r.content == b"", path
                assert (r.headers["etag"], r.headers["cache-control"]) == (
                    tag,
                    first.headers["cache-control"],
                ), path
            r = await client.get(url, headers={"If-None-Match": '"elsewhere", W/"other"'})
            assert (r.status_code, r.headers["etag"]) == (200, tag), path


class TestDisclosureLists:
    """The CER lists and totals answered ``no-store`` once, unlike the other public lists."""

    @pytest.mark.parametrize(
        "url",
        [
            "/v1/public/cer/projects",
            "/v1/public/cer/issuances",
            "/v1/public/cer/retirements",
            "/v1/public/cer/totals",
        ],
    )
    async def test_cer_lists_are_cached_for_a_minute(self, client, url):
        r = await client.get(url)
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "public, max-age=60"
        assert r.headers["etag"] == strong_tag(r.content)
        r = await client.get(url, headers={"If-None-Match": r.headers["etag"]})
        assert (r.status_code, r.content) == (304, b"")

    async def test_a_changed_list_has_another_tag(self, client):
        merchant = await make_merchant(client)
        before = await client.get("/v1/mall/items", params={"merchant_id": merchant.id})
        await make_item(client, merchant)
        r = await client.get(
            "/v1/mall/items",
            params={"merchant_id": merchant.id},
            headers={"If-None-Match": before.headers["etag"]},
        )
        assert r.status_code == 200
        assert r.headers["etag"] == strong_tag(r.content) != before.headers["etag"]


class TestWhatIsNotShared:
    async def test_errors_are_not_cached(self, client):
        r = await client.get("/v1/public/certificates/CERT-1999-000000")
        assert (r.status_code, r.headers["cache-control"], "etag" in r.headers) == (404, "no-store", False)

    async def test_a_callers_own_view_is_not_cached(self, client):
        authority = await authority_token(client)
        r = await client.get("/v1/methodologies", params={"status": "draft"}, headers=bearer(authority))
        assert (r.status_code, r.headers["cache-control"], "etag" in r.headers) == (200, "no-store", False)
        r = await client.get("/v1/methodologies", headers=bearer(authority))
        assert (r.status_code, r.headers["cache-control"], "etag" in r.headers) == (200, "no-store", False)

    async def test_operations_are_never_cached(self, client):
        r = await client.get("/healthz")
        assert (r.headers["cache-control"], "etag" in r.headers) == ("no-store", False)

    async def test_the_document_names_the_304(self, app):
        operations = app.openapi()["paths"]
        for path in public_get_paths():
            get = operations[path]["get"]
            assert "304" in get["responses"], path
            assert {"ETag", "Cache-Control"} <= set(get["responses"]["200"].get("headers", {})), path
