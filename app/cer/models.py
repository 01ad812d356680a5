"""The CER registry (SZ 14–19, JX 12–21 and 26, HB 11–19): projects, units in serial blocks, certificates.

- ``cer_project_records.record_id`` is the primary key: a behaviour record is in at most one
  project, ever, whatever the code does.
- ``cer_blocks`` holds every issued unit exactly once: an exclusion constraint (written in the
  migration, ``EXCLUDE USING gist (int8range(serial_start, serial_end, '[]') WITH &&)``) keeps any
  two blocks from sharing a serial, whatever their holder or status.
- ``cer_counters`` holds the next serial and the next certificate number (gapless, under lock).
"""

import uuid
from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel


class ProjectStatus(StrEnum):
    publicity = "publicity"
    submitted = "submitted"
    verification = "verification"
    verified = "verified"
    under_review = "under_review"
    reviewed = "reviewed"
    filed = "filed"
    issued = "issued"
    rejected = "rejected"
    frozen = "frozen"


class BlockStatus(StrEnum):
    held = "held"
    retired = "retired"
    revoked = "revoked"


class Publicity(StrEnum):
    """Whether today is within a project's publicity."""

    in_progress = "in_progress"
    ended = "ended"


class DaySource(StrEnum):
    """Who says whether a day is a working day (:func:`app.cer.calendar.source`)."""

    table = "table"
    chinese_calendar = "chinese_calendar"
    weekend_rule = "weekend_rule"


def _ts(nullable: bool = False) -> sa.Column:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable)


def _big(nullable: bool = False, **kw) -> sa.Column:
    return sa.Column(sa.BigInteger, nullable=nullable, **kw)


class CerProject(SQLModel, table=True):
    __tablename__ = "cer_projects"
    __table_args__ = (
        sa.Index("ix_cer_projects_owner_period", "owner_org_id", "period_start"),
        sa.CheckConstraint("period_start <= period_end", name="period_order"),
        sa.CheckConstraint(
            "verified_g IS NULL OR verified_g BETWEEN 0 AND claimed_g", name="verified_within_claimed"
        ),
        sa.CheckConstraint(
            "verifier_org_id IS NULL OR (verifier_org_id <> owner_org_id"
            " AND verifier_org_id IS DISTINCT FROM compiled_by_org_id)",
            name="no_self_verification",
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    owner_org_id: uuid.UUID = Field(foreign_key="organizations.id")
    name: str = Field(max_length=200)
    description: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))
    benefit_sharing: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))
    methodology_codes: list[str] = Field(sa_column=sa.Column(ARRAY(sa.Text), nullable=False))
    period_start: date
    period_end: date
    compiled_by_org_id: uuid.UUID | None = Field(default=None, foreign_key="organizations.id")
    status: str = Field(default=ProjectStatus.publicity, max_length=20, index=True)
    record_count: int = Field(sa_column=_big())
    claimed_g: int = Field(sa_column=_big())
    report: dict = Field(sa_column=sa.Column(JSONB, nullable=False))
    report_sha256: str = Field(max_length=64)
    exclusions: dict = Field(sa_column=sa.Column(JSONB, nullable=False))
    publicity_starts_on: date
    publicity_ends_on: date
    submitted_at: datetime | None = Field(default=None, sa_column=_ts(True))
    verifier_org_id: uuid.UUID | None = Field(default=None, foreign_key="organizations.id")
    verifier_assigned_at: datetime | None = Field(default=None, sa_column=_ts(True))
    verified_g: int | None = Field(default=None, sa_column=_big(True))
    verification_statement: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    verification_documents: list[str] = Field(
        default_factory=list, sa_column=sa.Column(ARRAY(sa.Text), nullable=False, server_default="{}")
    )
    verified_at: datetime | None = Field(default=None, sa_column=_ts(True))
    review_panel_id: uuid.UUID | None = Field(default=None, foreign_key="review_panels.id")
    decision_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    """The authority's reason when filing or rejecting, or the clawback's."""
    filed_at: datetime | None = Field(default=None, sa_column=_ts(True))
    issued_at: datetime | None = Field(default=None, sa_column=_ts(True))
    frozen_at: datetime | None = Field(default=None, sa_column=_ts(True))
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())


class CerProjectRecord(SQLModel, table=True):
    """Which project a behaviour record went into: once, ever (the primary key says so)."""

    __tablename__ = "cer_project_records"

    record_id: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True, autoincrement=False))
    project_id: uuid.UUID = Field(foreign_key="cer_projects.id", index=True)


class CerObjection(SQLModel, table=True):
    """An objection filed during publicity; the owner must answer each before submission."""

    __tablename__ = "cer_objections"
    __table_args__ = (
        sa.Index(
            "ix_cer_objections_unanswered", "project_id", postgresql_where=sa.text("answered_at IS NULL")
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    project_id: uuid.UUID = Field(foreign_key="cer_projects.id", index=True)
    name: str | None = Field(default=None, max_length=200)
    contact: str | None = Field(default=None, max_length=200)
    text: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    filed_at: datetime = Field(sa_column=_ts())
    answer: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    answered_by: str | None = Field(default=None, max_length=200)
    answered_at: datetime | None = Field(default=None, sa_column=_ts(True))


class CerCarryForward(SQLModel, table=True):
    """The grams below a whole tonne an owner carries to its next issuance."""

    __tablename__ = "cer_carry_forward"
    __table_args__ = (sa.CheckConstraint("grams >= 0 AND grams < 1000000", name="below_one_tonne"),)

    owner_org_id: uuid.UUID = Field(foreign_key="organizations.id", primary_key=True)
    grams: int = Field(default=0, sa_column=_big(server_default="0"))
    updated_at: datetime = Field(sa_column=_ts())


class CerCounter(SQLModel, table=True):
    """``serial``: the next unit serial; ``certificate``: the next certificate number."""

    __tablename__ = "cer_counters"

    name: str = Field(primary_key=True, max_length=20)
    next_value: int = Field(sa_column=_big())


class CerAccount(SQLModel, table=True):
    """An organisation's registry account (project owners, buyers)."""

    __tablename__ = "cer_accounts"

    org_id: uuid.UUID = Field(foreign_key="organizations.id", primary_key=True)
    opened_at: datetime = Field(sa_column=_ts())


class CerIssuance(SQLModel, table=True):
    __tablename__ = "cer_issuances"
    __table_args__ = (
        sa.CheckConstraint("tonnes >= 0", name="tonnes_not_negative"),
        sa.CheckConstraint(
            "(tonnes = 0 AND serial_start IS NULL AND serial_end IS NULL)"
            " OR (tonnes > 0 AND serial_end - serial_start + 1 = tonnes)",
            name="serials_match_tonnes",
        ),
        sa.CheckConstraint(
            "verified_g + carried_in_g = tonnes * 1000000 + carried_out_g", name="grams_conserved"
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    project_id: uuid.UUID = Field(foreign_key="cer_projects.id", sa_column_kwargs={"unique": True})
    owner_org_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    vintage: int
    verified_g: int = Field(sa_column=_big())
    carried_in_g: int = Field(sa_column=_big())
    tonnes: int = Field(sa_column=_big())
    carried_out_g: int = Field(sa_column=_big())
    serial_start: int | None = Field(default=None, sa_column=_big(True))
    serial_end: int | None = Field(default=None, sa_column=_big(True))
    issued_by: str = Field(max_length=200)
    issued_at: datetime = Field(sa_column=_ts())


class CerRetirement(SQLModel, table=True):
    """A cancellation (注销) for carbon neutrality and its certificate."""

    __tablename__ = "cer_retirements"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    certificate_number: str = Field(max_length=40, sa_column_kwargs={"unique": True})
    holder_org_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    tonnes: int = Field(sa_column=_big())
    beneficiary_kind: str = Field(max_length=20)
    beneficiary_name: str = Field(max_length=200)
    purpose: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    content: dict = Field(sa_column=sa.Column(JSONB, nullable=False))
    """What the certificate states; ``content_sha256`` is over its canonical JSON."""
    content_sha256: str = Field(max_length=64)
    pdf: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    pdf_sha256: str = Field(max_length=64)
    retired_by: str = Field(max_length=200)
    retired_at: datetime = Field(sa_column=_ts())


class CerBlock(SQLModel, table=True):
    """Consecutive units with one holder and one status; no two blocks share a serial."""

    __tablename__ = "cer_blocks"
    __table_args__ = (
        sa.CheckConstraint("serial_start >= 1 AND serial_start <= serial_end", name="range_order"),
        sa.CheckConstraint("status IN ('held', 'retired', 'revoked')", name="status_known"),
        sa.CheckConstraint(
            "(status = 'retired') = (retirement_id IS NOT NULL)", name="retired_has_retirement"
        ),
        sa.Index("ix_cer_blocks_holder_status", "holder_org_id", "status", "serial_start"),
        sa.Index("ix_cer_blocks_project", "project_id", "serial_start"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    project_id: uuid.UUID = Field(foreign_key="cer_projects.id")
    issuance_id: uuid.UUID = Field(foreign_key="cer_issuances.id")
    vintage: int
    serial_start: int = Field(sa_column=_big())
    serial_end: int = Field(sa_column=_big())
    holder_org_id: uuid.UUID = Field(foreign_key="cer_accounts.org_id")
    status: str = Field(default=BlockStatus.held, max_length=10)
    retirement_id: uuid.UUID | None = Field(default=None, foreign_key="cer_retirements.id", index=True)
    fraud_flagged: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default="false")
    )
    updated_at: datetime = Field(sa_column=_ts())


class CerTransfer(SQLModel, table=True):
    """A registered transfer between accounts (a trade settled on an exchange, or a gift)."""

    __tablename__ = "cer_transfers"
    __table_args__ = (
        sa.Index("ix_cer_transfers_to", "to_org_id", "created_at"),
        sa.Index("ix_cer_transfers_from", "from_org_id", "created_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    from_org_id: uuid.UUID = Field(foreign_key="organizations.id")
    to_org_id: uuid.UUID = Field(foreign_key="organizations.id")
    tonnes: int = Field(sa_column=_big())
    ranges: list = Field(sa_column=sa.Column(JSONB, nullable=False))
    exchange: str | None = Field(default=None, max_length=100)
    trade_ref: str | None = Field(default=None, max_length=100)
    memo: str | None = Field(default=None, max_length=1000)
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_column=_ts())


class CerCalendarDay(SQLModel, table=True):
    """The authority's calendar: a day declared a working day or a day off (beyond the package's years)."""

    __tablename__ = "cer_calendar_days"

    day: date = Field(primary_key=True)
    workday: bool
    note: str = Field(default="", max_length=200)
    updated_by: str = Field(max_length=200)
    updated_at: datetime = Field(sa_column=_ts())


class CerPrice(SQLModel, table=True):
    """A closing price of the national carbon market (HB 17), in fen per tonne."""

    __tablename__ = "cer_prices"
    __table_args__ = (sa.CheckConstraint("price_fen > 0", name="price_positive"),)

    day: date = Field(primary_key=True)
    price_fen: int = Field(sa_column=_big())
    recorded_by: str = Field(max_length=200)
    recorded_at: datetime = Field(sa_column=_ts())
