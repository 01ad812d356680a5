"""Tables of the shared plumbing: idempotency records and the audit chain."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_records"

    scope: str = Field(primary_key=True, max_length=200)
    key: str = Field(primary_key=True, max_length=200)
    fingerprint: str = Field(max_length=64)
    status_code: int
    body: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    content_type: str = Field(max_length=100)
    created_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    expires_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False, index=True))


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_entries"
    __table_args__ = (
        # the console's audit viewer and a decision's record on its page search by these
        sa.Index("ix_audit_entries_subject", "subject_type", "subject_id", "at"),
        sa.Index("ix_audit_entries_actor", "actor", "at"),
        sa.Index("ix_audit_entries_at", "at"),
    )

    chain: int = Field(sa_column=sa.Column(sa.SmallInteger, primary_key=True, autoincrement=False))
    seq: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True, autoincrement=False))
    at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    actor: str = Field(max_length=200)
    action: str = Field(max_length=100, index=True)
    subject_type: str = Field(max_length=50)
    subject_id: str = Field(max_length=100)
    data: dict = Field(sa_column=sa.Column(JSONB, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditChainHead(SQLModel, table=True):
    """The newest entry of each audit chain: locked to append, compared to verify."""

    __tablename__ = "audit_chain_heads"

    chain: int = Field(sa_column=sa.Column(sa.SmallInteger, primary_key=True, autoincrement=False))
    seq: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    hash: str = Field(max_length=64)


class SmsOutboxMessage(SQLModel, table=True):
    """A text message the development SMS backend kept instead of sending (``CARBON_SMS_BACKEND=outbox``).

    Local and test environments only; the number is kept masked (``+86138****8000``), never whole.
    """

    __tablename__ = "sms_outbox"

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    recipient: str = Field(max_length=40, index=True)
    body: str = Field(max_length=500)
    created_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))


class PlatformClock(SQLModel, table=True):
    """The sandbox clock outside production: how far the platform's clock is moved forward, one row,
    so every process (server workers, scheduler, CLI) agrees. Never used in production."""

    __tablename__ = "platform_clock"
    __table_args__ = (sa.CheckConstraint("id = 1", name="one_row"),)

    id: int = Field(default=1, sa_column=sa.Column(sa.SmallInteger, primary_key=True))
    offset_seconds: int = Field(
        default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0")
    )
    updated_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    updated_by: str = Field(max_length=200)
