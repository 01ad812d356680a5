"""The route index (``app.core.route_index``) chooses what FastAPI chose without it, for every route's path and
its neighbours, with every method, under a ``root_path`` too; and a late route's router is chosen without asking
the routers before it."""

from fastapi.routing import _IncludedRouter
from starlette.routing import Match

from app.core import route_index
from app.core.config import get_settings
from app.main import create_app

IDS = ("0190d2a0-0000-7000-8000-000000000001", "7", "CCER-2026-000001")
METHODS = ("GET", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS")


def _unindexed():
    app = create_app(get_settings())
    for route in app.router.routes:
        if isinstance(route, _IncludedRouter):
            vars(route).pop("matches", None)  # FastAPI's own method again
    return app


def _scope(method: str, path: str, root_path: str = "") -> dict:
    return {
        "type": "http",
        "method": method,
        "path": root_path + path,
        "root_path": root_path,
        "headers": [],
        "query_string": b"",
    }


def _chosen(app, method: str, path: str, root_path: str = "") -> tuple:
    """What the app's router does with a request, as ``APIRouter.app`` decides it: the first route that matches
    fully, else the first that matches the path with another method, else the route that has the path with or
    without its trailing slash (a redirect), else none (404). Routes by their place in the router."""
    partial = None
    for i, route in enumerate(app.router.routes):
        match, _ = route.matches(_scope(method, path, root_path))
        if match == Match.FULL:
            return ("full", i)
        if match == Match.PARTIAL and partial is None:
            partial = ("partial", i)
    if partial:
        return partial
    if path != "/":
        flipped = path.rstrip("/") if path.endswith("/") else path + "/"
        for i, route in enumerate(app.router.routes):
            if route.matches(_scope(method, flipped, root_path))[0] != Match.NONE:
                return ("redirect", i)
    return ("none", None)


def _paths(app) -> set[str]:
    """Every route's path with each sample value for its parameters, and what lies near each: the path with and
    without a trailing slash, one segment more, its literal beginning, a letter more, and paths no route has."""
    paths = {
        "/",
        "",
        "/v1",
        "/v1/",
        "/nope",
        "/v1/nope",
        "/static",
        "/static/",
        "/static/app.css",
        "/me",
        "/mex",
    }
    for route in app.router.routes:
        contexts = route.effective_route_contexts() if isinstance(route, _IncludedRouter) else [route]
        for context in contexts:
            path = getattr(context, "path_format", "") or getattr(route, "path_format", "")
            if not path:
                continue
            for value in IDS:
                filled = path
                while "{" in filled:
                    start, end = filled.index("{"), filled.index("}")
                    filled = filled[:start] + value + filled[end + 1 :]
                paths |= {filled, filled + "/", filled.rstrip("/") or "/", filled + "/x", filled + "x"}
            paths.add(path.split("{", 1)[0])
    return paths


def test_the_index_chooses_what_fastapi_chose(app):
    plain, indexed = _unindexed(), _unindexed()
    assert route_index.install(indexed) > 30  # every router of the API and the pages
    paths = _paths(plain)
    assert len(paths) > 1500
    differences = [
        (method, root, path, _chosen(indexed, method, path, root), _chosen(plain, method, path, root))
        for path in sorted(paths)
        for method in METHODS
        for root in ("", "/carbon")
        if _chosen(indexed, method, path, root) != _chosen(plain, method, path, root)
    ]
    assert differences == []
    kinds = {_chosen(plain, m, p)[0] for p in paths for m in ("GET", "DELETE")}
    assert kinds == {"full", "partial", "redirect", "none"}  # each way a request can go was compared


def test_a_late_route_asks_only_the_routers_that_could_have_it(app, monkeypatch):
    asked: list[_IncludedRouter] = []
    match = _IncludedRouter._match

    def counted(self, scope):
        asked.append(self)
        return match(self, scope)

    monkeypatch.setattr(_IncludedRouter, "_match", counted)
    plain, indexed = _unindexed(), create_app(get_settings())
    for application, most in ((plain, None), (indexed, 1)):
        asked.clear()
        assert _chosen(application, "GET", "/console/organizations")[0] == "full"
        routers = [r for r in application.router.routes if isinstance(r, _IncludedRouter)]
        console = routers.index(asked[-1])
        if most is None:
            assert len(asked) == console + 1 > 30  # without the index: every router up to the console's
        else:
            assert len(asked) == most  # with it: the console's alone


def test_a_router_whose_routes_match_by_host_is_left_as_fastapi_asks_it():
    from fastapi import APIRouter, FastAPI
    from starlette.routing import Host

    app = FastAPI()
    router = APIRouter()
    router.routes.append(Host("api.example", app=FastAPI()))
    app.include_router(router)
    plain = APIRouter()

    @plain.get("/only")
    async def only() -> dict:
        return {}

    app.include_router(plain)
    assert route_index.install(app) == 1
    included = [r for r in app.router.routes if isinstance(r, _IncludedRouter)]
    assert route_index.route_paths(included[0]) is None and "matches" not in vars(included[0])
    assert route_index.route_paths(included[1]) == (frozenset({"/only"}), ())


async def test_answers_are_unchanged_over_http(client):
    assert (await client.get("/healthz")).status_code == 200
    r = await client.delete("/healthz")
    assert (r.status_code, r.headers["allow"]) == (405, "GET")
    r = await client.get("/healthz/")
    assert (r.status_code, r.headers["location"]) == (307, "http://test/healthz")
    r = await client.get("/v1/nope")
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    r = await client.get("/v1/mall/items")
    assert r.status_code == 200 and "items" in r.json()
