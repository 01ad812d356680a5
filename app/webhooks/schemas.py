"""Request and response models of webhook subscriptions and events."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from app.core.types import Text

MAX_URL_LENGTH = 2000


class SubscriptionStatus(StrEnum):
    """``active``: events are delivered; ``paused`` by the organisation; ``disabled`` by the platform after
    sustained failure (``disabled_reason`` says why). Only active subscriptions get new events."""

    active = "active"
    paused = "paused"
    disabled = "disabled"


class SubscriptionCreate(BaseModel):
    url: Text = Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="Where events are posted: `https` (outside production also `http` on a loopback "
        "address); no user name or password in it",
        examples=["https://hooks.example.com/carbon-points"],
    )
    event_types: list[Text] = Field(
        min_length=1,
        max_length=50,
        description="Event types wanted, from `GET /v1/webhooks/event-types`, allowed for your kind of "
        "organisation",
        examples=[["entrustment.withdrawn", "points.expiring"]],
    )
    description: Text = Field(default="", max_length=200, description="A note for your own staff")


class SubscriptionRead(BaseModel):
    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str
    status: SubscriptionStatus
    failing_since: datetime | None = Field(description="Since when deliveries have failed, if they do")
    disabled_reason: str | None
    previous_secret_expires_at: datetime | None = Field(
        description="After a rotation: until when the previous secret also signs"
    )
    created_at: datetime
    updated_at: datetime


class SubscriptionWithSecret(SubscriptionRead):
    secret: str = Field(
        description="The signing secret (`whsec_…`). Shown this once: keep it; rotate to get a new one",
        examples=["whsec_3q2-7wE…"],
    )


class EventTypeRead(BaseModel):
    type: str = Field(examples=["order.redeemed"])
    description: str
    kinds: list[str] = Field(description="The kinds of organisation that receive it")


class EventSubject(BaseModel):
    type: str = Field(description="What the event is about", examples=["mall_order"])
    id: str = Field(description="Its id", examples=["0b9c6f0e-1d9e-4a55-9c1e-4d1b7c1f2a10"])


class EventRead(BaseModel):
    """An event as it is delivered and as `GET /v1/events` lists it."""

    id: uuid.UUID = Field(description="Unique per event: de-duplicate on it (delivery is at least once)")
    type: str
    created_at: datetime = Field(description="When its change committed (the transaction's time)")
    subject: EventSubject
    data: dict[str, Any] = Field(description="The event type's facts (see the catalogue in docs/webhooks.md)")
