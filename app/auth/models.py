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
