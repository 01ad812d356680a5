"""The expert pool (SZ 8): who may be drawn to review methodologies, scenes and CER filings."""

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field, SQLModel


class Expert(SQLModel, table=True):
    __tablename__ = "experts"
    __table_args__ = (
        sa.Index("ix_experts_fields", "fields", postgresql_using="gin"),
        sa.CheckConstraint("cardinality(fields) > 0", name="has_field"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=200)
    fields: list[str] = Field(sa_column=sa.Column(ARRAY(sa.Text), nullable=False))
    affiliation_name: str = Field(max_length=200)
    affiliation_norm: str = Field(max_length=200, index=True)
    """``affiliation_name`` normalised (NFKC, case-folded, no spaces or punctuation) for conflict checks."""
    affiliation_org_id: uuid.UUID | None = Field(default=None, foreign_key="organizations.id", index=True)
    active: bool = True
    staff_user_id: uuid.UUID = Field(foreign_key="staff_users.id", sa_column_kwargs={"unique": True})
    created_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
