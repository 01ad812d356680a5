"""Request ids, structured JSON logs, Prometheus metrics, body-size limit, security headers, client address.

One pure-ASGI middleware (cheaper than ``BaseHTTPMiddleware`` on hot paths).
"""

import json
import logging
import os
import re
import sys
import time
from typing import Any
from urllib.parse import parse_qsl

from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core import proxies
from app.core.config import Settings, get_settings
from app.core.errors import database_unavailable, database_unavailable_response, problem_response

REQUESTS = Counter("carbon_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "carbon_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
_counted: dict[tuple[str, str, int], tuple[Any, Any]] = {}
"""Each (method, route, status)'s counter and histogram children, as ``labels()`` made them: looked up once."""


def _count(method: str, route: str, status: int, seconds: float) -> None:
    """A request in the metrics (``labels()`` takes a lock and checks its labels: ~1 µs a call, twice)."""
    children = _counted.get((method, route, status))
    if children is None:
        children = _counted[method, route, status] = (
            REQUESTS.labels(method, route, status),
            LATENCY.labels(method, route),
        )
    children[0].inc()
    children[1].observe(seconds)


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]

SECRET_PATH_PARAMS = re.compile(r"(?:^|_)(?:code|token|secret|password)$")
"""Path parameters that carry secrets (``/v1/merchant/vouchers/{code}/redeem``): logs show them as
:data:`REDACTED`, whatever the route, so a code read in a log cannot be redeemed. Query strings are
never logged."""
REDACTED = "[redacted]"


class JsonFormatter(logging.Formatter):
    _skip = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
        "message",
        "asctime",
        "color_message",
    }

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update({k: v for k, v in record.__dict__.items() if k not in self._skip})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("uvicorn.access").disabled = True


access_log = logging.getLogger("carbon.access")
log = logging.getLogger(__name__)


class RequestMiddleware:
    """Request id, access log and metrics, body-size limit, security headers, and the last-resort 500.

    The client address and scheme come from ``X-Forwarded-*`` only when the peer is a trusted proxy.

    ``settings`` (default: :func:`get_settings`) are read per request, so a changed limit applies
    at once. The body limit holds for a declared ``Content-Length`` (refused before the app runs)
    and for chunked bodies (the app's first read past the limit fails with 413). An exception no
    handler took becomes a 500 problem here, so it too carries the request id and the headers.
    """

    def __init__(self, app: ASGIApp, settings: Settings | None = None):
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = self.settings or get_settings()
        limit = settings.max_body_bytes
        request_id = None
        declared = None
        forwarded_for: list[bytes] = []
        forwarded_proto = None
        for name, value in scope["headers"]:
            if name == b"x-request-id" and 0 < len(value) <= 100:
                request_id = _clean_request_id(value)
            elif name == b"content-length":
                declared = value
            elif name == b"x-forwarded-for":
                forwarded_for.append(value)
            elif name == b"x-forwarded-proto":
                forwarded_proto = value
        if forwarded_for or forwarded_proto is not None:
            _believe_trusted_proxies(scope, settings, forwarded_for, forwarded_proto)
        request_id = request_id or os.urandom(16).hex()  # 128 random bits, as a UUID's hex (a fifth the cost)
        scope.setdefault("state", {})["request_id"] = request_id
        extra_headers = list(SECURITY_HEADERS)
        if settings.hsts_seconds > 0 and scope.get("scheme") == "https":
            extra_headers.append(
                (b"strict-transport-security", f"max-age={settings.hsts_seconds}; includeSubDomains".encode())
            )
        started = time.perf_counter()
        status_holder = [500]
        response_started = False
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                status_holder[0] = message["status"]
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers.append((b"x-request-id", request_id.encode()))
                headers.extend(h for h in extra_headers if h[0] not in present)
                message["headers"] = headers
            await send(message)

        try:
            if declared is not None and (not declared.isdigit() or int(declared) > limit):
                await _problem(
                    scope,
                    send_with_headers,
                    413,
                    "payload_too_large",
                    "Request body too large",
                    f"the body is limited to {limit} bytes",
                    request_id,
                )
            elif _nul_in_url(scope):
                await _problem(
                    scope,
                    send_with_headers,
                    422,
                    "validation_error",
                    "Validation failed",
                    "the path and query may not contain the NUL character (%00)",
                    request_id,
                )
            else:
                await self.app(scope, limited_receive, send_with_headers)
        except Exception as exc:
            if not response_started and database_unavailable(exc):
                log.warning(
                    "database unavailable", extra={"request_id": request_id, "path": loggable_path(scope)}
                )
                response = database_unavailable_response(None, request_id=request_id, instance=scope["path"])
                await response(scope, _noop_receive, send_with_headers)
                return
            log.exception("unhandled error", extra={"request_id": request_id, "path": loggable_path(scope)})
            if response_started:
                raise
            await _problem(
                scope,
                send_with_headers,
                500,
                "internal_error",
                "Internal server error",
                "Something went wrong on our side; quote the request id when reporting it.",
                request_id,
            )
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            elapsed = time.perf_counter() - started
            _count(scope["method"], path, status_holder[0], elapsed)
            access_log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": loggable_path(scope),
                    "status": status_holder[0],
                    "ms": round(elapsed * 1000, 2),
                },
            )


def loggable_path(scope: Scope) -> str:
    """The request's path with the values of secret path parameters (:data:`SECRET_PATH_PARAMS`) redacted."""
    path = scope["path"]
    secrets = {str(v) for k, v in (scope.get("path_params") or {}).items() if SECRET_PATH_PARAMS.search(k)}
    if not secrets:
        return path
    return "/".join(REDACTED if segment in secrets else segment for segment in path.split("/"))


def _believe_trusted_proxies(
    scope: Scope, settings: Settings, forwarded_for: list[bytes], forwarded_proto: bytes | None
) -> None:
    """The client's address and scheme as a trusted proxy forwarded them (:mod:`app.core.proxies`)."""
    peer = scope.get("client")
    client, scheme = proxies.resolve(
        peer[0] if peer else None, forwarded_for, forwarded_proto, proxies.networks(settings.trusted_proxies)
    )
    if client is not None:
        scope["client"] = (client, 0)
    if scheme is not None:
        scope["scheme"] = scheme


def _nul_in_url(scope: Scope) -> bool:
    """NUL in the path or in a query parameter (defence in depth: the request types refuse it too).

    ``cursor`` is left to :func:`app.core.pagination.decode_cursor`: whatever a client puts there is
    400 ``invalid_cursor``.
    """
    if "\x00" in scope["path"] or b"%00" in scope.get("raw_path", b""):
        return True
    query = scope.get("query_string", b"")
    if b"%00" not in query and b"\x00" not in query:
        return False
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    return any("\x00" in name or ("\x00" in value and name != "cursor") for name, value in pairs)


def _clean_request_id(value: bytes) -> str | None:
    """A caller's X-Request-ID is echoed only if it is short and plain (it ends up in logs)."""
    text = value.decode("latin-1")
    return text if all(c.isalnum() or c in "-_.:" for c in text) else None


async def _problem(
    scope: Scope, send: Send, status: int, code: str, title: str, detail: str, request_id: str
) -> None:
    response = problem_response(
        None, status, code, title, detail, request_id=request_id, instance=scope["path"]
    )
    await response(scope, _noop_receive, send)


class _BodyTooLarge(HTTPException):
    """An HTTPException so FastAPI's body parsing re-raises it and the handler renders a 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the body is limited to {limit} bytes")


async def _noop_receive() -> Message:
    return {"type": "http.disconnect"}
