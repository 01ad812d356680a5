"""One error contract: RFC 9457 ``application/problem+json`` with a stable ``code``.

Domains raise subclasses of :class:`DomainError` (in their ``exceptions.py``) with a status and
a code; the handlers below render every error, validation and unexpected ones included.
"""

import logging
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://carbon-points.dev/problems/"


class DomainError(Exception):
    """A rule said no. ``status`` and ``code`` are part of the API contract."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

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


def responses(*errors: type[DomainError]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status with the codes it may carry."""
    out: dict[int | str, dict[str, Any]] = {}
    for err in errors:
        entry = out.setdefault(err.status, {"model": Problem, "description": ""})
        entry["description"] = (entry["description"] + f" `{err.code}`").strip()
        entry["content"] = {PROBLEM_JSON: {}}
    return out


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
    """Every error response in the OpenAPI document is what the handlers send: ``Problem`` as problem+json.

    FastAPI documents its 422 as ``HTTPValidationError`` in ``application/json`` and a ``responses=``
    model under ``application/json``; clients and schema checks would be told the wrong shape.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        problem_ref = {"$ref": "#/components/schemas/Problem"}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for status, response in (operation.get("responses") or {}).items():
                    if not str(status).isdigit() or int(status) < 400:
                        continue
                    if response.get("description") == "Validation Error":
                        response["description"] = "`validation_error`: the request does not match the schema"
                    response["content"] = {PROBLEM_JSON: {"schema": problem_ref}}
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault("Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}"))
        text = str(schema.get("paths"))
        for unused in ("HTTPValidationError", "ValidationError"):
            if f"#/components/schemas/{unused}'" not in text:
                components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


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
                request, 400, "malformed_json", "Malformed JSON", "The request body is not valid JSON.",
                errors=errors,
            )
        return problem_response(
            request, 422, "validation_error", "Validation failed",
            "The request does not match the schema; see errors.", errors=errors,
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
        log.exception("unhandled error", extra={"request_id": getattr(request.state, "request_id", None)})
        return problem_response(
            request, 500, "internal_error", "Internal server error",
            "Something went wrong on our side; quote the request id when reporting it.",
        )
