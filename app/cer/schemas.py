import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from app.cer.models import DaySource, Publicity
from app.core.types import Day, Int32, Int64, Text

Code = Annotated[Text, StringConstraints(min_length=1, max_length=50)]
MAX_TONNES = 10**9

ProjectStatusLit = Literal[
    "publicity",
    "submitted",
    "verification",
    "verified",
    "under_review",
    "reviewed",
    "filed",
    "issued",
    "rejected",
    "frozen",
]
SERIAL_DOC = "`{prefix}-{vintage}-{start}-{end}` (a block) or `{prefix}-{vintage}-{n}` (one unit)"


# --- projects -------------------------------------------------------------------------------


class ProjectCreate(BaseModel):
    name: Text = Field(min_length=1, max_length=200)
    description: Text = Field(default="", max_length=5000)
    benefit_sharing: Text = Field(
        default="",
        max_length=5000,
        description="How the benefits are shared (利益分配), published with the project",
    )
    methodology_codes: list[Code] = Field(
        min_length=1, max_length=20, description="Methodology codes whose records the project aggregates"
    )
    period_start: Day = Field(description="First day of the period (platform time zone)")
    period_end: Day = Field(description="Last day of the period, before today")
    compiled_by_org_id: uuid.UUID | None = Field(
        default=None, description="The organisation that compiled the report (it may not verify it)"
    )


class VersionTotal(BaseModel):
    methodology_version_id: uuid.UUID
    code: str
    version: int
    behaviour_type: str
    records: int
    reduction_g: int


class MonthTotal(BaseModel):
    month: str = Field(examples=["2026-11"])
    records: int
    reduction_g: int


class ReportTotals(BaseModel):
    records: int
    reduction_g: int
    users: int


class ProjectReport(BaseModel):
    project_id: uuid.UUID
    owner_org_id: uuid.UUID
    methodology_codes: list[str]
    period_start: date
    period_end: date
    rules: dict[str, Any] = Field(
        description="cut-off date, region code and time zone the project was built with"
    )
    totals: ReportTotals
    by_methodology_version: list[VersionTotal]
    by_month: list[MonthTotal]


class ProjectRead(BaseModel):
    id: uuid.UUID
    owner_org_id: uuid.UUID
    owner_name: str
    name: str
    description: str
    benefit_sharing: str
    methodology_codes: list[str]
    period_start: date
    period_end: date
    compiled_by_org_id: uuid.UUID | None
    status: ProjectStatusLit
    publicity: Publicity = Field(description="Whether today is within the publicity")
    publicity_starts_on: date
    publicity_ends_on: date = Field(description="Last day: the 7th working day after the start day")
    record_count: int
    claimed_g: int
    report: ProjectReport
    report_sha256: str = Field(
        description="SHA-256 of the report's canonical JSON (sorted keys, no spaces, UTF-8)"
    )
    exclusions: dict[str, Any] = Field(
        description="Records of the period left out: before the cut-off, outside the region, already in a project"
    )
    objections: int
    objections_unanswered: int
    submitted_at: datetime | None
    verifier_org_id: uuid.UUID | None
    verified_g: int | None
    verification_statement: str | None
    verification_documents: list[str]
    verified_at: datetime | None
    review_panel_id: uuid.UUID | None
    decision_reason: str | None
    filed_at: datetime | None
    issued_at: datetime | None
    issued_tonnes: int | None
    frozen_at: datetime | None
    created_at: datetime


class ReportCheck(BaseModel):
    stored_sha256: str
    recomputed_sha256: str
    match: bool
    report: ProjectReport


class ObjectionCreate(BaseModel):
    name: Text | None = Field(default=None, max_length=200, description="Who objects (optional, published)")
    contact: Text | None = Field(
        default=None, max_length=200, description="Seen by the owner and the authority only"
    )
    text: Text = Field(min_length=1, max_length=5000)


class ObjectionRead(BaseModel):
    id: uuid.UUID
    project_id: uuid.UUID
    name: str | None
    contact: str | None = Field(default=None, description="Only for the owner and the authority")
    text: str
    filed_at: datetime
    answer: str | None
    answered_at: datetime | None


class AnswerIn(BaseModel):
    answer: Text = Field(min_length=1, max_length=5000)


class VerifierAssign(BaseModel):
    verifier_org_id: uuid.UUID


class VerificationIn(BaseModel):
    verified_g: Int64 = Field(ge=0, le=10**16, description="Verified reductions, grams CO2e (≤ claimed)")
    statement: Text = Field(
        min_length=1, max_length=20000, description="The verification statement (核证结论)"
    )
    documents: list[Text] = Field(
        default_factory=list, max_length=50, description="Links to the verification report"
    )


class ReviewOpen(BaseModel):
    size: Int32 = Field(default=3, ge=1, le=25)
    quorum: Int32 | None = Field(default=None, ge=1, le=25)
    seed: Text | None = Field(default=None, min_length=8, max_length=200)
    exclude_experts: list[uuid.UUID] = Field(default_factory=list, max_length=200)


class FilingIn(BaseModel):
    outcome: Literal["filed", "rejected"]
    reason: Text = Field(min_length=1, max_length=5000)


class ClawbackIn(BaseModel):
    reason: Text = Field(min_length=1, max_length=5000)


class ClawbackRead(BaseModel):
    project_id: uuid.UUID
    status: ProjectStatusLit
    revoked_tonnes: int
    revoked_serials: list[str]
    flagged_retired_tonnes: int
    holders: list[uuid.UUID]


# --- registry -------------------------------------------------------------------------------


class IssuanceRead(BaseModel):
    id: uuid.UUID
    project_id: uuid.UUID
    project_name: str
    owner_org_id: uuid.UUID
    owner_name: str
    vintage: int
    verified_g: int
    carried_in_g: int
    tonnes: int
    carried_out_g: int = Field(description="Grams below a tonne carried to the owner's next project")
    serials: str | None = Field(description=SERIAL_DOC)
    issued_at: datetime


class BlockRead(BaseModel):
    serial: str
    vintage: int
    start: int
    end: int
    tonnes: int
    project_id: uuid.UUID
    status: Literal["held", "retired", "revoked"]
    fraud_flagged: bool
    certificate_number: str | None = None


class AccountRead(BaseModel):
    org_id: uuid.UUID
    org_name: str
    opened_at: datetime | None
    held_tonnes: int
    retired_tonnes: int
    revoked_tonnes: int
    carry_forward_g: int = Field(description="Grams waiting for the owner's next issuance")
    blocks: list[BlockRead]


class TransferCreate(BaseModel):
    to_org_id: uuid.UUID
    tonnes: Int64 | None = Field(
        default=None, ge=1, le=MAX_TONNES, description="How many units; the oldest first unless `serials`"
    )
    serials: list[Text] | None = Field(
        default=None, min_length=1, max_length=100, description=f"Exactly which units: {SERIAL_DOC}"
    )
    exchange: Text | None = Field(default=None, max_length=100, description="Where the trade settled")
    trade_ref: Text | None = Field(default=None, max_length=100)
    memo: Text | None = Field(default=None, max_length=1000)


class TransferRead(BaseModel):
    id: uuid.UUID
    from_org_id: uuid.UUID
    to_org_id: uuid.UUID
    tonnes: int
    serials: list[str]
    exchange: str | None
    trade_ref: str | None
    memo: str | None
    created_at: datetime


class Beneficiary(BaseModel):
    kind: Literal["event", "organization", "person"]
    name: Text = Field(max_length=200, description="The event, organisation or person made carbon neutral")


class RetirementCreate(BaseModel):
    tonnes: Int64 | None = Field(default=None, ge=1, le=MAX_TONNES)
    serials: list[Text] | None = Field(default=None, min_length=1, max_length=100, description=SERIAL_DOC)
    beneficiary: Beneficiary | None = Field(default=None, description="Required")
    purpose: Text = Field(
        min_length=1, max_length=2000, examples=["Carbon neutrality of the 2026 Shenzhen marathon"]
    )


class RetirementRead(BaseModel):
    id: uuid.UUID
    certificate_number: str
    holder_org_id: uuid.UUID
    tonnes: int
    serials: list[str]
    beneficiary: Beneficiary
    purpose: str
    retired_at: datetime
    content_sha256: str
    certificate_url: str
    pdf_url: str
    fraud_flagged: bool = Field(description="Some units come from a project later found fraudulent")


class CertificatePublic(BaseModel):
    number: str
    content: dict[str, Any] = Field(description="What the certificate states")
    content_sha256: str = Field(
        description="SHA-256 of `content` as canonical JSON (sorted keys, separators , and :, UTF-8); printed on the PDF"
    )
    pdf_sha256: str = Field(description="SHA-256 of the PDF file served at `pdf_url`")
    pdf_url: str
    fraud_flagged: bool


# --- calendar and prices --------------------------------------------------------------------


class CalendarEntryIn(BaseModel):
    date: Day
    workday: bool = Field(description="true: a working day (e.g. an adjusted weekend); false: a day off")
    note: Text = Field(default="", max_length=200)


class CalendarDay(BaseModel):
    date: date
    workday: bool
    trading_day: bool
    source: DaySource
    note: str | None = None


class PriceIn(BaseModel):
    date: Day
    price_fen: Int64 | None = Field(default=None, le=10**12, description="Closing price in fen per tonne")
    price: Text | None = Field(default=None, max_length=20, description='Or in yuan, e.g. "78.45"')


class PriceRead(BaseModel):
    date: date
    price_fen: int
    price: str
    recorded_at: datetime


class ReferencePrice(BaseModel):
    on: date
    average_price: str = Field(description="Exact average, yuan per tonne")
    average_fen: int = Field(description="The average in fen, rounded down")
    dates: list[date] = Field(description="The 10 trading days used, most recent first")
    prices: list[PriceRead]


# --- trace and disclosure -------------------------------------------------------------------


class TraceVersion(BaseModel):
    methodology_version_id: uuid.UUID
    code: str
    version: int
    behaviour_type: str
    net_factor_g: str
    status: str
    records: int
    reduction_g: int


class TraceBatch(BaseModel):
    batch_id: uuid.UUID
    operator_id: uuid.UUID
    kid: str
    body_sha256: str
    body_hash_ok: bool = Field(description="SHA-256 of the stored body recomputed and equal to body_sha256")
    signature: str = Field(description="The detached JWS the operator sent (X-Content-Signature)")
    received_at: datetime
    records_in_project: int


class TraceRecord(BaseModel):
    id: int
    record_id: str
    batch_id: uuid.UUID
    behaviour_type: str
    started_at: datetime
    reduction_g: int
    methodology_version_id: uuid.UUID


class TraceRead(BaseModel):
    serial: str
    unit: int
    block: BlockRead
    holder_org_id: uuid.UUID
    issuance: IssuanceRead
    project: dict[str, Any]
    records_total: int
    reduction_g: int
    methodology_versions: list[TraceVersion]
    batches_total: int
    batches: list[TraceBatch]
    records: list[TraceRecord] = Field(
        description="The first records of the project (by id), up to records_limit"
    )


class PublicRetirement(BaseModel):
    certificate_number: str
    tonnes: int
    serials: list[str]
    beneficiary: Beneficiary
    purpose: str
    retired_at: datetime
    content_sha256: str
    certificate_url: str
    fraud_flagged: bool


class Totals(BaseModel):
    projects: int
    projects_in_publicity: int
    claimed_g: int
    verified_g: int
    issued_tonnes: int
    held_tonnes: int
    retired_tonnes: int
    revoked_tonnes: int
    certificates: int


# --- the evidence behind a project (its verifier, its owner, the authority) -------------------


class ProjectRecord(BaseModel):
    """One behaviour record counted in a project, pseudonymous: no user id, phone or external user id."""

    id: int = Field(
        description="The platform's record number (`behaviour_records.id`); pages and samples use it"
    )
    record_id: str = Field(description="The operator's own id of the record, as in its signed batch")
    operator_id: uuid.UUID = Field(description="The operator that submitted it")
    operator_name: str
    batch_id: uuid.UUID = Field(description="The signed batch it came in")
    person: str = Field(
        description="A pseudonym of the person, the same for all their records in this project and different "
        "in every other project: the first 16 hex digits of an HMAC-SHA256 under a platform secret of the "
        "project id and the person's account id"
    )
    behaviour_type: str
    started_at: datetime
    ended_at: datetime
    quantity: str = Field(description="The quantity submitted (decimal)")
    counted_quantity: str = Field(description="The quantity counted after the methodology's bounds (decimal)")
    unit: str
    reduction_g: int = Field(description="The reduction computed, grams CO2e (rounded down)")
    methodology_version_id: uuid.UUID
    methodology_code: str
    methodology_version: int
    status: Literal["accepted"] = Field(description="Only accepted records are counted in a project")
    cap_code: Literal["capped", "quantity_capped"] | None = Field(
        description="`capped`: a daily points cap cut its points; `quantity_capped`: the daily quantity bound "
        "cut the quantity counted"
    )
    scene_id: uuid.UUID | None


class SampledRecord(ProjectRecord):
    draw_key: str = Field(
        description='SHA-256 (hex) of "{seed}:{id}": the sample is the records whose key sorts first'
    )


class RecordSample(BaseModel):
    seed: str
    size: int
    population: int = Field(description="The project's records the sample is drawn from")
    method: str
    items: list[SampledRecord] = Field(description="In draw order (by draw_key)")


class BatchRead(BaseModel):
    """A signed batch a project's records came from, its signature verified again at the time of the request."""

    batch_id: uuid.UUID
    operator_id: uuid.UUID
    operator_name: str
    received_at: datetime
    kid: str = Field(description="The key id the batch was signed with (JWS header)")
    algorithm: str | None = Field(
        description="The registered key's algorithm; null when no such key is registered"
    )
    key_revoked_at: datetime | None = Field(
        description="When the operator revoked the key since (the signature is still checked with it)"
    )
    body_sha256: str = Field(description="SHA-256 (hex) of the signed body as received")
    body_hash_ok: bool = Field(description="The stored body still hashes to body_sha256")
    verified: bool = Field(
        description="The detached JWS verifies over the stored body with the registered key"
    )
    reason: Literal[
        "verified",
        "body_hash_mismatch",
        "unknown_key",
        "malformed_signature",
        "algorithm_not_allowed",
        "invalid_signature",
    ] = Field(description="Why verified is true or false")
    records: int = Field(description="Records the batch held")
    accepted: int
    duplicate: int
    rejected: int
    records_in_project: int = Field(description="Of its accepted records, those this project counts")
