"""Delivery inspection and replay: what was sent to a subscription, every attempt, and sending again."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status

from app.auth.dependencies import Session, require
from app.auth.principal import Principal
from app.core.errors import responses
from app.core.pagination import Cursor, InvalidCursor, Limit, Page
from app.core.routing import CommitRoute
from app.core.types import Int64, Moment
from app.webhooks import delivery, service
from app.webhooks.delivery_schemas import DeliveryDetail, DeliveryRead, DeliveryStatus, RedeliveredFailed
from app.webhooks.exceptions import SubscriptionNotFound

router = APIRouter(route_class=CommitRoute, tags=["webhooks"])
Staff = Annotated[Principal, Depends(require(*sorted(service.ORG_KINDS)))]
SubscriptionId = Annotated[uuid.UUID, Path(description="A subscription of your organisation")]
DeliveryId = Annotated[Int64, Path(description="A delivery of that subscription")]
_BASE = "/v1/webhooks/subscriptions/{subscription_id}"
_OWN = " Only your organisation's subscriptions: another's is 404 `subscription_not_found`."


@router.get(
    f"{_BASE}/deliveries",
    response_model=Page[DeliveryRead],
    responses=responses(SubscriptionNotFound, InvalidCursor),
    summary="Deliveries of a subscription (its organisation's staff)",
    description="Newest first: each event sent or to be sent to this endpoint, its status (`pending`, "
    "`delivered`, `failed`), how many attempts were made and what the last one got (status, latency, the "
    "start of the answer). Filter with `status`." + _OWN,
)
async def list_deliveries(
    session: Session,
    principal: Staff,
    subscription_id: SubscriptionId,
    status_: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
):
    return await delivery.list_deliveries(
        session, principal.org_id, subscription_id, status=status_, limit=limit, cursor=cursor
    )


@router.get(
    f"{_BASE}/deliveries/{{delivery_id}}",
    response_model=DeliveryDetail,
    responses=responses(SubscriptionNotFound, delivery.DeliveryNotFound),
    summary="One delivery with every attempt",
    description="The delivery and each attempt, oldest first: when, the endpoint's status, latency, the "
    "error (a time-out, a refused address, `HTTP 500`…) and the start of its answer." + _OWN,
)
async def get_delivery(
    session: Session, principal: Staff, subscription_id: SubscriptionId, delivery_id: DeliveryId
):
    return await delivery.get_delivery(session, principal.org_id, subscription_id, delivery_id)


@router.post(
    f"{_BASE}/deliveries/{{delivery_id}}/redeliver",
    response_model=DeliveryDetail,
    status_code=status.HTTP_202_ACCEPTED,
    responses=responses(SubscriptionNotFound, delivery.DeliveryNotFound),
    summary="Send one event again",
    description="The delivery becomes `pending` and due now, whatever its status: the worker posts the "
    "same event (same `Carbon-Event-Id`, freshly signed) within seconds. Audited." + _OWN,
)
async def redeliver(
    session: Session, principal: Staff, subscription_id: SubscriptionId, delivery_id: DeliveryId
):
    return await delivery.redeliver(session, principal.actor, principal.org_id, subscription_id, delivery_id)


@router.post(
    f"{_BASE}/redeliver-failed",
    response_model=RedeliveredFailed,
    status_code=status.HTTP_202_ACCEPTED,
    responses=responses(SubscriptionNotFound),
    summary="Send again every failed delivery since a time",
    description="Every delivery of this subscription given up (`failed`) and made at or after `since` "
    "becomes `pending` and due now; the answer lists them. Resume a disabled subscription first: only "
    "active subscriptions are delivered to. Audited." + _OWN,
)
async def redeliver_failed(
    session: Session,
    principal: Staff,
    subscription_id: SubscriptionId,
    since: Annotated[Moment, Query(description="Deliveries made at or after this time (RFC 3339)")],
):
    return await delivery.redeliver_failed(session, principal.actor, principal.org_id, subscription_id, since)
