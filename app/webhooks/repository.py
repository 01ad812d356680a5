"""All SQL of webhooks: subscriptions (the long tail, on the session) and the events outbox, whose
writes sit on hot paths (orders, expiry) and go through the transaction's asyncpg connection."""

import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.core.db import Conn
from app.core.pagination import decode_cursor
from app.webhooks.models import WebhookEvent, WebhookSubscription

# One round trip: the events, and one pending delivery per active subscription of the recipient that
# wants the type (the function ``webhook_emit``, migration 0018, which an order's own statement calls too).
# An event whose id exists already (a job that ran twice) is skipped with its deliveries.
EMIT_SQL = "SELECT e.id FROM webhook_emit($1, $2, $3, $4, $5, $6, $7) AS e(id)"


async def insert_events(
    conn: Conn,
    ids: Sequence[uuid.UUID],
    org_ids: Sequence[uuid.UUID],
    types: Sequence[str],
    subject_types: Sequence[str],
    subject_ids: Sequence[str],
    payloads: Sequence[str],
    now: datetime,
) -> set[uuid.UUID]:
    """Write the events (``payloads`` as JSON text) with their deliveries; the ids actually written."""
    rows = await conn.fetch(
        EMIT_SQL,
        list(ids),
        list(org_ids),
        list(types),
        list(subject_types),
        list(subject_ids),
        list(payloads),
        now,
    )
    return {r["id"] for r in rows}


# ---- subscriptions ---------------------------------------------------------------------------------------


async def add(session: AsyncSession, subscription: WebhookSubscription) -> None:
    session.add(subscription)
    await session.flush()


async def get(
    session: AsyncSession, org_id: uuid.UUID, subscription_id: uuid.UUID, *, lock: bool = False
) -> WebhookSubscription | None:
    stmt = select(WebhookSubscription).where(
        WebhookSubscription.id == subscription_id, WebhookSubscription.org_id == org_id
    )
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_(session: AsyncSession, org_id: uuid.UUID) -> list[WebhookSubscription]:
    stmt = (
        select(WebhookSubscription)
        .where(WebhookSubscription.org_id == org_id)
        .order_by(col(WebhookSubscription.created_at), col(WebhookSubscription.id))
    )
    return list((await session.execute(stmt)).scalars())


async def count(session: AsyncSession, org_id: uuid.UUID) -> int:
    stmt = (
        select(sa.func.count()).select_from(WebhookSubscription).where(WebhookSubscription.org_id == org_id)
    )
    return int((await session.execute(stmt)).scalar_one())


async def lock_org(session: AsyncSession, org_id: uuid.UUID) -> None:
    """Serialise the organisation's subscription creations (the count limit)."""
    await session.execute(
        sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(f"webhooks:{org_id}", 0)))
    )


async def delete(session: AsyncSession, subscription: WebhookSubscription) -> None:
    """Delete it; its deliveries and their attempts go with it (ON DELETE CASCADE)."""
    await session.delete(subscription)
    await session.flush()


async def flush(session: AsyncSession) -> None:
    await session.flush()


# ---- events ----------------------------------------------------------------------------------------------


async def event(session: AsyncSession, org_id: uuid.UUID, event_id: uuid.UUID) -> WebhookEvent | None:
    stmt = select(WebhookEvent).where(WebhookEvent.id == event_id, WebhookEvent.org_id == org_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def events(
    session: AsyncSession,
    org_id: uuid.UUID,
    *,
    types: Sequence[str],
    since: datetime | None,
    until: datetime | None,
    after: tuple[datetime, uuid.UUID] | None,
    cursor: str | None,
    limit: int,
) -> list[WebhookEvent]:
    """``limit + 1`` of the organisation's events: newest first, or — ``after`` an event — oldest first
    from just after it; either way after the cursor's."""
    stmt = select(WebhookEvent).where(WebhookEvent.org_id == org_id)
    if types:
        stmt = stmt.where(col(WebhookEvent.type).in_(list(types)))
    if since is not None:
        stmt = stmt.where(col(WebhookEvent.created_at) >= since)
    if until is not None:
        stmt = stmt.where(col(WebhookEvent.created_at) < until)
    key = sa.tuple_(col(WebhookEvent.created_at), col(WebhookEvent.id))
    ascending = after is not None
    if after is not None:
        stmt = stmt.where(key > after)
    last = decode_cursor(cursor, datetime, uuid.UUID)
    if last is not None:
        stmt = stmt.where(key > last if ascending else key < last)
    order = (col(WebhookEvent.created_at), col(WebhookEvent.id))
    stmt = stmt.order_by(*(c.asc() if ascending else c.desc() for c in order))
    return list((await session.execute(stmt.limit(limit + 1))).scalars())
