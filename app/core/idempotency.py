"""``Idempotency-Key`` for POSTs, stored in PostgreSQL in the same transaction as the effect.

:func:`begin` runs before the work: it takes a transaction-scoped advisory lock on the key
(another request holding it → 409 ``idempotency_key_in_use``), then looks the key up: same
request → the stored response is replayed; another request → 422 ``idempotency_key_reused``.
Both in one round trip (the ``idempotency_begin`` function, migration 0015); or in none of their own
(:func:`defer`): a route whose work is one statement calls the function first in it, and that statement
stores the response under the key too (an order: ``mall_order_request``, migration 0019).
:func:`record` is what the request's end stores with its effect, in the same transaction, so a crash
before the commit leaves nothing behind and a retry simply runs again. Failed requests change nothing and
store nothing: a retry re-evaluates them.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.core import clock, db
from app.core.config import get_settings
from app.core.errors import Conflict, DomainError, InvalidInput

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200


class KeyInUse(Conflict):
    code, title = "idempotency_key_in_use", "A request with this Idempotency-Key is still running"


class KeyReused(InvalidInput):
    code, title = "idempotency_key_reused", "This Idempotency-Key was used for another request"


class KeyRequired(DomainError):
    status, code, title = 400, "idempotency_key_required", "This operation requires an Idempotency-Key header"


class KeyInvalid(DomainError):
    status, code, title = 400, "idempotency_key_invalid", "Invalid Idempotency-Key"


class Replay(Exception):
    """Raised by :func:`begin` to short-circuit the route with the stored response."""

    def __init__(self, response: Response):
        self.response = response


@dataclass
class Pending:
    scope: str
    key: str
    fingerprint: str


def _lock_key(scope: str, key: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(f"{scope}\x00{key}".encode(), digest_size=8).digest(), "big", signed=True
    )


async def _pending(request: Request, scope: str, required: bool) -> Pending | None:
    """The request's key, checked, with the fingerprint of its method, path and body (None: no key)."""
    key = request.headers.get(HEADER)
    if key is None:
        if required:
            raise KeyRequired()
        return None
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise KeyInvalid(f"an Idempotency-Key is 1 to {MAX_KEY_LENGTH} printable characters")
    body = await request.body()
    fingerprint = hashlib.sha256(
        b"\x00".join([request.method.encode(), request.url.path.encode(), body])
    ).hexdigest()
    return Pending(scope, key, fingerprint)


def _settle(pending: Pending, row: Any, prefix: str = "") -> None:
    """What ``idempotency_begin`` answered in ``row`` (its columns named with ``prefix``): go on (the key is the
    request's until it ends), or a refusal, or the stored response replayed."""
    if not row[prefix + "locked"]:
        raise KeyInUse(
            "the first request with this key has not finished; retry shortly", headers={"Retry-After": "1"}
        )
    fingerprint = row[prefix + "fingerprint"]
    if fingerprint is not None:
        if fingerprint != pending.fingerprint:
            raise KeyReused("this key was first used with another body or path")
        raise Replay(
            Response(
                content=row[prefix + "body"],
                status_code=row[prefix + "status_code"],
                media_type=row[prefix + "content_type"],
                headers={"Idempotent-Replayed": "true"},
            )
        )


async def begin(request: Request, session: AsyncSession, scope: str, *, required: bool = False) -> None:
    pending = await _pending(request, scope, required)
    if pending is None:
        return
    conn = await db.raw_connection(session)  # on every POST: asyncpg directly, not the ORM
    # the key's lock tried, then its record looked up with a snapshot taken under the lock: one round trip
    row = await conn.fetchrow(
        "SELECT * FROM idempotency_begin($1, $2, $3, $4)",
        _lock_key(scope, pending.key),
        scope,
        pending.key,
        clock.now(),
    )
    assert row is not None  # the function answers one row
    _settle(pending, row)
    request.state.idempotency = pending  # its response stored at the request's end (record)


DEFERRED = "idempotency_deferred"
"""``session.info`` key: the request's key, to be checked by its first statement (:func:`defer`)."""


@dataclass(slots=True)
class Deferred:
    """A key whose ``idempotency_begin`` runs inside the request's one statement, not as a round trip of its
    own: the statement calls it first, does its work only if the key is free and unused, and stores the
    response under the key itself (``mall_order_request``); :meth:`settle` reads what it answered."""

    pending: Pending

    @property
    def args(self) -> tuple[int, str, str, str, datetime]:
        """``idempotency_begin``'s lock, scope and key, then what the record stores: the fingerprint, and until
        when it is kept."""
        scope, key = self.pending.scope, self.pending.key
        until = clock.now() + timedelta(hours=get_settings().idempotency_ttl_hours)
        return _lock_key(scope, key), scope, key, self.pending.fingerprint, until

    def settle(self, row: Any) -> None:
        """The statement's ``key_locked``, ``key_fingerprint``, ``key_status_code``, ``key_body`` and
        ``key_content_type``, as :func:`begin` reads ``idempotency_begin``'s; the request's response is not
        stored again at its end (the statement stored it with its effect)."""
        _settle(self.pending, row, prefix="key_")


async def defer(request: Request, session: AsyncSession, scope: str, *, required: bool = False) -> None:
    """:func:`begin` left to the route's first statement (one round trip fewer): the key is checked now, its
    lock and record by the statement the service runs with :func:`deferred`'s ``args``."""
    pending = await _pending(request, scope, required)
    if pending is not None:
        session.info[DEFERRED] = Deferred(pending)


def deferred(session: AsyncSession) -> Deferred | None:
    """The request's deferred key (taken: the caller's statement must check it, then :meth:`Deferred.settle`)."""
    taken: Deferred | None = session.info.pop(DEFERRED, None)
    return taken


def check_taken(session: AsyncSession) -> None:
    """Before a request's success is committed: a deferred key no statement checked is a route's mistake."""
    if DEFERRED in session.info:
        raise RuntimeError("the route's statements never checked its deferred Idempotency-Key")


STORE_SQL = "SELECT idempotency_store({0}, {1}, {2}, {3}, {4}, {5}, {6}, {7})"
"""The response stored under its key (``idempotency_store``, migration 0019, which an order's own statement calls
too); ``{0}``…``{7}`` are the parameters' places (``$1``… when alone,
later ones when :func:`app.core.audit.flush` sends it in the same statement as the audit entries)."""


def record(request: Request, response: Response) -> tuple[Any, ...] | None:
    """What :data:`STORE_SQL` stores for this request's key, or None (no key, or a refusal)."""
    pending: Pending | None = getattr(request.state, "idempotency", None)
    if pending is None or response.status_code >= 400:
        return None
    now = clock.now()
    return (
        pending.scope,
        pending.key,
        pending.fingerprint,
        response.status_code,
        bytes(response.body),
        response.headers.get("content-type", "application/json"),
        now,
        now + timedelta(hours=get_settings().idempotency_ttl_hours),
    )


async def purge_expired(session: AsyncSession) -> int:
    result = await session.execute(
        sa.text("DELETE FROM idempotency_records WHERE expires_at <= :now"), {"now": clock.now()}
    )
    return cast(sa.CursorResult[Any], result).rowcount or 0  # a DELETE's result is a CursorResult
