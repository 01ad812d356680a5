"""Review panels: experts drawn at random for one subject, their opinions, the authority's decision."""

import uuid
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


class PanelStatus(StrEnum):
    open = "open"
    decided = "decided"


class Verdict(StrEnum):
    """A member's verdict, and the panel's outcome."""

    passed = "pass"
    failed = "fail"


def _ts(nullable: bool = False) -> sa.Column:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable)


class ReviewPanel(SQLModel, table=True):
    __tablename__ = "review_panels"
    __table_args__ = (
        sa.Index("ix_review_panels_subject", "subject_type", "subject_id", "created_at"),
        sa.Index(
            "uq_review_panels_subject_open",
            "subject_type",
            "subject_id",
            unique=True,
            postgresql_where=sa.text("status = 'open'"),
        ),
        sa.CheckConstraint("quorum BETWEEN 1 AND size", name="quorum_within_size"),
        sa.CheckConstraint("outcome IS NULL OR outcome IN ('pass', 'fail')", name="outcome_known"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    subject_type: str = Field(max_length=50)
    subject_id: str = Field(max_length=100)
    field: str = Field(max_length=30)
    size: int
    quorum: int
    status: str = Field(default=PanelStatus.open, max_length=20, index=True)
    seed: str = Field(max_length=200)
    algorithm: str = Field(max_length=50)
    candidates: list = Field(sa_column=sa.Column(JSONB, nullable=False))
    """The eligible expert ids, sorted: the input of the draw."""
    chosen: list = Field(sa_column=sa.Column(JSONB, nullable=False))
    excluded: list = Field(sa_column=sa.Column(JSONB, nullable=False))
    """``[{expert_id, reason}]``: active experts of the field left out (conflict or explicit)."""
    exclude_affiliations: list = Field(sa_column=sa.Column(JSONB, nullable=False))
    opened_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_column=_ts())
    outcome: str | None = Field(default=None, max_length=10)
    reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    decided_by: str | None = Field(default=None, max_length=200)
    decided_at: datetime | None = Field(default=None, sa_column=_ts(True))


class PanelMember(SQLModel, table=True):
    """One drawn expert of a panel and, once given, their opinion."""

    __tablename__ = "review_panel_members"
    __table_args__ = (
        sa.Index("ix_review_panel_members_expert", "expert_id", "panel_id"),
        sa.CheckConstraint("score IS NULL OR score BETWEEN 0 AND 100", name="score_range"),
        sa.CheckConstraint("verdict IS NULL OR verdict IN ('pass', 'fail')", name="verdict_known"),
    )

    panel_id: uuid.UUID = Field(foreign_key="review_panels.id", primary_key=True)
    expert_id: uuid.UUID = Field(foreign_key="experts.id", primary_key=True)
    position: int
    verdict: str | None = Field(default=None, max_length=10)
    score: int | None = None
    text: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    submitted_at: datetime | None = Field(default=None, sa_column=_ts(True))
    declared_at: datetime | None = Field(default=None, sa_column=_ts(True))
    """When the expert declared no conflict of interest with the subject (before seeing its documents)."""
    declaration: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
