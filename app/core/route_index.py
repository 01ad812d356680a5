"""Each included router asked about a request only when one of its paths could be the request's.

FastAPI matches a request against the app's routers in order, and each router against each of its routes, one
path pattern at a time (twice for the router that has it: once to choose it, once to handle it), so a route's
cost grew with its place: choosing the router of ``GET /healthz`` (the first) took 2.8 µs, of ``GET /v1/me/account``
6.9, of ``GET /v1/mall/items`` (near the end of the API's routes) 141–145 µs, of ``GET /console/organizations`` (a
page, near the end) 280–288 µs; with the index 2.9–3.1, 3.4–4.1, 11–12 and 20–22 µs.

A route's pattern matches only paths that begin with its literal part (what comes before its first
``{parameter}``), and a pattern without parameters only that very path. So a router none of whose routes could
match the request's path cannot have it: :func:`install` gives each router its routes' paths and literal parts,
and its ``matches`` answers "no" at once for such a path (a set look-up and one ``str.startswith`` of a tuple)
and asks the router as before otherwise. The order of the routers, and so every answer (a 405 for a path with
other methods, the redirect to the path with or without its trailing slash, the 404), is what it was:
``tests/core/test_core_route_index.py`` compares what is chosen with and without it for every route's path and
its neighbours.

Routes are declared before :func:`install` runs (``app.main.create_app`` calls it last); a router included
afterwards (tests do) is asked as FastAPI asks it, and a route added afterwards to an indexed router would not be
found, which is why the app adds none.
"""

from collections.abc import Callable

from fastapi import FastAPI
from starlette._utils import get_route_path  # what Starlette's routes match a path by
from starlette.routing import Match, Mount, Route, WebSocketRoute
from starlette.types import Scope

try:  # FastAPI's object for a router included in another (0.165); without it, nothing is indexed
    from fastapi.routing import _IncludedRouter
except ImportError:  # pragma: no cover - another FastAPI
    _IncludedRouter = None  # type: ignore[assignment,misc]

Matches = Callable[[Scope], tuple[Match, Scope]]


def install(app: FastAPI) -> int:
    """Index the app's included routers by their routes' paths; how many were indexed."""
    indexed = 0
    if _IncludedRouter is None:
        return indexed
    for router in app.router.routes:
        if not isinstance(router, _IncludedRouter):
            continue
        paths = route_paths(router)
        if paths is None:
            continue
        router.matches = _only_for(*paths, router.matches)  # type: ignore[method-assign,assignment]
        indexed += 1
    return indexed


def route_paths(router: _IncludedRouter) -> tuple[frozenset[str], tuple[str, ...]] | None:
    """The router's paths without parameters (each matches only itself), and the literal beginnings of the
    others (before their first parameter); ``None`` when a route matches on something else than its path (a
    host), which leaves the router as FastAPI asks it."""
    exact, beginnings = set(), set()
    for context in router.effective_route_contexts():
        route = context.starlette_route or context.original_route
        if not isinstance(route, Route | WebSocketRoute | Mount):
            return None
        path = (
            getattr(context.starlette_route, "path_format", None) or context.path_format or route.path_format
        )
        if "{" in path:
            beginnings.add(path.split("{", 1)[0])
        else:
            exact.add(path)
    return frozenset(exact), tuple(sorted(beginnings))


def _only_for(exact: frozenset[str], beginnings: tuple[str, ...], matches: Matches) -> Matches:
    def indexed(scope: Scope) -> tuple[Match, Scope]:
        path = get_route_path(scope)  # what the routes match: without the app's root_path
        if path in exact or path.startswith(beginnings) or not path.startswith("/"):
            return matches(scope)
        return Match.NONE, {}

    return indexed
