import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


class PlatformSigningKey(SQLModel, table=True):
    """Keys that sign the platform's own tokens. The newest unretired one signs; all verify."""

    __tablename__ = "platform_signing_keys"

    kid: str = Field(primary_key=True, max_length=100)
    algorithm: str = Field(max_length=10)
    private_pem: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    public_jwk: dict = Field(sa_column=sa.Column(JSONB, nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    retired_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))


class UsedAssertion(SQLModel, table=True):
    """``jti`` of client assertions already used: the durable half of replay protection."""

    __tablename__ = "used_client_assertions"

    client_id: str = Field(primary_key=True, max_length=100)
    jti: str = Field(primary_key=True, max_length=200)
    expires_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False, index=True))


def _ts(nullable: bool = False) -> sa.Column:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable)


class AuthorizationRequest(SQLModel, table=True):
    """A person's pass through ``/oauth/authorize``: the client's request, then the phone, code and consent.

    ``id`` is random (it names the request in the pages' URLs); the request belongs to the browser
    whose CSRF cookie hashes to ``browser_sha256``.
    """

    __tablename__ = "oauth_authorization_requests"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    browser_sha256: bytes = Field(sa_column=sa.Column(sa.LargeBinary(32), nullable=False))
    client_id: uuid.UUID = Field(foreign_key="organizations.id")
    redirect_uri: str = Field(max_length=2000)
    scope: str = Field(max_length=200)
    state: str = Field(max_length=500)
    code_challenge: str = Field(max_length=128)
    identity_hash: bytes | None = Field(default=None, sa_column=sa.Column(sa.LargeBinary(32)))
    one_time_code_id: uuid.UUID | None = None
    verified_at: datetime | None = Field(default=None, sa_column=_ts(True))
    decided_at: datetime | None = Field(default=None, sa_column=_ts(True))
    created_at: datetime = Field(sa_column=_ts())
    expires_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False, index=True))


class AuthorizationCode(SQLModel, table=True):
    """A single-use authorization code (its SHA-256), bound to client, redirect URI, PKCE challenge, person, scopes."""

    __tablename__ = "oauth_authorization_codes"

    code_sha256: bytes = Field(sa_column=sa.Column(sa.LargeBinary(32), primary_key=True))
    client_id: uuid.UUID = Field(foreign_key="organizations.id")
    redirect_uri: str = Field(max_length=2000)
    code_challenge: str = Field(max_length=128)
    identity_hash: bytes = Field(sa_column=sa.Column(sa.LargeBinary(32), nullable=False))
    scope: str = Field(max_length=200)
    agreement_version: str = Field(max_length=50)
    consented_at: datetime = Field(sa_column=_ts())
    expires_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False, index=True))
    used_at: datetime | None = Field(default=None, sa_column=_ts(True))
    family_id: uuid.UUID | None = None
    """The refresh-token family its exchange started: revoked if the code comes a second time."""


class RefreshToken(SQLModel, table=True):
    """A refresh token (its SHA-256) of one family, bound to (person, operator) through their entrustment."""

    __tablename__ = "oauth_refresh_tokens"

    token_sha256: bytes = Field(sa_column=sa.Column(sa.LargeBinary(32), primary_key=True))
    family_id: uuid.UUID = Field(index=True)
    client_id: uuid.UUID = Field(foreign_key="organizations.id")
    user_id: uuid.UUID = Field(foreign_key="users.id")
    entrustment_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("entrustments.id"), nullable=False)
    )
    scope: str = Field(max_length=200)
    created_at: datetime = Field(sa_column=_ts())
    expires_at: datetime = Field(sa_column=_ts())
    rotated_at: datetime | None = Field(default=None, sa_column=_ts(True))
    revoked_at: datetime | None = Field(default=None, sa_column=_ts(True))
