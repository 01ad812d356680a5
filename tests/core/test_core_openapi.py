"""The OpenAPI document tells the whole truth about what each operation answers.

Read from the code (``tests/core/route_reach.py``): every domain error a route's endpoint and
dependencies can raise, with every code the raise can give, is documented on the operation under
its status; every status a response is built with, and every media type, too. Errors declare their
codes once (``DomainError.variants``); every error response in the document is problem+json whose
``code`` is one of those listed. A probe app shows each check failing for what it should catch.
"""

import inspect
import types
from contextlib import nullcontext
from datetime import date

import httpx
import pytest
import schemathesis
from fastapi import APIRouter, FastAPI, Response
from fastapi.routing import APIRoute, iter_route_contexts
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.core import errors
from app.core.errors import PROBLEM_JSON, PROBLEM_REF, Conflict, NotFound, documented_codes, responses
from app.core.routing import CommitRoute
from tests.core.route_reach import Reader, is_problem, raise_sites
from tests.factories import authority_token, bearer

NO_BODY = {204, 304}
NOT_A_PROBLEM = {("GET", "/readyz", "503")}  # readiness answers its checks, the same shape as its 200

# Raises the reading finds but no request can reach (it takes both branches of every condition):
# (method, path, code) → why. An entry the reading no longer finds fails too, so the list stays true.
UNREACHABLE = {
    ("GET", "/v1/exchange-rules/current", "naive_datetime"): "asks for the rule at the platform clock's now",
    ("GET", "/v1/me/export", "invalid_cursor"): "reads every page itself, from the first",
    ("POST", "/v1/points/accounts/{user_id}/clawback", "invalid_amount"): "the body's points are > 0",
    ("POST", "/v1/me/operator-redemptions", "invalid_amount"): "invalid_points is refused first",
    ("POST", "/v1/me/orders/{order_id}/cancel", "entry_not_found"): "refunds the order's own debit entry",
    (
        "POST",
        "/v1/operator/redemptions/{operator_order_id}/reverse",
        "entry_not_found",
    ): "refunds the redemption's own debit entry",
    ("POST", "/v1/reviews", "review_not_found"): "the authority sees every panel",
    ("GET", "/v1/reviews", "review_not_found"): "an expert's list holds only the panels they sit on",
    ("POST", "/v1/scenes/{scene_id}/review", "review_not_found"): "the authority sees every panel",
    ("POST", "/v1/cer/projects/{project_id}/review", "review_not_found"): "the authority sees every panel",
    (
        "POST",
        "/v1/reviews/{panel_id}/decision",
        "project_not_found",
    ): "a panel's project exists (opened on it)",
    ("POST", "/v1/reviews/{panel_id}/decision", "scene_not_found"): "a panel's scene exists (opened on it)",
    ("POST", "/v1/scenes/{scene_id}/review", "organization_not_found"): "the scene's operator exists",
    ("POST", "/v1/cer/accounts", "organization_not_found"): "the caller's own organisation",
    ("GET", "/v1/cer/accounts/me", "organization_not_found"): "the caller's own organisation",
    ("GET", "/v1/cer/trace/{serial}", "project_not_found"): "a block's project exists (foreign key)",
    ("POST", "/v1/cer/calendar", "invalid_range"): "reads back the one day it set",
    ("POST", "/v1/cer/prices", "invalid_range"): "reads back the one day it set",
    ("GET", "/v1/cer/reference-price", "invalid_range"): "reads a span it computes itself",
}


def operations(app: FastAPI):
    """(method, path, route, operation) for every operation of the document."""
    paths = app.openapi()["paths"]
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        for method in sorted(route.methods):
            yield method, context.path_format, route, paths[context.path_format][method.lower()]


def _roots(route: APIRoute) -> list:
    calls, todo = [route.endpoint], list(route.dependant.dependencies)
    while todo:
        dependant = todo.pop()
        if dependant.call is not None:
            calls.append(dependant.call)
        todo.extend(dependant.dependencies)
    return [c for c in calls if isinstance(inspect.unwrap(c), types.FunctionType)]


def _declared_for(call, method: str) -> set[type] | None:
    """The errors a dependency declares (``problem_responses``) for ``method``; None if it declares none.

    The declaration decides which errors apply (the idempotency errors are POST's, ``KeyRequired``
    only where a key is required, ``AdminRequired`` only where an admin is); their codes are still read.
    """
    declared = getattr(call, "problem_responses", None)
    if declared is None:
        return None
    return {
        err
        for err, methods in (i if isinstance(i, tuple) else (i, {method}) for i in declared)
        if method in methods
    }


def undocumented(
    app: FastAPI, packages: tuple[str, ...] = ("app",), unreachable: dict | None = None
) -> list[str]:
    """What the code of each route can answer that its operation does not document."""
    out = []
    unreachable, excused = unreachable or {}, set()
    reader = Reader(packages)
    for method, path, route, operation in operations(app):
        documented = operation.get("responses", {})
        label = f"{method} {path}"
        raised, statuses, media_types, unreadable = set(), set(), set(), set()
        for root in _roots(route):
            found = reader.reach([root])
            applies = _declared_for(root, method)
            raised |= {r for r in found.raised if applies is None or r.error in applies}
            statuses |= found.statuses
            media_types |= found.media_types
            unreadable |= found.unreadable
        for error in sorted(raised, key=lambda r: r.where):
            missing = error.codes - set(documented_codes(documented.get(str(error.error.status))))
            excused |= {(method, path, code) for code in missing if (method, path, code) in unreachable}
            missing -= {code for method_, path_, code in excused if (method_, path_) == (method, path)}
            if missing:
                out.append(
                    f"{label}: {error.error.__name__} ({error.where}) answers {error.error.status} "
                    f"{sorted(missing)}: add it to the route's responses="
                )
        for status in sorted(statuses - {int(s) for s in documented if s.isdigit()}):
            out.append(f"{label}: answers {status}, not documented")
        success_types = {
            t.split(";")[0]
            for s, r in documented.items()
            if s.startswith(("2", "3"))
            for t in (r.get("content") or {})
        }
        for media_type in sorted(media_types):
            if not is_problem(media_type) and media_type.split(";")[0] not in success_types:
                out.append(f"{label}: answers {media_type}, not documented")
        out.extend(f"{label}: a code that cannot be read: {where}" for where in sorted(unreadable))
    out.extend(
        f"{method} {path}: {code} is no longer found; drop it from UNREACHABLE"
        for method, path, code in set(unreachable) - excused
    )
    return out


class TestErrorsDeclareTheirCodes:
    def test_every_raise_gives_a_code_its_error_declares(self):
        wrong = [
            f"{raised.where} ({function}): {raised.error.__name__} raised with {sorted(raised.codes - set(raised.error.codes()))}; "
            f"declare it in its variants"
            for raised, function in raise_sites()
            if raised.codes - set(raised.error.codes())
        ]
        assert wrong == []

    def test_responses_document_the_variants(self):
        class Precise(Conflict):
            code, variants = "precise", ("more_precise", "most_precise")

        entry = responses(Precise, NotFound)
        assert documented_codes(entry[409]) == ["precise", "more_precise", "most_precise"]
        assert documented_codes(entry[404]) == ["not_found"]
        assert entry[409]["description"] == "`precise` `more_precise` `most_precise`"


class TestTheDocument:
    def test_error_responses_are_problems_listing_their_codes(self, app):
        wrong = []
        for method, path, _, operation in operations(app):
            for status, response in operation["responses"].items():
                if int(status) < 400:
                    continue
                if (method, path, status) in NOT_A_PROBLEM:
                    continue
                codes = documented_codes(response)
                schema = response.get("content", {}).get(PROBLEM_JSON, {}).get("schema", {})
                if list(response.get("content", {})) != [PROBLEM_JSON] or not codes:
                    wrong.append(f"{method} {path} {status}: not problem+json with codes")
                elif schema["allOf"][0] != {"$ref": PROBLEM_REF}:
                    wrong.append(f"{method} {path} {status}: not a Problem")
                elif any(f"`{c}`" not in response["description"] for c in codes):
                    wrong.append(f"{method} {path} {status}: the description misses codes")
        assert wrong == []

    def test_success_responses_name_their_media_types(self, app):
        wrong = [
            f"{method} {path} {status}"
            for method, path, _, operation in operations(app)
            for status, response in operation["responses"].items()
            if int(status) < 400 and int(status) not in NO_BODY and not response.get("content")
        ]
        assert wrong == []

    def test_what_every_route_answers(self, app):
        for method, path, _, operation in operations(app):
            documented = operation["responses"]
            assert "payload_too_large" in documented_codes(documented["413"]), (method, path)
            assert "internal_error" in documented_codes(documented["500"]), (method, path)
            if operation.get("parameters"):
                assert "validation_error" in documented_codes(documented.get("422")), (method, path)

    def test_a_cacheable_route_documents_its_304(self, app):
        wrong = [
            f"{method} {path}"
            for method, path, route, operation in operations(app)
            if getattr(route, "cache_control", None) and "304" not in operation["responses"]
        ]
        assert wrong == []

    def test_a_json_body_may_be_malformed(self, app):
        operation = app.openapi()["paths"]["/v1/organizations"]["post"]
        assert {"malformed_json", "bad_request"} <= set(documented_codes(operation["responses"]["400"]))


class TestRoutesAnswerWhatTheyDocument:
    def test_every_route(self, app):
        assert undocumented(app, unreachable=UNREACHABLE) == []

    async def test_the_csv_report(self, app, client):
        operation = app.openapi()["paths"]["/v1/reports/used-points"]["get"]
        assert set(operation["responses"]["200"]["content"]) == {"application/json", "text/csv"}
        authority = await authority_token(client)
        today = date.today().isoformat()
        r = await client.get(
            "/v1/reports/used-points",
            params={"format": "csv", "from": today, "to": today},
            headers=bearer(authority),
        )
        assert (r.status_code, r.headers["content-type"]) == (200, "text/csv; charset=utf-8")


def _probe_app(route) -> FastAPI:
    app = FastAPI()
    errors.install(app)
    router = APIRouter(route_class=CommitRoute)
    route(router)
    app.include_router(router)
    return app


class TestTheChecksCatch:
    """Each kind of undocumented answer, in a throw-away app, is reported."""

    def test_an_undocumented_code(self):
        def route(router):
            @router.get("/probe", responses=responses(Conflict))
            async def probe(flag: bool = False) -> dict:
                if flag:
                    raise Conflict("no", code="not_declared")
                return {}

        assert len(undocumented(_probe_app(route), (__name__,))) == 1

    def test_an_undocumented_error(self):
        def route(router):
            @router.get("/probe", responses=responses(Conflict))
            async def probe() -> dict:
                _refuse()
                return {}

        [complaint] = undocumented(_probe_app(route), (__name__,))
        assert "NotFound" in complaint and "404" in complaint

    def test_a_caught_error_is_not_answered(self):
        def route(router):
            @router.get("/probe")
            async def probe() -> dict:
                try:
                    _refuse()
                except NotFound:
                    return {}
                return {}

        assert undocumented(_probe_app(route), (__name__,)) == []

    def test_an_undocumented_media_type_and_status(self):
        def route(router):
            @router.get("/probe", response_class=Response)
            async def probe(flag: bool = False) -> Response:
                return Response(b"x", media_type="image/png", status_code=202 if flag else 200)

        complaints = undocumented(_probe_app(route), (__name__,))
        assert sorted(c.split(": ")[1] for c in complaints) == [
            "answers 202, not documented",
            "answers image/png, not documented",
        ]

    @pytest.mark.parametrize("documented", [True, False])
    def test_a_translated_code(self, documented):
        class Refused(Conflict):
            code, variants = "refused", ("because",) if documented else ()

        def route(router):
            @router.get("/probe", responses=responses(Refused))
            async def probe() -> dict:
                try:
                    _refuse()
                except NotFound as exc:
                    raise Refused("no", code=_TRANSLATED.get(exc.code, exc.code)) from exc
                return {}

        assert len(undocumented(_probe_app(route), (__name__,))) == (0 if documented else 1)


_TRANSLATED = {"not_found": "because"}


def _refuse() -> None:
    raise NotFound("nothing here")


class TestTheFuzzersChecksCatch:
    """What ``tests/fuzz/test_fuzz_api.py`` checks every response with refuses what the document does not name."""

    @pytest.mark.parametrize(
        ("what", "refused"),
        [
            ("fine", False),
            ("conflict", False),
            ("code", True),
            ("status", True),
            ("csv", True),
        ],
    )
    async def test_an_undocumented_code_status_or_media_type(self, what, refused):
        probe = FastAPI()
        errors.install(probe)

        @probe.get("/probe/{what}", responses=responses(Conflict), summary="probe")
        async def answer(what: str):
            if what == "conflict":
                raise Conflict("no")
            if what == "code":
                raise Conflict("no", code="undeclared")
            if what == "status":
                raise NotFound()
            if what == "csv":
                return Response("a,b\n", media_type="text/csv")
            return {}

        [operation] = [r.ok() for r in schemathesis.openapi.from_dict(probe.openapi()).get_all_operations()]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=probe), base_url="http://test") as c:
            response = await c.get(f"/probe/{what}")
        case = operation.Case(path_parameters={"what": what})
        with pytest.raises(BaseException) if refused else nullcontext():  # schemathesis' FailureGroup
            case.validate_response(
                response,
                checks=[status_code_conformance, content_type_conformance, response_schema_conformance],
            )
