"""One error contract: RFC 9457 ``application/problem+json`` with a stable ``code``.

Domains raise subclasses of :class:`DomainError` (in their ``exceptions.py``) with a status and
a code; the handlers below render every error, validation and unexpected ones included.

Errors are declared once and collected: a class names its code and the more precise ``variants``
a raise may give with ``code=``; :func:`responses` documents all of them on a route (the schema's
``code`` is an ``enum`` of them, so a response conformance check catches an undocumented code),
and the document gets what every route can answer (validation, body limit, internal error).
``tests/core/test_core_openapi.py`` reads the code to hold routes to it.
"""

import logging
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://carbon-points.dev/problems/"


class DomainError(Exception):
    """A rule said no. ``status`` and ``code`` are part of the API contract."""

    status: ClassVar[int] = 400
    code: str = "bad_request"  # the class's code; a raise may give a more precise one of ``variants``
    title: ClassVar[str] = "Bad request"
    variants: ClassVar[tuple[str, ...]] = ()  # the more precise codes a raise may give with ``code=``
    keep_changes: ClassVar[bool] = False
    """True: what the request wrote before this refusal stands (committed), e.g. a revocation on a
    replayed token. Only for routes without ``Idempotency-Key`` handling."""

    @classmethod
    def codes(cls) -> tuple[str, ...]:
        return (cls.code, *(v for v in cls.variants if v != cls.code))

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ):
        super().__init__(detail or self.title)
        if code:
            self.code = code  # a more precise code than the class's, same status
        self.detail = detail or self.title
        self.headers = headers or {}
        self.extra = extra


class NotFound(DomainError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(DomainError):
    status, code, title = 409, "conflict", "Conflict"


class Forbidden(DomainError):
    status, code, title = 403, "forbidden", "Forbidden"


class Unauthorized(DomainError):
    status, code, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str | None = None, *, code: str | None = None, **extra: Any):
        super().__init__(detail, code=code, headers={"WWW-Authenticate": "Bearer"}, **extra)


class InvalidInput(DomainError):
    status, code, title = 422, "invalid_input", "Invalid input"


class RateLimited(DomainError):
    status, code, title = 429, "rate_limited", "Too many requests"


class PayloadTooLarge(DomainError):
    status, code, title = 413, "payload_too_large", "Request body too large"


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of this API is rendered."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = None


def problem_response(
    request: Request | None,
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if request is not None:
        body["instance"] = request.url.path
        rid = getattr(request.state, "request_id", None)
        if rid:
            body["request_id"] = rid
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


PROBLEM_REF = "#/components/schemas/Problem"


def problem_entry(codes: Iterable[str]) -> dict[str, Any]:
    """A documented error response: problem+json whose ``code`` is one of ``codes``."""
    codes = list(dict.fromkeys(codes))
    schema = {"allOf": [{"$ref": PROBLEM_REF}, {"type": "object", "properties": {"code": {"enum": codes}}}]}
    return {"description": " ".join(f"`{c}`" for c in codes), "content": {PROBLEM_JSON: {"schema": schema}}}


def documented_codes(entry: dict[str, Any] | None) -> list[str]:
    """The codes a response entry (of ``responses=`` or of the OpenAPI document) lists."""
    schema = (((entry or {}).get("content") or {}).get(PROBLEM_JSON) or {}).get("schema") or {}
    for part in schema.get("allOf", ()):
        enum = part.get("properties", {}).get("code", {}).get("enum")
        if enum:
            return list(enum)
    return []


def with_codes(entry: dict[str, Any] | None, codes: Iterable[str]) -> dict[str, Any]:
    """``entry`` (an error response, or none) listing ``codes`` too; a copy, entries may be shared."""
    return {**(entry or {}), **problem_entry([*documented_codes(entry), *codes])}


def responses(*errors: type[DomainError]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status with the codes it may carry, variants included."""
    by_status: dict[int, list[str]] = {}
    for err in errors:
        by_status.setdefault(err.status, []).extend(err.codes())
    return {status: problem_entry(codes) for status, codes in by_status.items()}


_STARLETTE_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _allowed_methods(request: Request) -> str:
    """Every method the API offers for this path (Starlette names only the first matching route's)."""
    app = request.app
    table = getattr(app.state, "allowed_methods", None)
    if table is None:
        table = [
            (compile_path(path)[0], {m.upper() for m in ops if m.upper() in _METHODS})
            for path, ops in app.openapi().get("paths", {}).items()
        ]
        app.state.allowed_methods = table
    path = request.scope["path"]
    return ", ".join(sorted(set().union(*(methods for regex, methods in table if regex.match(path)))))


_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def _document_problems(app: FastAPI) -> None:
    """Every error response in the OpenAPI document is what the handlers send: ``Problem`` as problem+json,
    its ``code`` one of those listed; and every operation lists what any route may answer
    (:func:`answered_by_every_route`).

    FastAPI documents its 422 as ``HTTPValidationError`` in ``application/json`` and a ``responses=``
    model under ``application/json``; clients and schema checks would be told the wrong shape.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        routes = {  # as get_openapi sees them (included routers are expanded lazily)
            (route.path_format, method.lower()): route
            for route in iter_route_contexts(app.routes)
            if isinstance(route.original_route, APIRoute)
            for method in route.methods or ()
        }
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                documented = operation.setdefault("responses", {})
                for status, codes in answered_by_every_route(operation, routes.get((path, method))).items():
                    documented[str(status)] = with_codes(documented.get(str(status)), codes)
                for status, response in documented.items():
                    if str(status).isdigit() and int(status) >= 400 and not _a_body_of_its_own(response):
                        codes = documented_codes(response)
                        if codes:
                            response.update(problem_entry(codes))
                        else:  # tests/core/test_core_openapi.py refuses an error response without codes
                            response["content"] = {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}
                operation["responses"] = dict(sorted(documented.items()))
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault(
            "Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        )
        text = str(schema.get("paths"))
        for unused in ("HTTPValidationError", "ValidationError"):
            if f"#/components/schemas/{unused}'" not in text:
                components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _a_body_of_its_own(response: dict[str, Any]) -> bool:
    """An error status a route answers with a model of its own, not a problem (readiness: its checks)."""
    refs = {
        media.get("schema", {}).get("$ref")
        for media_type, media in (response.get("content") or {}).items()
        if media_type != PROBLEM_JSON
    }
    return bool(refs - {None, PROBLEM_REF, "#/components/schemas/HTTPValidationError"})


def answered_by_every_route(operation: dict[str, Any], route: Any) -> dict[int, list[str]]:
    """What an operation may answer whatever its own code says, by status.

    * 413 ``payload_too_large``: the body limit of ``RequestMiddleware`` holds for every request;
    * 500 ``internal_error``: the last resort, for any route;
    * 503 ``database_unavailable``: PostgreSQL took no more connections (or was starting or stopping), so
      nothing was done: retry after ``Retry-After`` (a route answering 503 with a body of its own keeps it);
    * 422 ``validation_error`` when FastAPI validates a parameter or a body (the handler above);
    * 400 when FastAPI reads a body: ``malformed_json`` (JSON that does not decode) and ``bad_request``
      (a body it cannot read at all, such as bytes that are not UTF-8).
    """
    out: dict[int, list[str]] = {413: ["payload_too_large"], 500: ["internal_error"]}
    if not _a_body_of_its_own(operation.get("responses", {}).get("503", {})):
        out[503] = ["database_unavailable"]
    body = route.body_field if route is not None else None
    if operation.get("parameters") or body is not None:
        out[422] = ["validation_error"]
    if body is not None:
        out[400] = (
            ["bad_request"] if isinstance(body.field_info, params.Form) else ["malformed_json", "bad_request"]
        )
    return out


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` comes from a connection PostgreSQL refused (too many clients, starting up or shutting
    down) or the pool could not give within its timeout: raised before the request's first statement, so
    nothing was done. A connection lost mid-transaction is not one of these (its outcome is not known)."""
    import asyncpg
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from app.core.db import DirectPoolTimeout

    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(
            cause,
            asyncpg.TooManyConnectionsError | asyncpg.CannotConnectNowError | PoolTimeout | DirectPoolTimeout,
        ):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def database_unavailable_response(request: Request | None, **extra: Any) -> JSONResponse:
    """503 ``database_unavailable`` with ``Retry-After: 1``, for an error :func:`database_unavailable` knows."""
    return problem_response(
        request,
        503,
        "database_unavailable",
        "Service unavailable",
        "The database takes no more connections at the moment; nothing was done. Retry shortly.",
        headers={"Retry-After": "1"},
        **extra,
    )


def install(app: FastAPI) -> None:
    _document_problems(app)

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError):
        return problem_response(
            request, exc.status, exc.code, exc.title, exc.detail, headers=exc.headers, **exc.extra
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = []
        malformed = False
        for e in exc.errors():
            if e.get("type") == "json_invalid":
                malformed = True
            errors.append({"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", "")})
        if malformed:
            return problem_response(
                request,
                400,
                "malformed_json",
                "Malformed JSON",
                "The request body is not valid JSON.",
                errors=errors,
            )
        return problem_response(
            request,
            422,
            "validation_error",
            "Validation failed",
            "The request does not match the schema; see errors.",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = _STARLETTE_CODES.get(exc.status_code, "http_error")
        try:
            title = HTTPStatus(exc.status_code).phrase
        except ValueError:
            title = "HTTP error"
        detail = exc.detail if isinstance(exc.detail, str) else title
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
        return problem_response(request, exc.status_code, code, title, detail, headers=headers or None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        if database_unavailable(exc):
            log.warning(
                "database unavailable", extra={"request_id": getattr(request.state, "request_id", None)}
            )
            return database_unavailable_response(request)
        log.exception("unhandled error", extra={"request_id": getattr(request.state, "request_id", None)})
        return problem_response(
            request,
            500,
            "internal_error",
            "Internal server error",
            "Something went wrong on our side; quote the request id when reporting it.",
        )
