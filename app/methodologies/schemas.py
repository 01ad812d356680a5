"""Request and response models of the catalogue.

Only the shape is checked here (types, lengths, decimal places). The rules with their own error
codes (factor signs, net > 0, periods, offsets, lifetimes, behaviour-type format) live in the
service, so the HTTP routes and the catalogue loader apply exactly the same ones.
"""

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints

from app.core import types
from app.core.types import AnyMoment, Int64

# Grams CO2e per unit and quantities: NUMERIC(14, 4) in the database. Sent back as JSON numbers.
_AsNumber = PlainSerializer(float, return_type=float, when_used="json")
Amount = Annotated[Decimal, Field(max_digits=14, decimal_places=4, allow_inf_nan=False)]
AmountOut = Annotated[Decimal, _AsNumber]
Rate = Annotated[Decimal, Field(max_digits=14, decimal_places=6, allow_inf_nan=False)]
Text = Annotated[types.Text, StringConstraints(max_length=10_000)]
Name = Annotated[types.Text, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Unit = Annotated[
    types.Text,
    StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,19}$"),
    Field(description="What `quantity` counts: `km` (person-km), `item`, `kWh`, `trip` …"),
]
Identifier = Annotated[types.Text, StringConstraints(max_length=200)]
Category = Literal["travel", "scene"]

_PERIOD_DOC = (
    "RFC 3339 with an offset (answered in UTC). The version is in force in [effective_from, effective_to); "
    "no effective_to = open-ended."
)


class _MethodologyFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    behaviour_type: Identifier = Field(
        description="The record `type` this methodology computes, lower-case snake_case: `metro`, `own_cup` …"
    )
    category: Category = Field("travel", description="`travel` or `scene`")
    name: Name
    description: Text = ""
    unit: Unit
    baseline_factor_g: Amount | None = Field(None, description="Baseline emissions, g CO2e per unit (> 0)")
    project_factor_g: Amount | None = Field(None, description="Project emissions, g CO2e per unit (≥ 0)")
    net_factor_g: Amount | None = Field(
        None,
        description="Reduction, g CO2e per unit (> 0). Computed as baseline − project when both are "
        "given (then it may be omitted, or must equal that); otherwise required.",
    )
    max_quantity_per_record: Amount = Field(description="Plausibility bound: most units one record may claim")
    max_quantity_per_day: Amount | None = Field(None, description="Most units one person may claim a day")
    citation: Text = Field("", description="The published source of the factors")
    derivation: Text = Field("", description="How the factors were derived (the arithmetic)")
    illustrative: bool = Field(
        False, description="True when the factors are our estimate, not an official figure"
    )
    effective_from: AnyMoment = Field(description=_PERIOD_DOC)
    effective_to: AnyMoment | None = None


class MethodologyCreate(_MethodologyFields):
    code: Identifier = Field(
        description="Stable id of the methodology, e.g. `sz-metro`. Creating with an existing code makes "
        "the next version of it (same behaviour type)."
    )


class MethodologyUpdate(types.Patch):
    """Fields to change on a draft; absent fields stay, `null` clears an optional one."""

    model_config = ConfigDict(extra="forbid")
    nullable = frozenset(
        {"baseline_factor_g", "project_factor_g", "net_factor_g", "max_quantity_per_day", "effective_to"}
    )

    behaviour_type: Identifier | None = None
    category: Category | None = None
    name: Name | None = None
    description: Text | None = None
    unit: Unit | None = None
    baseline_factor_g: Amount | None = None
    project_factor_g: Amount | None = None
    net_factor_g: Amount | None = None
    max_quantity_per_record: Amount | None = None
    max_quantity_per_day: Amount | None = None
    citation: Text | None = None
    derivation: Text | None = None
    illustrative: bool | None = None
    effective_from: AnyMoment | None = None
    effective_to: AnyMoment | None = None


class MethodologyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    version: int
    behaviour_type: str
    category: str
    name: str
    description: str
    unit: str
    baseline_factor_g: AmountOut | None
    project_factor_g: AmountOut | None
    net_factor_g: AmountOut = Field(
        description="g CO2e reduced per unit; reduction_g = floor(quantity × this)"
    )
    max_quantity_per_record: AmountOut
    max_quantity_per_day: AmountOut | None
    citation: str
    derivation: str
    illustrative: bool
    status: str = Field(description="draft | under_review | published | retired")
    effective_from: datetime
    effective_to: datetime | None
    created_at: datetime
    published_at: datetime | None
    retired_at: datetime | None


class _RuleFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    points_per_gram: Rate = Field(description="Points per gram CO2e (> 0); points = floor(grams × this)")
    daily_cap_points: Int64 | None = Field(None, description="Most points one person earns a day, all types")
    type_daily_caps: dict[Identifier, Int64] = Field(
        default_factory=dict, description="`{behaviour_type: points}`: most points a day per behaviour type"
    )
    lot_lifetime_days: Int64 = Field(
        description="Points expire this many days after crediting: 1–3650 (at most 10 years, SZ 22)"
    )
    effective_from: AnyMoment = Field(description=_PERIOD_DOC)
    effective_to: AnyMoment | None = None


class ExchangeRuleCreate(_RuleFields):
    pass


class ExchangeRuleUpdate(types.Patch):
    """Fields to change on a draft; absent fields stay, `null` clears an optional one."""

    model_config = ConfigDict(extra="forbid")
    nullable = frozenset({"daily_cap_points", "effective_to"})

    name: Name | None = None
    points_per_gram: Rate | None = None
    daily_cap_points: Int64 | None = None
    type_daily_caps: dict[Identifier, Int64] | None = None
    lot_lifetime_days: Int64 | None = None
    effective_from: AnyMoment | None = None
    effective_to: AnyMoment | None = None


class ExchangeRuleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    version: int
    name: str
    points_per_gram: Annotated[Decimal, _AsNumber]
    daily_cap_points: int | None
    type_daily_caps: dict[str, Any]
    lot_lifetime_days: int
    rounding: Literal["down"] = Field(
        "down",
        description="Always down: reduction_g = floor(quantity × net factor), points = floor(g × rate); "
        "a daily cap cuts points, never the recorded reduction",
    )
    status: str = Field(description="draft | under_review | published | retired")
    effective_from: datetime
    effective_to: datetime | None
    created_at: datetime
    published_at: datetime | None
    retired_at: datetime | None
