"""All SQL of the expert pool: the ``experts`` table, on the request's session."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.core.pagination import keyset
from app.experts.models import Expert


async def insert(session: AsyncSession, expert: Expert) -> None:
    session.add(expert)
    await session.flush()


async def get(session: AsyncSession, expert_id: uuid.UUID, *, lock: bool = False) -> Expert | None:
    if not lock:
        return await session.get(Expert, expert_id)
    stmt = select(Expert).where(Expert.id == expert_id).with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def for_staff_user(session: AsyncSession, staff_user_id: uuid.UUID) -> Expert | None:
    stmt = select(Expert).where(Expert.staff_user_id == staff_user_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def active_in_field(session: AsyncSession, field: str) -> list[Expert]:
    stmt = select(Expert).where(col(Expert.active).is_(True), col(Expert.fields).contains([field]))
    return list((await session.execute(stmt)).scalars())


async def names(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = await session.execute(select(Expert.id, Expert.name).where(col(Expert.id).in_(ids)))
    return {r.id: r.name for r in rows}


async def page(
    session: AsyncSession, *, field: str | None, active: bool | None, cursor: str | None, limit: int
) -> list[Expert]:
    """``limit + 1`` experts by name, then id, after the cursor's."""
    stmt = select(Expert)
    if field is not None:
        stmt = stmt.where(col(Expert.fields).contains([field]))
    if active is not None:
        stmt = stmt.where(col(Expert.active).is_(active))
    stmt = keyset(stmt, cursor, (Expert.name, str), (Expert.id, uuid.UUID))
    return list((await session.execute(stmt.limit(limit + 1))).scalars())
