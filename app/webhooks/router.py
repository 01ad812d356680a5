import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from app.auth.dependencies import Session, public, require
from app.auth.principal import Principal
from app.core.errors import responses
from app.core.pagination import Cursor, InvalidCursor, Limit, Page
from app.core.routing import CommitRoute
from app.core.types import Moment, Text
from app.webhooks import service
from app.webhooks.exceptions import (
    EventNotFound,
    EventTypeNotAllowed,
    InvalidSubscriptionState,
    InvalidWebhookUrl,
    SubscriptionNotFound,
    TooManySubscriptions,
    UnknownEventType,
)
from app.webhooks.schemas import (
    EventRead,
    EventTypeRead,
    SubscriptionCreate,
    SubscriptionRead,
    SubscriptionWithSecret,
)

router = APIRouter(prefix="/v1/webhooks", route_class=CommitRoute, tags=["webhooks"])
events_router = APIRouter(prefix="/v1/events", route_class=CommitRoute, tags=["webhooks"])

_KINDS = sorted(service.ORG_KINDS)
OrgCaller = Annotated[Principal, Depends(require(*_KINDS))]
OrgAdmin = Annotated[Principal, Depends(require(*_KINDS, admin=True))]


@router.get(
    "/event-types",
    response_model=list[EventTypeRead],
    dependencies=[public(300)],
    summary="The event catalogue: every type, what it tells and which organisations receive it",
)
async def event_types():
    return service.event_types()


@router.post(
    "/subscriptions",
    status_code=status.HTTP_201_CREATED,
    response_model=SubscriptionWithSecret,
    responses=responses(InvalidWebhookUrl, UnknownEventType, EventTypeNotAllowed, TooManySubscriptions),
    summary="Subscribe an endpoint to event types (the organisation's admin)",
    description="The answer carries the signing secret (`whsec_…`) this once: keep it to verify the "
    "`Carbon-Signature` of every delivery. The URL is `https` (outside production also `http` to a loopback "
    "host), with no user name or password, at most 2,000 characters; the event types come from "
    "`GET /v1/webhooks/event-types` and must be ones your kind of organisation receives. At most 10 "
    "subscriptions per organisation. Audited.",
)
async def create_subscription(data: SubscriptionCreate, session: Session, principal: OrgAdmin):
    return await service.create_subscription(session, principal, data)


@router.get(
    "/subscriptions",
    response_model=list[SubscriptionRead],
    summary="The organisation's subscriptions, oldest first (its staff)",
    description="Secrets are never shown again; `status` is `active`, `paused` (by you) or `disabled` (by the "
    "platform after sustained failure, with `disabled_reason`).",
)
async def list_subscriptions(session: Session, principal: OrgCaller):
    return await service.list_subscriptions(session, principal)


@router.get(
    "/subscriptions/{subscription_id}",
    response_model=SubscriptionRead,
    responses=responses(SubscriptionNotFound),
    summary="One of the organisation's subscriptions (its staff)",
)
async def get_subscription(subscription_id: uuid.UUID, session: Session, principal: OrgCaller):
    return await service.get_subscription(session, principal, subscription_id)


@router.post(
    "/subscriptions/{subscription_id}/pause",
    response_model=SubscriptionRead,
    responses=responses(SubscriptionNotFound, InvalidSubscriptionState),
    summary="Pause deliveries (the organisation's admin)",
    description="Events written while it is paused are not delivered to it; `GET /v1/events` lists them. "
    "Pausing a paused subscription changes nothing; a disabled one is resumed, not paused (409). Audited.",
)
async def pause(subscription_id: uuid.UUID, session: Session, principal: OrgAdmin):
    return await service.pause(session, principal, subscription_id)


@router.post(
    "/subscriptions/{subscription_id}/resume",
    response_model=SubscriptionRead,
    responses=responses(SubscriptionNotFound),
    summary="Resume a paused or disabled subscription (the organisation's admin)",
    description="New events are delivered again from now on. Audited.",
)
async def resume(subscription_id: uuid.UUID, session: Session, principal: OrgAdmin):
    return await service.resume(session, principal, subscription_id)


@router.post(
    "/subscriptions/{subscription_id}/rotate-secret",
    response_model=SubscriptionWithSecret,
    responses=responses(SubscriptionNotFound),
    summary="Get a new signing secret (the organisation's admin)",
    description="The new secret is shown this once. For 24 hours deliveries carry a signature with each "
    "secret, so a receiver can switch without losing one. Audited.",
)
async def rotate_secret(subscription_id: uuid.UUID, session: Session, principal: OrgAdmin):
    return await service.rotate_secret(session, principal, subscription_id)


@router.delete(
    "/subscriptions/{subscription_id}",
    response_model=SubscriptionRead,
    responses=responses(SubscriptionNotFound),
    summary="Delete a subscription (the organisation's admin)",
    description="Its pending deliveries go with it; the events stay listed by `GET /v1/events`. Audited.",
)
async def delete_subscription(subscription_id: uuid.UUID, session: Session, principal: OrgAdmin):
    return await service.delete(session, principal, subscription_id)


@events_router.get(
    "",
    response_model=Page[EventRead],
    responses=responses(EventNotFound, UnknownEventType, InvalidCursor),
    summary="The organisation's events: newest first, or oldest first after one you have",
    description="Every event written for your organisation, whether or not a subscription wanted it, in "
    "the shape deliveries carry. A receiver that was down passes `after=<the last event id it handled>` and "
    "follows `next_cursor` to get the rest oldest first; without `after` the newest come first. Filter by "
    "`type` (repeatable) and by creation time (`since` inclusive, `until` exclusive). Operators' API "
    "clients may call it with their client token.",
)
async def list_events(
    session: Session,
    principal: OrgCaller,
    limit: Limit = 50,
    cursor: Cursor = None,
    type: Annotated[  # noqa: A002  # the query parameter's name
        list[Text] | None, Query(max_length=20, description="Only events of these types")
    ] = None,
    since: Annotated[Moment | None, Query(description="Created at or after this moment")] = None,
    until: Annotated[Moment | None, Query(description="Created before this moment")] = None,
    after: Annotated[
        uuid.UUID | None, Query(description="An event id of yours: the events after it, oldest first")
    ] = None,
):
    return await service.list_events(
        session,
        principal,
        types=type or [],
        since=since,
        until=until,
        after=after,
        limit=limit,
        cursor=cursor,
    )
