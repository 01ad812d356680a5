import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema

from app.core.pagination import Page
from app.core.types import Int64, Moment, Text
from app.points.models import CapCode, EntryKind, RecordStatus, RejectCode


def _inline(codes: type[StrEnum], title: str) -> WithJsonSchema:
    """The enum's values written in place, as a ``Literal`` of them would be (no separate component)."""
    return WithJsonSchema({"enum": [c.value for c in codes], "title": title, "type": "string"})


class Evidence(BaseModel):
    source: Text = Field(max_length=100, description="Where the proof lives, e.g. 'sz-metro-card'")
    ref: Text = Field(max_length=200, description="Its id there; unique across all operators")


class BehaviourRecordIn(BaseModel):
    """One behaviour. A record that breaks a rule is rejected alone; the rest of the batch is kept."""

    record_id: Text = Field(
        max_length=100, description="Your id; unique per operator (a retry is `duplicate`)"
    )
    external_user_id: Text = Field(max_length=100)
    type: Text = Field(
        max_length=50,
        description="Behaviour type of a published methodology: metro, bus, cycling, walking, nev, own_cup …",
    )
    started_at: Moment = Field(
        description="RFC 3339 with offset; not in the future, not older than the window"
    )
    ended_at: Moment
    quantity: float = Field(
        gt=0, le=1e9, allow_inf_nan=False, description="In the methodology's unit (km, item …)"
    )
    unit: Text = Field(max_length=20)
    scene_id: uuid.UUID | None = Field(default=None, description="An approved scene recording this type")
    evidence: Evidence


class BatchIn(BaseModel):
    records: list[BehaviourRecordIn] = Field(min_length=1, max_length=1000)


class RecordOutcome(BaseModel):
    record_id: str | None
    status: Annotated[RecordStatus, _inline(RecordStatus, "Status")]
    code: str | None = Field(
        description=f"Why, for `rejected`: {', '.join(RejectCode)}. For accepted: `{CapCode.capped}` when a daily "
        f"points cap cut the points, `{CapCode.quantity_capped}` when the daily quantity bound did."
    )
    reduction_g: int
    points: int
    methodology_version: str | None = Field(description="`{methodology code}@{version}`")
    rule_version: int | None
    message: str | None = None


class BatchSummary(BaseModel):
    accepted: int
    duplicate: int
    rejected: int


class BatchOut(BaseModel):
    batch_id: uuid.UUID
    results: list[RecordOutcome] = Field(description="One outcome per record, in request order")
    summary: BatchSummary


class Expiring(BaseModel):
    expires_at: datetime
    points: int


class AccountRead(BaseModel):
    user_id: uuid.UUID
    balance: int = Field(description="Points usable now")
    lifetime_points: int
    lifetime_reduction_g: int
    expiring: list[Expiring] = Field(
        description="The whole balance by expiry, soonest first; adds up to `balance`"
    )


class LedgerEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: Annotated[EntryKind, _inline(EntryKind, "Kind")]
    amount: int
    balance_after: int
    ref_type: str
    ref_id: str
    memo: str | None
    created_at: datetime


class BehaviourRead(BaseModel):
    id: int
    record_id: str
    operator_id: uuid.UUID
    type: str
    started_at: datetime
    ended_at: datetime
    quantity: Decimal
    counted_quantity: Decimal
    unit: str
    scene_id: uuid.UUID | None
    reduction_g: int
    points: int
    code: str | None
    methodology_version: str
    rule_version: int


class ClawbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    points: Int64 = Field(gt=0)
    reason: Annotated[Text, StringConstraints(min_length=3, max_length=500)]


class ClawbackOut(BaseModel):
    entry_id: int
    points: int
    balance_after: int


class BatchRead(BaseModel):
    """A batch the operator sent: when, signed with which key, and how many records had each outcome."""

    id: uuid.UUID
    received_at: datetime
    kid: str = Field(description="The key whose signature verified")
    body_sha256: str = Field(description="SHA-256 of the exact body kept with the signature")
    records: int
    accepted: int
    duplicate: int
    rejected: int


class RejectCount(BaseModel):
    code: str | None = Field(
        description="A reject code, as the submission answered it; null: not recorded (a batch received "
        "before the platform kept each rejection's outcome)"
    )
    count: int


class BatchRecordRead(BaseModel):
    """One record of a batch, in the order it was sent, with its outcome."""

    index: int = Field(description="Its position in the batch, from 0")
    record_id: str | None
    external_user_id: str | None
    behaviour_type: str | None
    occurred_at: datetime | None = Field(description="`started_at` as sent (null when it was not a time)")
    status: Annotated[RecordStatus, _inline(RecordStatus, "Status")]
    code: str | None = Field(
        description="As the submission answered it: for `rejected` the reject code (null only when not "
        "recorded, see `rejections_recorded`); for accepted and duplicate records `capped`, "
        "`quantity_capped` or null"
    )
    message: str | None = Field(
        description="As the submission answered it: what to fix, for the record's own checks (shape, "
        "times, quantity); null for the other codes"
    )
    reduction_g: int
    points: int


class BatchDetail(BatchRead):
    rejections_recorded: bool = Field(
        description="False for a batch with rejected records received before the platform kept each "
        "rejection's outcome: its rejected records are listed without a code"
    )
    reject_codes: list[RejectCount] = Field(
        description="The reject codes with their counts, most frequent first"
    )
    results: Page[BatchRecordRead] = Field(description="The records (those of `status` when asked), in order")
