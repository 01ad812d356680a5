"""OWASP API9:2023 Improper Inventory Management: the document is the whole API.

Every route of every router is in the OpenAPI document (nothing hidden with
``include_in_schema=False``), under ``/v1`` except the operations routes, has an access row, a
summary and a unique operation id, and the app mounts nothing besides the routers and the docs.
Old or guessed paths are 404.
"""

import pytest
from fastapi.routing import APIRoute

from app.pages import PAGE_ROUTERS
from app.routers import ROUTERS
from app.web import pages as web_pages
from tests.security.access import ACCESS, OPS_PATHS

DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
STATIC = "/static"
# HTML: the web foundation's pages (sign-in, language, docs) and every domain's pages, all out of the document.
HTML_ROUTERS = [web_pages.router, web_pages.docs_router, *PAGE_ROUTERS]


def _operations(app) -> dict[tuple[str, str], dict]:
    return {
        (method.upper(), path): op
        for path, ops in app.openapi()["paths"].items()
        for method, op in ops.items()
    }


def test_every_route_is_documented(app):
    documented = set(_operations(app))
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute), route
            assert route.include_in_schema, route.path
            for method in route.methods:
                assert (method, route.path) in documented, (method, route.path)


def test_the_app_mounts_only_routers_and_docs(app):
    for route in app.router.routes:
        included = getattr(route, "original_router", None)  # an include_router() entry
        if included is not None:
            assert included in ROUTERS or included in HTML_ROUTERS, route.path
        else:
            assert route.path in DOCS or route.path == STATIC, route.path


def test_pages_stay_out_of_the_document(app):
    documented = {path for path in app.openapi()["paths"]}
    for router in HTML_ROUTERS:
        for route in router.routes:
            assert not getattr(route, "include_in_schema", False) or route.path in DOCS, route.path
            assert route.path not in documented, route.path


def test_everything_is_versioned_except_operations(app):
    for method, path in _operations(app):
        assert path.startswith("/v1/") or path in OPS_PATHS, (method, path)


def test_the_access_table_is_the_document(app):
    documented = set(_operations(app))
    assert sorted(documented - set(ACCESS)) == [], "new operations need a row in tests/security/access.py"
    assert sorted(set(ACCESS) - documented) == [], "rows of operations that are gone"


def test_operations_are_described(app):
    ids = []
    for (method, path), op in _operations(app).items():
        assert op.get("summary"), (method, path)
        assert op.get("tags"), (method, path)
        ids.append(op["operationId"])
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    "path",
    [
        "/v0/organizations",
        "/organizations",
        "/v2/organizations",
        "/admin",
        "/debug",
        "/v1/internal",
        "/v1/admin/users",
        "/.env",
        "/v1/../openapi.json/x",
    ],
)
async def test_guessed_paths_are_not_found(client, path):
    r = await client.get(path)
    assert (r.status_code, r.headers["content-type"]) == (404, "application/problem+json")
