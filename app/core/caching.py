"""HTTP caching of public reads (RFC 9110 §8.8.3 and §13.1.2, RFC 9111 §5.2): one mechanism for every route.

A route is cacheable when one of its dependencies carries a ``cache_control`` attribute (the
anonymous ``Public`` dependency does, ``public(max_age)`` gives a route its own age; the route's
own dependency wins over its router's). :class:`~app.core.routing.CommitRoute` then answers a 200
to a GET that carries no ``Authorization`` with

* ``Cache-Control: public, max-age=…``: anyone may see it, so shared caches may keep it;
* ``ETag``: a strong validator, the SHA-256 of the exact body;
* ``304 Not Modified`` (no body, the same ``ETag`` and ``Cache-Control``) when ``If-None-Match``
  names that tag (weak comparison: ``W/`` is ignored), among others or as ``*``.

Anything else (errors, a caller's own view through a token) keeps the ``no-store`` of
:mod:`app.core.observability`. The ages:

========================================  ==================================================
what                                      max-age
========================================  ==================================================
lists, records and totals that change     60 s (:data:`DEFAULT_MAX_AGE`)
the expert pool                           300 s
the platform's verification keys (JWKS)   300 s: a rotated key is seen within five minutes
retirement certificates (JSON and PDF)    3,600 s: a certificate never changes
a review panel's draw                     86,400 s, ``immutable``: a draw never changes
========================================  ==================================================
"""

import asyncio
import base64
import hashlib
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from starlette.requests import Request
from starlette.responses import Response

DEFAULT_MAX_AGE = 60
T = TypeVar("T")


class Recent(Generic[T]):
    """A figure anyone may see, read at most once in ``max_age()`` seconds by this process (0: every time).

    For the platform-wide sums a public page shows, which read whole tables: answered with ``max-age`` anyway,
    they may be that old, and a busy home page must not sum the ledger for every visit. Readers that find it
    stale while one of them reads it again wait for that read instead of making their own."""

    def __init__(self, max_age: Callable[[], float]):
        self._max_age = max_age
        self._value: T | None = None
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()

    async def get(self, read: Callable[[], Awaitable[T]]) -> T:
        max_age = self._max_age()
        if max_age <= 0:
            return await read()
        if self._value is None or time.monotonic() - self._read_at >= max_age:
            async with self._lock:
                if self._value is None or time.monotonic() - self._read_at >= max_age:
                    self._value, self._read_at = await read(), time.monotonic()
        assert self._value is not None
        return self._value

    def forget(self) -> None:
        self._value, self._read_at = None, float("-inf")


_TAG = re.compile(r'(?:W/)?("[^"]*")')


def cache_control(max_age: int, *, immutable: bool = False) -> str:
    return f"public, max-age={max_age}" + (", immutable" if immutable else "")


def entity_tag(body: bytes) -> str:
    """A strong tag: the body's SHA-256, base64url without padding, quoted."""
    return '"' + base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode() + '"'


def none_match(if_none_match: str, tag: str) -> bool:
    """Whether ``If-None-Match`` names ``tag`` (weak comparison) or is ``*``."""
    if if_none_match.strip() == "*":
        return True
    return tag in _TAG.findall(if_none_match)


def answer(request: Request, response: Response, policy: str) -> Response:
    """``response`` made public with ``policy`` and its ``ETag``, or ``304`` if the caller has it already."""
    body = getattr(response, "body", None)
    if (
        request.method != "GET"
        or response.status_code != 200
        or body is None
        or "authorization" in request.headers
    ):
        return response
    tag = entity_tag(body)
    headers = {"ETag": tag, "Cache-Control": policy}
    conditions = request.headers.getlist("if-none-match")
    if conditions and none_match(", ".join(conditions), tag):
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    return response


def document(responses: dict[int | str, Any]) -> None:
    """Name the ``ETag``, ``Cache-Control`` and the ``304`` in a cacheable route's OpenAPI ``responses``."""
    ok = responses.get(200, {})
    responses[200] = {
        **ok,
        "headers": {
            **ok.get("headers", {}),
            "ETag": {"description": "Strong validator: the body's SHA-256", "schema": {"type": "string"}},
            "Cache-Control": {
                "description": "`public, max-age=…` when called without a token",
                "schema": {"type": "string"},
            },
        },
    }
    responses.setdefault(
        304, {"description": "Not Modified: `If-None-Match` names the current `ETag` (no body)"}
    )
