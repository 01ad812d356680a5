"""The points ledger and the behaviour records behind it.

Every per-person table carries ``user_id`` and is keyed by it first, so a later move to sharded
PostgreSQL (Citus, distribution column ``user_id``) needs no redesign: see ``docs/scaling.md``.
The hot tables carry no foreign keys (each would cost an index probe per row on ingestion):
their integrity comes from the code that writes them and is checked by ``ledger verify``.
"""

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


class RecordStatus(StrEnum):
    """What became of a submitted behaviour record."""

    accepted = "accepted"
    duplicate = "duplicate"  # its record_id was accepted before: the first outcome is repeated
    rejected = "rejected"


class RejectCode(StrEnum):
    """Why a record was rejected (in the order the checks run)."""

    invalid_record = "invalid_record"
    invalid_time = "invalid_time"
    future_time = "future_time"
    too_old = "too_old"
    unknown_type = "unknown_type"
    not_entrusted = "not_entrusted"
    out_of_effective_period = "out_of_effective_period"
    unit_mismatch = "unit_mismatch"
    implausible_quantity = "implausible_quantity"
    daily_limit_reached = "daily_limit_reached"
    scene_required = "scene_required"
    scene_not_approved = "scene_not_approved"
    evidence_already_claimed = "evidence_already_claimed"
    overlapping_behaviour = "overlapping_behaviour"


class CapCode(StrEnum):
    """Why an accepted record earned less than its quantity would (``behaviour_records.code``)."""

    capped = "capped"  # a daily points cap cut the points
    quantity_capped = "quantity_capped"  # the daily quantity bound cut the quantity counted


class EntryKind(StrEnum):
    """The kinds of ledger entries: ``earn`` and ``refund`` add points, the others take them."""

    earn = "earn"
    redeem = "redeem"
    refund = "refund"
    expire = "expire"
    clawback = "clawback"


def _ts(nullable: bool = False) -> sa.Column:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable)


def _big(nullable: bool = False, **kw) -> sa.Column:
    return sa.Column(sa.BigInteger, nullable=nullable, **kw)


class PointAccount(SQLModel, table=True):
    """A person's carbon account: the balance is derived (Σ entries = Σ lot remainders).

    Its only index is the primary key and the table keeps half of each page free (``fillfactor`` 50, set by
    its migration), so the rewrites of every credit, order and expiry are heap-only updates.
    """

    __tablename__ = "point_accounts"
    __table_args__ = (sa.CheckConstraint("balance >= 0", name="balance_not_negative"),)

    user_id: uuid.UUID = Field(foreign_key="users.id", primary_key=True)
    balance: int = Field(default=0, sa_column=_big(server_default="0"))
    lifetime_points: int = Field(default=0, sa_column=_big(server_default="0"))
    lifetime_reduction_g: int = Field(default=0, sa_column=_big(server_default="0"))


class PointLot(SQLModel, table=True):
    """Points credited on one day with one expiry: one lot per account per expiry moment.

    No index covers ``remaining`` and the table keeps half of each page free (``fillfactor`` 50, set by
    its migration), so emptying or refilling a lot writes no index entry (a heap-only update).
    """

    __tablename__ = "point_lots"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "expires_at"),
        sa.CheckConstraint("remaining >= 0", name="remaining_not_negative"),
        sa.CheckConstraint("remaining <= credited", name="remaining_within_credited"),
        sa.Index("ix_point_lots_expires_at", "expires_at"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    user_id: uuid.UUID
    expires_at: datetime = Field(sa_column=_ts())
    credited: int = Field(sa_column=_big(), description="Points ever put in this lot (earn + refunds)")
    remaining: int = Field(sa_column=_big())


class PointExpiryMark(SQLModel, table=True):
    """How far the expiry job has emptied every lot (one row): each lot due at or before ``expired_through``
    is empty. Written when a run finds nobody left; read only where the clock never goes back."""

    __tablename__ = "point_expiry_mark"
    __table_args__ = (sa.CheckConstraint("id = 1", name="one_row"),)

    id: int = Field(default=1, sa_column=sa.Column(sa.SmallInteger, primary_key=True, autoincrement=False))
    expired_through: datetime = Field(sa_column=_ts())
    marked_at: datetime = Field(sa_column=_ts())


class LedgerEntry(SQLModel, table=True):
    """Append-only. ``amount`` is signed; ``balance_after`` chains each account's entries."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        sa.Index("ix_ledger_entries_user_id_id", "user_id", "id"),
        # a range of days' entries (the charts, the dashboards): appended in time order, a block range index
        sa.Index("ix_ledger_entries_created_brin", "created_at", postgresql_using="brin"),
        sa.CheckConstraint(
            "(kind IN ('earn', 'refund') AND amount > 0) OR (kind IN ('redeem', 'expire', 'clawback') AND amount < 0)",
            name="sign_matches_kind",
        ),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    user_id: uuid.UUID
    kind: str = Field(max_length=10)
    amount: int = Field(sa_column=_big())
    balance_after: int = Field(sa_column=_big())
    ref_type: str = Field(max_length=30)
    ref_id: str = Field(max_length=100)
    memo: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_column=_ts())


class LotAllocation(SQLModel, table=True):
    """Which lots an entry put points into or took them from (``amount`` > 0 always)."""

    __tablename__ = "lot_allocations"
    __table_args__ = (sa.CheckConstraint("amount > 0", name="amount_positive"),)

    entry_id: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True))
    lot_id: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True))
    user_id: uuid.UUID
    amount: int = Field(sa_column=_big())


class BehaviourBatch(SQLModel, table=True):
    """A signed submission, kept byte for byte so every credited gram traces to a signature."""

    __tablename__ = "behaviour_batches"
    __table_args__ = (
        sa.CheckConstraint("body_encoding IN ('identity', 'zlib')", name="body_encoding_known"),
    )

    id: uuid.UUID = Field(primary_key=True)
    operator_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    kid: str = Field(max_length=100)
    signature: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    body: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    """The body as received, compressed as ``body_encoding`` says (:mod:`app.points.bodies`)."""
    body_encoding: str = Field(
        default="identity",
        sa_column=sa.Column(sa.String(10), nullable=False, server_default="identity"),
    )
    """``zlib`` (every batch since migration 0020) or ``identity`` (the body as received)."""
    body_sha256: str = Field(max_length=64)
    received_at: datetime = Field(sa_column=_ts())
    records: int
    accepted: int
    duplicate: int
    rejected: int
    rejections: list = Field(
        default_factory=list,
        sa_column=sa.Column(JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    )
    """``[{index, record_id, code, message}]``: each rejected record's outcome as answered at receipt."""


class BehaviourRecord(SQLModel, table=True):
    """An accepted behaviour with the reduction and points computed for it, and by what."""

    __tablename__ = "behaviour_records"
    __table_args__ = (
        sa.UniqueConstraint("operator_id", "record_id"),
        sa.UniqueConstraint("evidence_source", "evidence_ref"),
        sa.Index("ix_behaviour_records_user_start", "user_id", "started_at", "id"),
        # Records arrive roughly in time order: a BRIN index (a few pages, nearly free to maintain)
        # lets a certified-reduction project read one period without scanning the whole table.
        sa.Index("ix_behaviour_records_started_brin", "started_at", postgresql_using="brin"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    operator_id: uuid.UUID
    record_id: str = Field(max_length=100)
    batch_id: uuid.UUID
    user_id: uuid.UUID
    behaviour_type: str = Field(max_length=50)
    started_at: datetime = Field(sa_column=_ts())
    ended_at: datetime = Field(sa_column=_ts())
    quantity: Decimal = Field(sa_column=sa.Column(sa.Numeric(14, 4), nullable=False))
    counted_quantity: Decimal = Field(sa_column=sa.Column(sa.Numeric(14, 4), nullable=False))
    unit: str = Field(max_length=20)
    scene_id: uuid.UUID | None = None
    evidence_source: str = Field(max_length=100)
    evidence_ref: str = Field(max_length=200)
    methodology_version_id: uuid.UUID
    rule_version_id: uuid.UUID
    reduction_g: int = Field(sa_column=_big())
    points: int = Field(sa_column=_big())
    code: str | None = Field(default=None, max_length=30)
    created_at: datetime = Field(sa_column=_ts())
