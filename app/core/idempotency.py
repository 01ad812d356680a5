"""``Idempotency-Key`` for POSTs, stored in PostgreSQL in the same transaction as the effect.

:func:`begin` runs before the work: it takes a transaction-scoped advisory lock on the key
(another request holding it → 409 ``idempotency_key_in_use``), then looks the key up: same
request → the stored response is replayed; another request → 422 ``idempotency_key_reused``.
Both in one round trip (the ``idempotency_begin`` function, migration 0015).
:func:`finish` stores the successful response in the same transaction, so a crash before the
commit leaves nothing behind and a retry simply runs again. Failed requests change nothing and
store nothing: a retry re-evaluates them.
"""

import hashlib
from dataclasses import dataclass
from datetime import timedelta
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


async def begin(request: Request, session: AsyncSession, scope: str, *, required: bool = False) -> None:
    key = request.headers.get(HEADER)
    if key is None:
        if required:
            raise KeyRequired()
        return
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise KeyInvalid(f"an Idempotency-Key is 1 to {MAX_KEY_LENGTH} printable characters")
    body = await request.body()
    fingerprint = hashlib.sha256(
        b"\x00".join([request.method.encode(), request.url.path.encode(), body])
    ).hexdigest()
    conn = await db.raw_connection(session)  # on every POST: asyncpg directly, not the ORM
    # the key's lock tried, then its record looked up with a snapshot taken under the lock: one round trip
    row = await conn.fetchrow(
        "SELECT * FROM idempotency_begin($1, $2, $3, $4)", _lock_key(scope, key), scope, key, clock.now()
    )
    assert row is not None  # the function answers one row
    if not row["locked"]:
        raise KeyInUse(
            "the first request with this key has not finished; retry shortly", headers={"Retry-After": "1"}
        )
    if row["fingerprint"] is not None:
        if row["fingerprint"] != fingerprint:
            raise KeyReused("this key was first used with another body or path")
        raise Replay(
            Response(
                content=row["body"],
                status_code=row["status_code"],
                media_type=row["content_type"],
                headers={"Idempotent-Replayed": "true"},
            )
        )
    request.state.idempotency = Pending(scope, key, fingerprint)


STORE_SQL = (
    "INSERT INTO idempotency_records (scope, key, fingerprint, status_code, body, content_type,"
    " created_at, expires_at) VALUES ({0}, {1}, {2}, {3}, {4}, {5}, {6}, {7})"
    " ON CONFLICT (scope, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,"
    " status_code = EXCLUDED.status_code, body = EXCLUDED.body, content_type = EXCLUDED.content_type,"
    " created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at"
)
"""The response stored under its key; ``{0}``…``{7}`` are the parameters' places (``$1``… when alone,
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
