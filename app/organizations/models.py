import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

# The columns' values are defined with the schemas, where other domains may read them.
from app.organizations.schemas import OrgKind, OrgStatus, StaffRole  # noqa: F401


def _ts(nullable: bool = False, **kw) -> sa.Column:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable, **kw)


class Organization(SQLModel, table=True):
    __tablename__ = "organizations"
    __table_args__ = (
        sa.Index(
            "uq_organizations_kind_credit_code_live",
            "kind",
            "credit_code",
            unique=True,
            postgresql_where=sa.text("status <> 'rejected'"),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    kind: str = Field(max_length=20)
    name: str = Field(max_length=200)
    credit_code: str = Field(max_length=18)
    status: str = Field(default=OrgStatus.pending, max_length=20, index=True)
    reason: str | None = Field(default=None, max_length=1000)
    created_at: datetime = Field(sa_column=_ts())
    decided_at: datetime | None = Field(default=None, sa_column=_ts(True))
    trusted_enrolment: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.false())
    )
    """An operator the authority trusts to enrol people on its own word (``POST /v1/operator/users``), for
    example the city's real-name government app. Off by default: people confirm their own entrustment."""
    allowed_scopes: str = Field(
        default="behaviours:submit account:read",
        sa_column=sa.Column(sa.String(200), nullable=False, server_default="behaviours:submit account:read"),
    )
    """What an operator may ask a person for (space-separated OAuth scopes); the authority grants ``mall``."""


class StaffUser(SQLModel, table=True):
    """A login: authority staff, an organisation's staff, or an expert."""

    __tablename__ = "staff_users"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    username: str = Field(max_length=100, sa_column_kwargs={"unique": True})
    password_hash: str = Field(max_length=200)
    role: str = Field(max_length=20)  # authority | expert | org
    org_id: uuid.UUID | None = Field(default=None, foreign_key="organizations.id", index=True)
    is_org_admin: bool = False
    created_at: datetime = Field(sa_column=_ts())
    disabled_at: datetime | None = Field(default=None, sa_column=_ts(True))


class OperatorKey(SQLModel, table=True):
    """A public key an organisation registered to sign client assertions and batches."""

    __tablename__ = "operator_keys"

    org_id: uuid.UUID = Field(foreign_key="organizations.id", primary_key=True)
    kid: str = Field(max_length=100, primary_key=True)
    algorithm: str = Field(max_length=10)
    jwk: dict = Field(sa_column=sa.Column(JSONB, nullable=False))
    created_at: datetime = Field(sa_column=_ts())
    revoked_at: datetime | None = Field(default=None, sa_column=_ts(True))
    last_used_at: datetime | None = Field(default=None, sa_column=_ts(True))
    """When a client assertion or a batch signature last verified with this key."""


class RedirectUri(SQLModel, table=True):
    """An exact redirect URI an operator registered for the authorization code flow (RFC 6749 §3.1.2)."""

    __tablename__ = "operator_redirect_uris"
    __table_args__ = (sa.UniqueConstraint("org_id", "uri"),)

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    org_id: uuid.UUID = Field(foreign_key="organizations.id")
    uri: str = Field(max_length=2000)
    created_at: datetime = Field(sa_column=_ts())
