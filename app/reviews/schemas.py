import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.core.types import Int32, Text


class PanelOpen(BaseModel):
    """Open a panel on any subject (a methodology version, a CER project…)."""

    subject_type: Text = Field(
        min_length=1, max_length=50, pattern=r"^[a-z][a-z0-9_]*$", examples=["methodology_version"]
    )
    subject_id: Text = Field(min_length=1, max_length=100)
    field: Text = Field(max_length=30, description="The field of expertise to draw from", examples=["travel"])
    size: Int32 = Field(default=3, ge=1, le=25, description="How many experts to draw")
    quorum: Int32 | None = Field(
        default=None, ge=1, le=25, description="Opinions needed to decide (default: all)"
    )
    exclude_affiliations: list[Text] = Field(
        default_factory=list,
        max_length=50,
        description="Applicant affiliations: organisation ids and/or names. Experts affiliated with any of them "
        "(by org id or by normalised name) are not eligible.",
    )
    exclude_experts: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=200,
        description="Experts excluded explicitly (e.g. declared conflicts)",
    )
    seed: Text | None = Field(
        default=None,
        min_length=8,
        max_length=200,
        description="The draw's seed; generated (`secrets.token_hex`) when omitted",
    )


class Opinion(BaseModel):
    verdict: Literal["pass", "fail"]
    score: Int32 = Field(ge=0, le=100)
    text: Text = Field(min_length=1, max_length=20000)


class DecisionIn(BaseModel):
    outcome: Literal["pass", "fail"]
    reason: Text = Field(min_length=1, max_length=5000)


class MemberRead(BaseModel):
    expert_id: uuid.UUID
    name: str
    position: int
    submitted: bool
    verdict: Literal["pass", "fail"] | None = None
    score: int | None = None
    text: str | None = None
    submitted_at: datetime | None = None
    declared_at: datetime | None = Field(
        default=None,
        description="When the expert answered the declaration of interests (the authority and the expert only)",
    )
    conflict_declared: bool | None = Field(
        default=None, description="True: the expert declared a conflict of interest and stands aside"
    )
    declaration_note: str | None = None


class PanelRead(BaseModel):
    id: uuid.UUID
    subject_type: str
    subject_id: str
    field: str
    size: int
    quorum: int
    status: Literal["open", "decided"]
    opinions_in: int
    members: list[MemberRead] = Field(
        description="The authority sees every opinion; a member sees only their own (others: `submitted` only)"
    )
    outcome: Literal["pass", "fail"] | None
    reason: str | None
    opened_by: str
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None


class DrawRecord(BaseModel):
    panel_id: uuid.UUID
    subject_type: str
    subject_id: str
    field: str
    algorithm: str = Field(
        description="See `app/reviews/draw.py`: rank by HMAC-SHA256(seed, id), take the first N"
    )
    seed: str
    size: int
    candidates: list[str] = Field(description="Eligible expert ids, sorted: the input of the draw")
    chosen: list[str] = Field(description="The panel, in drawn order")
    excluded: list[dict] = Field(description="Active experts of the field left out, with why")
    exclude_affiliations: list[str]
    created_at: datetime


class DeclarationIn(BaseModel):
    """The expert's declaration of interests, made before they see the subject's documents."""

    conflict: bool = Field(
        default=False,
        description="false: I declare no conflict of interest with the subject or its owner; "
        "true: I have a conflict and stand aside (the authority is told)",
    )
    note: Text = Field(default="", max_length=2000, description="Optional: what the conflict is, or a remark")


class DeclarationRead(BaseModel):
    panel_id: uuid.UUID
    expert_id: uuid.UUID
    conflict: bool
    note: str
    declared_at: datetime
