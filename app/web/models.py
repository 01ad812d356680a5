"""The table of the web plumbing: browser sessions of staff accounts."""

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class WebSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored.

    A session ends when its row is deleted: at sign-out, after ``web_session_idle_minutes`` without a
    request, ``web_session_max_hours`` after sign-in, or at the first request after its account is
    disabled or its organisation is no longer approved.
    """

    __tablename__ = "web_sessions"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    token_sha256: bytes = Field(sa_column=sa.Column(sa.LargeBinary(32), nullable=False, unique=True))
    staff_user_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("staff_users.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    created_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    last_seen_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    expires_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False, index=True))
    ip: str = Field(max_length=64)
    user_agent: str = Field(max_length=300)
