"""The SQL of webhook delivery: the worker's claims and outcomes, and the replay and inspection lists.

Statements on the asyncpg tier (the worker runs every few seconds over many rows). The tables are this
domain's own (``app/webhooks/models.py``).
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.core.db import Conn


@dataclass(frozen=True)
class Due:
    """A claimed delivery with what posting it needs."""

    id: int
    subscription_id: uuid.UUID
    org_id: uuid.UUID
    url: str
    secret_sealed: bytes
    previous_secret_sealed: bytes | None
    previous_secret_expires_at: datetime | None
    attempts: int
    created_at: datetime
    event_id: uuid.UUID
    event_type: str
    subject_type: str
    subject_id: str
    event_created_at: datetime
    payload: Any


# Due: pending, its time has come, its subscription active and not busy, and no earlier event of the same
# subject still pending for the same subscription (per-subject order: event time, then delivery id, which
# grows in insertion order). At most ``per_endpoint`` per subscription, ``batch`` in all; the claim moves
# ``next_attempt_at`` to the lease's end, so a worker that dies mid-post leaves the row to be retried then.
_CLAIM = """
WITH due AS (
    SELECT d.id, d.next_attempt_at,
           row_number() OVER (PARTITION BY d.subscription_id ORDER BY e.created_at, d.id) AS n
      FROM webhook_deliveries d
      JOIN webhook_events e ON e.id = d.event_id
      JOIN webhook_subscriptions s ON s.id = d.subscription_id
     WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND s.status = 'active'
       AND NOT (d.subscription_id = ANY($4::uuid[]))
       AND NOT EXISTS (
            SELECT 1
              FROM webhook_deliveries p
              JOIN webhook_events pe ON pe.id = p.event_id
             WHERE p.subscription_id = d.subscription_id AND p.status = 'pending'
               AND pe.subject_type = e.subject_type AND pe.subject_id = e.subject_id
               AND (pe.created_at, p.id) < (e.created_at, d.id))
), picked AS (
    SELECT d.id
      FROM webhook_deliveries d
      JOIN due ON due.id = d.id
     WHERE due.n <= $3 AND d.status = 'pending'
     ORDER BY due.next_attempt_at, d.id
     LIMIT $5
       FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries d
   SET next_attempt_at = $2
  FROM picked, webhook_events e, webhook_subscriptions s
 WHERE d.id = picked.id AND e.id = d.event_id AND s.id = d.subscription_id
RETURNING d.id, d.subscription_id, s.org_id, s.url, s.secret_sealed, s.previous_secret_sealed,
          s.previous_secret_expires_at, d.attempts, d.created_at, e.id AS event_id, e.type AS event_type,
          e.subject_type, e.subject_id, e.created_at AS event_created_at, e.payload
"""


async def claim_due(
    conn: Conn,
    *,
    now: datetime,
    lease_until: datetime,
    per_endpoint: int,
    batch: int,
    busy: list[uuid.UUID],
) -> list[Due]:
    rows = await conn.fetch(_CLAIM, now, lease_until, per_endpoint, busy, batch)
    return [Due(**dict(row)) for row in rows]


@dataclass(frozen=True)
class Outcome:
    """What one attempt gave and what becomes of its delivery."""

    delivery_id: int
    subscription_id: uuid.UUID
    at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    excerpt: str
    status: str
    """``delivered``, ``pending`` (retry at ``next_attempt_at``) or ``failed`` (given up)."""
    next_attempt_at: datetime


# The attempt, the delivery's new state and the subscription's failing streak in one round trip; the
# answer is the subscription's ``failing_since`` afterwards (NULL after a success).
_RECORD = """
WITH attempt AS (
    INSERT INTO webhook_attempts (delivery_id, at, status_code, latency_ms, error, response_excerpt)
    VALUES ($1, $2, $3, $4, $5, $6)
), delivery AS (
    UPDATE webhook_deliveries
       SET status = $7::text, attempts = attempts + 1, next_attempt_at = $8,
           delivered_at = CASE WHEN $7::text = 'delivered' THEN $2 ELSE delivered_at END
     WHERE id = $1
)
UPDATE webhook_subscriptions
   SET failing_since = CASE WHEN $7::text = 'delivered' THEN NULL ELSE coalesce(failing_since, $2) END
 WHERE id = $9
RETURNING failing_since
"""


async def record_outcome(conn: Conn, outcome: Outcome) -> datetime | None:
    o = outcome
    return await conn.fetchval(
        _RECORD,
        o.delivery_id,
        o.at,
        o.status_code,
        o.latency_ms,
        o.error,
        o.excerpt,
        o.status,
        o.next_attempt_at,
        o.subscription_id,
    )


async def disable(conn: Conn, subscription_id: uuid.UUID, reason: str, at: datetime) -> uuid.UUID | None:
    """Disable an active subscription; its organisation's id, or None when it was not active."""
    return await conn.fetchval(
        "UPDATE webhook_subscriptions SET status = 'disabled', disabled_reason = $2, updated_at = $3"
        " WHERE id = $1 AND status = 'active' RETURNING org_id",
        subscription_id,
        reason,
        at,
    )


async def consecutive_failed(conn: Conn, subscription_id: uuid.UUID, n: int) -> int:
    """How many of the subscription's ``n`` latest finished deliveries were given up."""
    return await conn.fetchval(
        "SELECT count(*) FILTER (WHERE status = 'failed') FROM ("
        " SELECT status FROM webhook_deliveries WHERE subscription_id = $1 AND status <> 'pending'"
        " ORDER BY created_at DESC, id DESC LIMIT $2) latest",
        subscription_id,
        n,
    )


# ---- inspection and replay --------------------------------------------------------------------------------


async def subscription_org(conn: Conn, subscription_id: uuid.UUID) -> uuid.UUID | None:
    return await conn.fetchval("SELECT org_id FROM webhook_subscriptions WHERE id = $1", subscription_id)


_DELIVERY_COLUMNS = """
    d.id, d.subscription_id, d.event_id, e.type AS event_type, e.subject_type, e.subject_id,
    e.created_at AS event_created_at, d.status, d.attempts, d.next_attempt_at, d.created_at, d.delivered_at,
    a.at AS last_attempt_at, a.status_code AS last_status_code, a.latency_ms AS last_latency_ms,
    a.error AS last_error, a.response_excerpt AS last_response_excerpt
"""
_DELIVERY_FROM = """
  FROM webhook_deliveries d
  JOIN webhook_events e ON e.id = d.event_id
  LEFT JOIN LATERAL (
      SELECT at, status_code, latency_ms, error, response_excerpt FROM webhook_attempts
       WHERE delivery_id = d.id ORDER BY at DESC, id DESC LIMIT 1) a ON true
"""


async def list_deliveries(
    conn: Conn,
    subscription_id: uuid.UUID,
    *,
    status: str | None,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The subscription's deliveries, newest first, after the cursor's ``(created_at, id)``."""
    rows = await conn.fetch(
        f"SELECT {_DELIVERY_COLUMNS} {_DELIVERY_FROM}"
        " WHERE d.subscription_id = $1 AND ($2::text IS NULL OR d.status = $2)"
        " AND ($3::timestamptz IS NULL OR (d.created_at, d.id) < ($3, $4))"
        " ORDER BY d.created_at DESC, d.id DESC LIMIT $5",
        subscription_id,
        status,
        after[0] if after else None,
        after[1] if after else 0,
        limit,
    )
    return [dict(row) for row in rows]


async def get_delivery(conn: Conn, subscription_id: uuid.UUID, delivery_id: int) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {_DELIVERY_COLUMNS} {_DELIVERY_FROM} WHERE d.subscription_id = $1 AND d.id = $2",
        subscription_id,
        delivery_id,
    )
    return dict(row) if row else None


async def attempts_of(conn: Conn, delivery_id: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT at, status_code, latency_ms, error, response_excerpt FROM webhook_attempts"
        " WHERE delivery_id = $1 ORDER BY at, id",
        delivery_id,
    )
    return [dict(row) for row in rows]


async def redeliver(conn: Conn, subscription_id: uuid.UUID, delivery_id: int, at: datetime) -> bool:
    """Make the delivery pending again, due at once (a delivery already pending is just made due now)."""
    done = await conn.fetchval(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $3"
        " WHERE id = $2 AND subscription_id = $1 RETURNING id",
        subscription_id,
        delivery_id,
        at,
    )
    return done is not None


async def redeliver_failed(
    conn: Conn, subscription_id: uuid.UUID, since: datetime, at: datetime
) -> list[int]:
    """Make every delivery of the subscription given up and created at or after ``since`` due again."""
    rows = await conn.fetch(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $3"
        " WHERE subscription_id = $1 AND status = 'failed' AND created_at >= $2 RETURNING id",
        subscription_id,
        since,
        at,
    )
    return sorted(row["id"] for row in rows)
