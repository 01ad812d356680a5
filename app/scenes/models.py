"""Carbon-inclusion scenes (SZ 25–28): venues where people act low-carbon, and their lifecycle.

``status = 'approved'`` is what behaviour ingestion checks (with ``type = ANY(behaviour_types)``).
A change to an approved scene is kept in ``scene_changes`` until its own review passes, so the
approved version stays live meanwhile.
"""

import uuid
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel


class SceneStatus(StrEnum):
    draft = "draft"
    submitted = "submitted"
    under_review = "under_review"
    approved = "approved"
    rejected = "rejected"
    suspended = "suspended"
    revoked = "revoked"


class ChangeStatus(StrEnum):
    submitted = "submitted"
    under_review = "under_review"
    approved = "approved"
    rejected = "rejected"


def _ts(nullable: bool = False) -> sa.Column:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable)


class Scene(SQLModel, table=True):
    __tablename__ = "scenes"
    __table_args__ = (
        sa.Index("ix_scenes_operator_created", "operator_id", "created_at"),
        # near me: a band of 0.01° of latitude (~1.1 km) plus a longitude range, approved only
        sa.Index("ix_scenes_near", "lat_cell", "lng", postgresql_where=sa.text("status = 'approved'")),
        sa.Index("ix_scenes_public_label", "label_code", postgresql_where=sa.text("status = 'approved'")),
        sa.Index("ix_scenes_city_district", "city_code", "district_code"),
        sa.Index("ix_scenes_behaviour_types", "behaviour_types", postgresql_using="gin"),
        sa.CheckConstraint("lat BETWEEN -90 AND 90 AND lng BETWEEN -180 AND 180", name="coordinates"),
        sa.CheckConstraint(
            "category IN ('business_premises', 'public_place', 'public_institution')", name="category_known"
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    operator_id: uuid.UUID = Field(foreign_key="organizations.id")
    status: str = Field(default=SceneStatus.draft, sa_column=sa.Column(sa.Text, nullable=False, index=True))
    name: str = Field(max_length=200)
    category: str = Field(max_length=30)
    address: str = Field(max_length=500)
    city_code: str = Field(max_length=6)
    district_code: str = Field(max_length=6)
    lat: float = Field(sa_column=sa.Column(sa.Double, nullable=False))
    lng: float = Field(sa_column=sa.Column(sa.Double, nullable=False))
    lat_cell: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.Integer, sa.Computed("floor(lat * 100)::integer", persisted=True)),
    )
    opening_hours: str | dict | None = Field(default=None, sa_column=sa.Column(JSONB))
    behaviour_types: list[str] = Field(sa_column=sa.Column(ARRAY(sa.Text), nullable=False))
    description: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))
    evidence_links: list[str] = Field(
        default_factory=list, sa_column=sa.Column(ARRAY(sa.Text), nullable=False, server_default="{}")
    )
    label_code: str | None = Field(default=None, max_length=30, sa_column_kwargs={"unique": True})
    reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    """Why the last decision went as it did (rejection reasons, suspension…)."""
    review_panel_id: uuid.UUID | None = Field(default=None, foreign_key="review_panels.id")
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())
    submitted_at: datetime | None = Field(default=None, sa_column=_ts(True))
    approved_at: datetime | None = Field(default=None, sa_column=_ts(True))
    decided_at: datetime | None = Field(default=None, sa_column=_ts(True))


class SceneChange(SQLModel, table=True):
    """A proposed change to an approved scene: the full proposed values, reviewed like an application."""

    __tablename__ = "scene_changes"
    __table_args__ = (
        sa.Index(
            "uq_scene_changes_live",
            "scene_id",
            unique=True,
            postgresql_where=sa.text("status IN ('submitted', 'under_review')"),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    scene_id: uuid.UUID = Field(foreign_key="scenes.id", index=True)
    status: str = Field(default=ChangeStatus.submitted, max_length=20)
    proposed: dict = Field(sa_column=sa.Column(JSONB, nullable=False))
    reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    review_panel_id: uuid.UUID | None = Field(default=None, foreign_key="review_panels.id")
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())
    decided_at: datetime | None = Field(default=None, sa_column=_ts(True))
