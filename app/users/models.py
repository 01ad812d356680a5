import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class User(SQLModel, table=True):
    """A person. Never a raw phone number: ``identity_hash`` is HMAC-SHA256 of the E.164 number."""

    __tablename__ = "users"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    identity_hash: bytes | None = Field(
        default=None, sa_column=sa.Column(sa.LargeBinary(32), unique=True, nullable=True)
    )
    created_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    deleted_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))


class Entrustment(SQLModel, table=True):
    """A person entrusted an operator (SZ 6, 21) from ``accepted_at`` until ``withdrawn_at``."""

    __tablename__ = "entrustments"
    __table_args__ = (
        sa.Index(
            "uq_entrustments_operator_external_live",
            "operator_id",
            "external_user_id",
            unique=True,
            postgresql_where=sa.text("withdrawn_at IS NULL"),
        ),
        sa.Index(
            "uq_entrustments_operator_user_live",
            "operator_id",
            "user_id",
            unique=True,
            postgresql_where=sa.text("withdrawn_at IS NULL"),
        ),
        sa.Index("ix_entrustments_user", "user_id"),
        sa.Index("ix_entrustments_operator_external", "operator_id", "external_user_id", "accepted_at"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    operator_id: uuid.UUID = Field(foreign_key="organizations.id")
    user_id: uuid.UUID = Field(foreign_key="users.id")
    external_user_id: str = Field(max_length=100)
    agreement_version: str = Field(max_length=50)
    accepted_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    withdrawn_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    confirmed_by: str = Field(
        default="operator_asserted",
        sa_column=sa.Column(sa.String(20), nullable=False, server_default="operator_asserted"),
    )
    """How the entrustment was confirmed: ``operator_asserted`` (the operator's word) or ``person_otp``
    (the person, with a one-time code sent to their phone, on the platform's consent page)."""
    confirmed_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    scope: str | None = Field(default=None, sa_column=sa.Column(sa.String(200)))
    """What the person granted on the consent page (OAuth scopes); none for an operator-asserted one."""


class OneTimeCode(SQLModel, table=True):
    """A 6-digit code sent to a phone: only its HMAC is kept, and the phone only as its identity hash."""

    __tablename__ = "one_time_codes"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    identity_hash: bytes = Field(sa_column=sa.Column(sa.LargeBinary(32), nullable=False, index=True))
    code_hmac: bytes = Field(sa_column=sa.Column(sa.LargeBinary(32), nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    expires_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    attempts: int = Field(default=0, sa_column=sa.Column(sa.SmallInteger, nullable=False, server_default="0"))
    used_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))


class PersonSession(SQLModel, table=True):
    """A person signed in on the platform itself (``/me``, phone and one-time code): only the cookie
    token's SHA-256 is stored. The only way to export or delete the account; never an operator's token."""

    __tablename__ = "person_sessions"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    token_sha256: bytes = Field(sa_column=sa.Column(sa.LargeBinary(32), nullable=False, unique=True))
    user_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    created_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    last_seen_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    expires_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False, index=True))
    ip: str = Field(max_length=64)
    user_agent: str = Field(max_length=300)
