"""Response models of delivery inspection and replay (``delivery_router.py``)."""

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class DeliveryStatus(StrEnum):
    """``pending``: waiting for its next attempt (``next_attempt_at``); ``delivered``: an attempt got a 2xx;
    ``failed``: given up after 24 hours of failed attempts (redeliver it when the endpoint is fixed)."""

    pending = "pending"
    delivered = "delivered"
    failed = "failed"


class AttemptRead(BaseModel):
    at: datetime
    status_code: int | None = Field(description="The endpoint's HTTP status; null when none came back")
    latency_ms: int
    error: str | None = Field(
        description="Why it failed: `HTTP 503`, a time-out or connection error, or a refused address"
    )
    response_excerpt: str = Field(description="The start of the endpoint's answer (at most 500 characters)")


class DeliverySubject(BaseModel):
    type: str
    id: str


class DeliveryRead(BaseModel):
    id: int
    subscription_id: uuid.UUID
    event_id: uuid.UUID = Field(description="The event's id, the same in every attempt and redelivery")
    event_type: str
    subject: DeliverySubject
    event_created_at: datetime
    status: DeliveryStatus
    attempts: int = Field(description="Attempts made so far")
    next_attempt_at: datetime | None = Field(description="When the next attempt is due (pending only)")
    created_at: datetime
    delivered_at: datetime | None
    last_attempt: AttemptRead | None


class DeliveryDetail(DeliveryRead):
    attempt_history: list[AttemptRead] = Field(description="Every attempt, oldest first")


class RedeliveredFailed(BaseModel):
    redelivered: int = Field(description="How many failed deliveries are pending again")
    delivery_ids: list[int]
