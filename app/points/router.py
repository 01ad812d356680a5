import uuid
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response

from app.auth.dependencies import AccountReader, Authority, BalanceReader, Operator, Session, require
from app.auth.principal import Principal
from app.core.errors import responses
from app.core.openapi import request_body
from app.core.pagination import Cursor, InvalidCursor, Limit, Page
from app.core.routing import CommitRoute, DirectReadRoute
from app.core.types import Moment, Text
from app.points import batches, ingestion, service
from app.points.exceptions import (
    AccountNotFound,
    BatchBodyUnreadable,
    BatchNotFound,
    BatchTooLarge,
    ConcurrentConflict,
    InsufficientPoints,
    InvalidBatch,
    InvalidPeriod,
    InvalidSignature,
    SignatureRequired,
)
from app.points.schemas import (
    AccountRead,
    BatchDetail,
    BatchIn,
    BatchOut,
    BatchRead,
    BehaviourRead,
    ClawbackIn,
    ClawbackOut,
    LedgerEntryRead,
)
from app.users import service as users_service
from app.users.exceptions import NotEntrusted
from app.users.schemas import ExternalUserId

router = APIRouter(route_class=CommitRoute, tags=["points"])
direct_reads = APIRouter(route_class=DirectReadRoute, tags=["points"])
"""The reads a person's app makes on every open (:class:`app.core.routing.DirectReadRoute`)."""
BatchOperator = Annotated[Principal, Depends(require("operator", idempotency_required=True))]


def _json(data) -> Response:
    return Response(orjson.dumps(data, default=str), media_type="application/json")


@router.post(
    "/v1/operator/behaviour-batches",
    response_model=BatchOut,
    responses=responses(SignatureRequired, InvalidSignature, BatchTooLarge, InvalidBatch, ConcurrentConflict),
    openapi_extra=request_body(BatchIn),
    summary="Submit up to 1,000 behaviour records (signed, idempotent)",
    description=(
        "Headers: `Idempotency-Key` (required; retry with the same key and the same bytes) and "
        "`X-Content-Signature`: a detached JWS (RFC 7515 appendix F, `header..signature`) over the exact body, "
        "signed with your registered key (`kid` in the JWS header). Each record gets an outcome, in request "
        "order: `accepted` (with reduction in grams CO2e and points), `duplicate` (its record_id was accepted "
        "before: the first outcome is repeated) or `rejected` with a code. A rejected record may be sent again "
        "once fixed. The whole batch is one transaction."
    ),
)
async def submit_batch(
    request: Request,
    session: Session,
    operator: BatchOperator,
    x_content_signature: Annotated[Text | None, Header()] = None,
):
    body = await request.body()
    return _json(await ingestion.ingest(session, operator, body, x_content_signature))


@router.get(
    "/v1/operator/behaviour-batches",
    response_model=Page[BatchRead],
    responses=responses(InvalidCursor, InvalidPeriod),
    summary="The batches you sent, newest first, with the count of each outcome",
    description="Filters: `received_from` (inclusive) and `received_to` (exclusive), RFC 3339 times with an "
    "offset; `has_rejections=true` for the batches with at least one rejected record (`false`: none). "
    "Only your own batches.",
)
async def list_batches(
    session: Session,
    operator: Operator,
    limit: Limit = 50,
    cursor: Cursor = None,
    received_from: Annotated[Moment | None, Query(description="Received at or after")] = None,
    received_to: Annotated[Moment | None, Query(description="Received before")] = None,
    has_rejections: Annotated[bool | None, Query()] = None,
):
    return await batches.list_batches(
        session,
        operator,
        received_from=received_from,
        received_to=received_to,
        has_rejections=has_rejections,
        limit=limit,
        cursor=cursor,
    )


@router.get(
    "/v1/operator/behaviour-batches/{batch_id}",
    response_model=BatchDetail,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "JSON, or with `format=csv` the rejected records: record_id, external_user_id, "
            "behaviour_type, occurred_at, code, message (UTF-8 with a byte-order mark)",
        },
        **responses(BatchNotFound, BatchBodyUnreadable, InvalidCursor),
    },
    summary="One of your batches: outcome counts, reject codes with counts, its records with their outcome",
    description="`results` pages through the records in the order sent (`status` keeps one outcome). A "
    "rejected record's `code` and `message` are the ones the submission answered, kept with the batch at "
    "receipt: nothing is checked again, so they stay the same whatever changed since (an entrustment "
    "withdrawn, a methodology retired). Batches received before the platform kept them have "
    "`rejections_recorded` false and their rejected records no code. Another operator's batch is 404. The "
    "signed body is kept compressed; one that can no longer be read (altered in the database) is 500 "
    "`batch_body_unreadable`.",
)
async def get_batch(
    batch_id: uuid.UUID,
    session: Session,
    operator: Operator,
    limit: Limit = 100,
    cursor: Cursor = None,
    status: Annotated[Literal["accepted", "duplicate", "rejected"] | None, Query()] = None,
    format: Annotated[Literal["json", "csv"], Query(description="`csv`: the rejected records")] = "json",
):
    if format == "csv":
        rows = await batches.rejected_records(session, operator, batch_id)
        return Response(
            batches.rejected_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="batch-{batch_id}-rejected.csv"'},
        )
    return await batches.batch_detail(session, operator, batch_id, status=status, limit=limit, cursor=cursor)


@router.get(
    "/v1/operator/users/{external_user_id}/account",
    response_model=AccountRead,
    responses=responses(NotEntrusted),
    summary="A user's balance, for display in the operator's app",
)
async def operator_user_account(external_user_id: ExternalUserId, session: Session, operator: Operator):
    assert operator.org_id is not None  # an operator's client token names its organisation
    user_id = await users_service.entrusted_user(session, operator.org_id, external_user_id)
    return await service.account(session, user_id)


@direct_reads.get(
    "/v1/me/account",
    response_model=AccountRead,
    summary="My balance, lifetime totals and what expires when",
    description="Needs the scope `account:read`. The person's one account, whichever operators credited it: "
    "through any operator's token the same balance, lifetime totals and expiring points.",
)
async def my_account(session: Session, user: BalanceReader):
    return await service.account(session, user.subject, user.org_id)


@router.get(
    "/v1/me/ledger",
    response_model=Page[LedgerEntryRead],
    responses=responses(InvalidCursor),
    summary="My ledger entries that come from this operator, newest first",
    description="Needs the scope `account:read`. Only the entries whose source is the operator the token was "
    "issued to (`azp`): earnings (`ref_type` `batch`) from batches it submitted; spends, refunds and expiries "
    "of refunded shares of orders placed through its token (`mall_order`) and of redemptions in its own mall "
    "(`operator_redemption`); expiries (`expiry`) and the authority's clawbacks (`clawback`) that took points "
    "from a lot it credited (the entry's amount is the whole expiry or clawback, other operators' points of the "
    "same lot included), so the person sees in the app that earned the points why the balance moved. Not "
    "listed: other operators' earnings, orders and redemptions, and expiries and clawbacks that took nothing "
    "from a lot it credited. `balance_after` is the one account's balance. The person sees every app's "
    "entries together on their own page on the platform (`/me/history`).",
)
async def my_ledger(session: Session, user: AccountReader, limit: Limit = 50, cursor: Cursor = None):
    return await service.ledger(session, user.subject, limit, cursor, operator_id=user.org_id)


@router.get(
    "/v1/me/behaviours",
    response_model=Page[BehaviourRead],
    responses=responses(InvalidCursor),
    summary="My accepted behaviours that this operator submitted, newest first",
    description="Needs the scope `account:read`. Only the behaviour records the operator the token was issued "
    "to (`azp`) submitted; other operators' records of the same person are not listed (the person sees them "
    "all on their own page on the platform, `/me/behaviours`).",
)
async def my_behaviours(session: Session, user: AccountReader, limit: Limit = 50, cursor: Cursor = None):
    return await service.behaviours(session, user.subject, limit, cursor, operator_id=user.org_id)


@router.post(
    "/v1/points/accounts/{user_id}/clawback",
    response_model=ClawbackOut,
    responses=responses(AccountNotFound, InsufficientPoints),
    summary="Claw back points (authority; recorded and audited)",
    description="The only way points leave an account other than the person's own redemption or expiry.",
)
async def clawback(user_id: uuid.UUID, data: ClawbackIn, session: Session, authority: Authority):
    result = await service.clawback(session, authority, user_id, data.points, data.reason)
    return {"entry_id": result.entry_id, "points": result.points, "balance_after": result.balance_after}
