"""Webhooks: organisations' subscriptions, the events outbox, deliveries and their attempts.

An event is written in the same transaction as the change that causes it, with one delivery row per
subscription that wanted it at that moment; the delivery worker posts pending deliveries and records
every attempt.
"""

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


def _ts(nullable: bool = False) -> sa.Column:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable)


class WebhookSubscription(SQLModel, table=True):
    """An organisation's endpoint and the event types it wants. The secret is kept sealed (encrypted
    under the platform's key) because signing needs it; it is shown once, at creation or rotation."""

    __tablename__ = "webhook_subscriptions"
    __table_args__ = (
        sa.CheckConstraint("status IN ('active', 'paused', 'disabled')", name="status_known"),
        sa.Index("ix_webhook_subscriptions_org", "org_id", "created_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    org_id: uuid.UUID = Field(foreign_key="organizations.id")
    url: str = Field(max_length=2000)
    event_types: list = Field(sa_column=sa.Column(JSONB, nullable=False))
    description: str = Field(default="", max_length=200)
    secret_sealed: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    previous_secret_sealed: bytes | None = Field(default=None, sa_column=sa.Column(sa.LargeBinary))
    """After a rotation, the old secret also signs until ``previous_secret_expires_at``."""
    previous_secret_expires_at: datetime | None = Field(default=None, sa_column=_ts(True))
    status: str = Field(default="active", max_length=10)
    failing_since: datetime | None = Field(default=None, sa_column=_ts(True))
    disabled_reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())


class WebhookEvent(SQLModel, table=True):
    """The outbox: one row per event for one recipient organisation, committed with its change."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        sa.Index("ix_webhook_events_org_created", "org_id", "created_at", "id"),
        sa.Index("ix_webhook_events_subject", "subject_type", "subject_id"),
    )

    id: uuid.UUID = Field(primary_key=True)
    """Unique per event: receivers de-duplicate on it."""
    org_id: uuid.UUID
    """The recipient; no foreign key (written at the rate of orders: migration 0022)."""
    type: str = Field(max_length=50)
    subject_type: str = Field(max_length=50)
    subject_id: str = Field(max_length=100)
    payload: dict = Field(sa_column=sa.Column(JSONB, nullable=False))
    created_at: datetime = Field(sa_column=_ts())


class WebhookDelivery(SQLModel, table=True):
    """One event to one subscription: pending until delivered, retried with backoff, or given up."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("event_id", "subscription_id"),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status_known"),
        sa.Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=sa.text("status = 'pending'"),
        ),
        sa.Index("ix_webhook_deliveries_subscription", "subscription_id", "created_at"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    event_id: uuid.UUID = Field(foreign_key="webhook_events.id")
    subscription_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), nullable=False
        )
    )
    status: str = Field(default="pending", max_length=10)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(sa_column=_ts())
    created_at: datetime = Field(sa_column=_ts())
    delivered_at: datetime | None = Field(default=None, sa_column=_ts(True))


class WebhookAttempt(SQLModel, table=True):
    """Every attempt to post a delivery: what the endpoint answered and how long it took."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (sa.Index("ix_webhook_attempts_delivery", "delivery_id", "at"),)

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    delivery_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger, sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False
        )
    )
    at: datetime = Field(sa_column=_ts())
    status_code: int | None = None
    latency_ms: int
    error: str | None = Field(default=None, max_length=200)
    response_excerpt: str = Field(default="", max_length=500)
