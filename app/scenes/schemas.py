import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.core.types import Int32, Patch, Text

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun", "holidays"]
OpeningHours = Text | dict[Weekday, Text]
CATEGORY_DOC = "business_premises (经营场所) | public_place (公共场所) | public_institution (公共机构)"


class SceneFields(BaseModel):
    name: Text = Field(min_length=1, max_length=200)
    category: Text = Field(max_length=30, description=CATEGORY_DOC)
    address: Text = Field(min_length=1, max_length=500)
    city_code: Text = Field(
        max_length=6, description="6-digit administrative division code, e.g. 440300 (Shenzhen)"
    )
    district_code: Text = Field(
        max_length=6, description="6-digit code within the city, e.g. 440305 (Nanshan)"
    )
    lat: float = Field(description="WGS-84 latitude, −90…90")
    lng: float = Field(description="WGS-84 longitude, −180…180")
    opening_hours: OpeningHours | None = Field(
        default=None,
        description='Free text ("daily 07:00-22:00") or {"mon": "07:00-22:00", …, "holidays": …}',
    )
    behaviour_types: list[Text] = Field(
        min_length=1,
        max_length=20,
        description="Behaviour types recorded here: those of published scene methodologies (see "
        "`GET /v1/public/scenes/behaviour-types`)",
    )
    description: Text = Field(default="", max_length=5000)
    evidence_links: list[Text] = Field(default_factory=list, max_length=20, description="http(s) URLs")


class SceneCreate(SceneFields):
    pass


class SceneUpdate(Patch):
    """Only the fields to change. On an approved scene this proposes a change that is reviewed again."""

    nullable = frozenset({"opening_hours"})  # a scene may lack opening hours, nothing else

    name: Text | None = Field(default=None, min_length=1, max_length=200)
    category: Text | None = Field(default=None, max_length=30)
    address: Text | None = Field(default=None, min_length=1, max_length=500)
    city_code: Text | None = Field(default=None, max_length=6)
    district_code: Text | None = Field(default=None, max_length=6)
    lat: float | None = None
    lng: float | None = None
    opening_hours: OpeningHours | None = None
    behaviour_types: list[Text] | None = Field(default=None, min_length=1, max_length=20)
    description: Text | None = Field(default=None, max_length=5000)
    evidence_links: list[Text] | None = Field(default=None, max_length=20)


class SceneChangeRead(BaseModel):
    id: uuid.UUID
    status: Literal["submitted", "under_review", "approved", "rejected"]
    proposed: dict
    reason: str | None
    review_panel_id: uuid.UUID | None
    created_at: datetime
    decided_at: datetime | None


class SceneRead(SceneFields):
    id: uuid.UUID
    operator_id: uuid.UUID
    status: Literal["draft", "submitted", "under_review", "approved", "rejected", "suspended", "revoked"]
    label_code: str | None
    reason: str | None = Field(description="Why the last decision went as it did (rejection, suspension…)")
    review_panel_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    approved_at: datetime | None
    decided_at: datetime | None
    change: SceneChangeRead | None = Field(
        default=None, description="The latest proposed change to the approved scene, if any"
    )


class SceneReview(BaseModel):
    size: Int32 = Field(default=3, ge=1, le=25)
    field: Text | None = Field(
        default=None,
        max_length=30,
        description="Field to draw from; default by category (public_institution: buildings, others: retail)",
    )
    quorum: Int32 | None = Field(default=None, ge=1, le=25)
    seed: Text | None = Field(default=None, min_length=8, max_length=200)
    exclude_experts: list[uuid.UUID] = Field(default_factory=list, max_length=200)


class SceneDecision(BaseModel):
    reason: Text = Field(min_length=1, max_length=5000)


class PublicScene(BaseModel):
    id: uuid.UUID
    name: str
    category: str
    address: str
    city_code: str
    district_code: str
    lat: float
    lng: float
    opening_hours: OpeningHours | None
    behaviour_types: list[str]
    description: str
    label_code: str
    operator_id: uuid.UUID
    operator_name: str
    approved_at: datetime
    distance_m: int | None = Field(default=None, description="Great-circle distance (near-me queries only)")


class BehaviourTypes(BaseModel):
    behaviour_types: list[str]
    source: Literal["methodologies", "default"] = Field(
        description="`methodologies`: the published scene-category methodologies; `default`: none is published yet"
    )
