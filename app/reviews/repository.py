"""All SQL of the review panels: ``review_panels`` and ``review_panel_members``, on the request's session."""

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.core.pagination import keyset
from app.reviews.models import PanelMember, PanelStatus, ReviewPanel


async def insert_panel(session: AsyncSession, panel: ReviewPanel) -> None:
    """In a savepoint: a second open panel of the subject raises IntegrityError, the transaction goes on."""
    async with session.begin_nested():
        session.add(panel)
        await session.flush()


async def insert_members(session: AsyncSession, panel_id: uuid.UUID, expert_ids: list[uuid.UUID]) -> None:
    """The panel's members, in drawn order."""
    session.add_all(
        PanelMember(panel_id=panel_id, expert_id=expert_id, position=i)
        for i, expert_id in enumerate(expert_ids, 1)
    )
    await session.flush()


async def open_panel_of(session: AsyncSession, subject_type: str, subject_id: str) -> ReviewPanel | None:
    stmt = select(ReviewPanel).where(
        ReviewPanel.subject_type == subject_type,
        ReviewPanel.subject_id == subject_id,
        ReviewPanel.status == PanelStatus.open,
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def get(session: AsyncSession, panel_id: uuid.UUID, *, lock: str | None = None) -> ReviewPanel | None:
    """The panel, read afresh; ``lock``: ``"update"`` or ``"share"`` locks its row."""
    stmt = select(ReviewPanel).where(ReviewPanel.id == panel_id).execution_options(populate_existing=True)
    if lock == "update":
        stmt = stmt.with_for_update()
    elif lock == "share":
        stmt = stmt.with_for_update(read=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def members(session: AsyncSession, panel_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[PanelMember]]:
    """The members of each panel, in drawn order."""
    result = await session.execute(
        select(PanelMember)
        .where(col(PanelMember.panel_id).in_(panel_ids))
        .order_by(col(PanelMember.panel_id), col(PanelMember.position))
        .execution_options(populate_existing=True)  # read afresh after a conditional update
    )
    out: dict[uuid.UUID, list[PanelMember]] = {pid: [] for pid in panel_ids}
    for m in result.scalars():
        out[m.panel_id].append(m)
    return out


async def member(session: AsyncSession, panel_id: uuid.UUID, expert_id: uuid.UUID) -> PanelMember | None:
    return await session.get(PanelMember, (panel_id, expert_id))


async def record_opinion(
    session: AsyncSession,
    panel_id: uuid.UUID,
    expert_id: uuid.UUID,
    *,
    verdict: str,
    score: int,
    text: str,
    at: datetime,
) -> bool:
    """The member's opinion, if they have given none yet; False when nothing was written."""
    result = await session.execute(
        sa.update(PanelMember)
        .where(
            col(PanelMember.panel_id) == panel_id,
            col(PanelMember.expert_id) == expert_id,
            col(PanelMember.submitted_at).is_(None),
        )
        .values(verdict=verdict, score=score, text=text, submitted_at=at)
        .returning(col(PanelMember.expert_id))
    )
    return result.first() is not None


async def record_declaration(
    session: AsyncSession, panel_id: uuid.UUID, expert_id: uuid.UUID, *, declaration: str, at: datetime
) -> bool:
    """The member's declaration of interests, if they have made none yet; False when nothing was written."""
    result = await session.execute(
        sa.update(PanelMember)
        .where(
            col(PanelMember.panel_id) == panel_id,
            col(PanelMember.expert_id) == expert_id,
            col(PanelMember.declared_at).is_(None),
        )
        .values(declaration=declaration, declared_at=at)
        .returning(col(PanelMember.expert_id))
    )
    return result.first() is not None


async def latest_panel(session: AsyncSession, subject_type: str, subject_id: str) -> ReviewPanel | None:
    stmt = (
        select(ReviewPanel)
        .where(ReviewPanel.subject_type == subject_type, ReviewPanel.subject_id == subject_id)
        .order_by(col(ReviewPanel.created_at).desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def page(
    session: AsyncSession,
    *,
    member_id: uuid.UUID | None,
    subject_type: str | None,
    subject_id: str | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> list[ReviewPanel]:
    """``limit + 1`` panels, newest first, after the cursor's; ``member_id``: those the expert sits on."""
    stmt = select(ReviewPanel)
    if member_id is not None:
        stmt = stmt.join(PanelMember, col(PanelMember.panel_id) == col(ReviewPanel.id)).where(
            PanelMember.expert_id == member_id
        )
    if subject_type:
        stmt = stmt.where(ReviewPanel.subject_type == subject_type)
    if subject_id:
        stmt = stmt.where(ReviewPanel.subject_id == subject_id)
    if status:
        stmt = stmt.where(ReviewPanel.status == status)
    stmt = keyset(
        stmt, cursor, (ReviewPanel.created_at, datetime), (ReviewPanel.id, uuid.UUID), descending=True
    )
    return list((await session.execute(stmt.limit(limit + 1))).scalars())
