"""Methodology versions and exchange-rule versions: the published, immutable rules of the game.

A behaviour record is computed with the methodology version of its ``type`` and the exchange
rule version in force at its ``started_at``; each record keeps both, so every figure can be
re-derived (SZ 11–13, 20–21; JX 7–11).

"In force at t" means: status ``published`` or ``retired`` and ``effective_from <= t <
effective_to`` (``effective_to`` NULL = open-ended). A retired version keeps the period it had
when it was retired, so records of that period are still computed with it; the service keeps the
periods of one behaviour type (and of the exchange rule) from overlapping, so at most one version
is in force at any moment.
"""

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


class VersionStatus(StrEnum):
    draft = "draft"
    under_review = "under_review"
    published = "published"
    retired = "retired"


# A period is [effective_from, effective_to). Only a version retired before it ever took effect
# has an empty period (effective_to = effective_from): it was never in force.
_PERIOD_ORDER = (
    "effective_to IS NULL OR effective_to > effective_from"
    " OR (status = 'retired' AND effective_to = effective_from)"
)


def _ts(nullable: bool = True) -> sa.Column:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable)


class MethodologyVersion(SQLModel, table=True):
    __tablename__ = "methodology_versions"
    __table_args__ = (
        sa.UniqueConstraint("code", "version"),
        sa.Index("ix_methodology_versions_type_from", "behaviour_type", "effective_from"),
        sa.CheckConstraint("net_factor_g > 0", name="net_factor_positive"),
        sa.CheckConstraint(_PERIOD_ORDER, name="period_order"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    code: str = Field(max_length=50, description="Stable methodology id, e.g. 'sz-metro'")
    version: int
    behaviour_type: str = Field(max_length=50, description="e.g. metro, bus, cycling, walking, nev, own_cup")
    category: str = Field(default="travel", max_length=20, description="travel | scene")
    name: str = Field(max_length=200)
    description: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))
    unit: str = Field(max_length=20, description="km | item | trip | kWh …")
    baseline_factor_g: Decimal | None = Field(default=None, sa_column=sa.Column(sa.Numeric(14, 4)))
    project_factor_g: Decimal | None = Field(default=None, sa_column=sa.Column(sa.Numeric(14, 4)))
    net_factor_g: Decimal = Field(sa_column=sa.Column(sa.Numeric(14, 4), nullable=False))
    """Grams CO2e reduced per unit: baseline − project, or given directly."""
    max_quantity_per_record: Decimal = Field(sa_column=sa.Column(sa.Numeric(14, 4), nullable=False))
    max_quantity_per_day: Decimal | None = Field(default=None, sa_column=sa.Column(sa.Numeric(14, 4)))
    citation: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))
    derivation: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))
    illustrative: bool = False
    status: str = Field(default=VersionStatus.draft, max_length=20, index=True)
    effective_from: datetime = Field(sa_column=_ts(False))
    effective_to: datetime | None = Field(default=None, sa_column=_ts())
    created_at: datetime = Field(sa_column=_ts(False))
    published_at: datetime | None = Field(default=None, sa_column=_ts())
    retired_at: datetime | None = Field(default=None, sa_column=_ts())


class ExchangeRuleVersion(SQLModel, table=True):
    __tablename__ = "exchange_rule_versions"
    __table_args__ = (
        sa.CheckConstraint("points_per_gram > 0", name="rate_positive"),
        sa.CheckConstraint("lot_lifetime_days BETWEEN 1 AND 3650", name="lifetime_at_most_ten_years"),
        sa.CheckConstraint(_PERIOD_ORDER, name="period_order"),
        sa.Index("ix_exchange_rule_versions_from", "effective_from"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    version: int = Field(sa_column_kwargs={"unique": True})
    name: str = Field(max_length=200)
    points_per_gram: Decimal = Field(sa_column=sa.Column(sa.Numeric(14, 6), nullable=False))
    """Points = floor(reduction_g × points_per_gram)."""
    daily_cap_points: int | None = Field(default=None, description="Most points one person earns a day")
    type_daily_caps: dict = Field(
        default_factory=dict, sa_column=sa.Column(JSONB, nullable=False, server_default="{}")
    )
    """``{behaviour_type: points}``: per-type caps a day."""
    lot_lifetime_days: int = Field(
        description="Points expire this many days after the day they're credited (≤ 3650)"
    )
    status: str = Field(default=VersionStatus.draft, max_length=20, index=True)
    effective_from: datetime = Field(sa_column=_ts(False))
    effective_to: datetime | None = Field(default=None, sa_column=_ts())
    created_at: datetime = Field(sa_column=_ts(False))
    published_at: datetime | None = Field(default=None, sa_column=_ts())
    retired_at: datetime | None = Field(default=None, sa_column=_ts())
