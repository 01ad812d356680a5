"""Typed shapes of what goes to the platform and what comes back (API.md)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class _Open(BaseModel):
    """A response shape: fields the platform adds later are kept, not refused."""

    model_config = ConfigDict(extra="allow")


# ---------------------------------------------------------------- behaviour records


class Evidence(BaseModel):
    model_config = ConfigDict(extra="allow")

    source: str
    ref: str


class BehaviourRecord(BaseModel):
    """One low-carbon behaviour, as the operator observed it.

    Only the shape is checked here; the platform decides what is acceptable (a negative quantity
    or an unknown type is sent and comes back ``rejected`` with its code).
    """

    model_config = ConfigDict(extra="allow")

    record_id: str = Field(min_length=1)
    external_user_id: str = Field(min_length=1)
    type: str = Field(min_length=1)
    started_at: AwareDatetime
    ended_at: AwareDatetime
    quantity: float = Field(allow_inf_nan=False)
    unit: str
    scene_id: str | None = None
    evidence: Evidence


class OutcomeStatus(StrEnum):
    accepted = "accepted"
    duplicate = "duplicate"
    rejected = "rejected"


class RecordOutcome(_Open):
    """The platform's verdict on one record; ``code`` says why when rejected (or ``capped``)."""

    record_id: str | None  # None only when the record was not even an object with an id
    status: OutcomeStatus
    code: str | None = None
    reduction_g: int | None = None
    points: int | None = None
    methodology_version: str | None = None
    rule_version: int | str | None = None
    message: str | None = None


class BatchSummary(_Open):
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0

    def __add__(self, other: BatchSummary) -> BatchSummary:
        return BatchSummary(
            accepted=self.accepted + other.accepted,
            duplicate=self.duplicate + other.duplicate,
            rejected=self.rejected + other.rejected,
        )


class BatchResult(_Open):
    """The answer to one ``POST /v1/operator/behaviour-batches``."""

    batch_id: str
    results: list[RecordOutcome]
    summary: BatchSummary


class SubmitReport(BaseModel):
    """All batches of one :meth:`submit`, in order."""

    batches: list[BatchResult] = Field(default_factory=list)

    @property
    def outcomes(self) -> list[RecordOutcome]:
        return [outcome for batch in self.batches for outcome in batch.results]

    @property
    def summary(self) -> BatchSummary:
        total = BatchSummary()
        for batch in self.batches:
            total = total + batch.summary
        return total

    def rejected_by_code(self) -> Counter[str]:
        return Counter(o.code or "unknown" for o in self.outcomes if o.status == OutcomeStatus.rejected)

    @property
    def points(self) -> int:
        return sum(o.points or 0 for o in self.outcomes if o.status == OutcomeStatus.accepted)


# ---------------------------------------------------------------- everything else


class Token(_Open):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class Organization(_Open):
    id: str
    status: str | None = None


class RegisteredKey(_Open):
    kid: str


class EnrolledUser(_Open):
    user_id: str
    created: bool | None = None


class ExpiringPoints(_Open):
    expires_at: AwareDatetime
    points: int


class Account(_Open):
    user_id: str | None = None
    balance: int
    lifetime_points: int | None = None
    lifetime_reduction_g: int | None = None
    expiring: list[ExpiringPoints] = Field(default_factory=list)


class Redemption(_Open):
    id: str | None = None


class BatchInfo(_Open):
    """A batch you sent (``GET /v1/operator/behaviour-batches``): when, with which key, its outcome counts."""

    id: str
    received_at: datetime
    kid: str | None = None
    body_sha256: str | None = None
    records: int
    accepted: int
    duplicate: int
    rejected: int


class BatchPage(_Open):
    items: list[BatchInfo]
    next_cursor: str | None = None


class BatchRecord(_Open):
    """One record of a batch, in the order sent, with its outcome."""

    index: int
    record_id: str | None = None
    external_user_id: str | None = None
    behaviour_type: str | None = None
    occurred_at: datetime | None = None
    status: str
    code: str | None = None
    message: str | None = None
    reduction_g: int = 0
    points: int = 0


class RecordPage(_Open):
    items: list[BatchRecord]
    next_cursor: str | None = None


class RejectCount(_Open):
    code: str | None = None
    count: int


class BatchDetail(BatchInfo):
    """One batch: its counts, the reject codes with their counts, a page of its records."""

    reject_codes: list[RejectCount] = Field(default_factory=list)
    results: RecordPage
