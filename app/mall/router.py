import uuid
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, status
from fastapi.responses import Response

from app.auth.dependencies import Authority, Merchant, Operator, Public, Session, User, require
from app.auth.principal import Principal
from app.core.errors import RateLimited, responses
from app.core.idempotency import KeyRequired
from app.core.pagination import Cursor, InvalidCursor, Limit, Page
from app.core.routing import CommitRoute, DirectWriteRoute
from app.core.types import Day, Int64, Text
from app.mall import service
from app.mall.exceptions import (
    FieldNotNullable,
    InvalidItemTransition,
    InvalidPeriod,
    InvalidPoints,
    InvalidQuantity,
    InvalidSaleWindow,
    ItemNotFound,
    ItemPaused,
    ItemRestricted,
    NotItemOwner,
    OperatorOrderConflict,
    OperatorRequired,
    OrderNotFound,
    OutOfStock,
    OutsideSaleWindow,
    PerUserLimitExceeded,
    RedemptionNotFound,
    RedemptionReversed,
    ReversalWindowClosed,
    SaleEnded,
    UnknownOperator,
    VoucherCancelled,
    VoucherExpired,
    VoucherNotFound,
    VoucherRedeemed,
)
from app.mall.schemas import (
    ItemCreate,
    ItemRead,
    ItemUpdate,
    MerchantOrderRead,
    OperatorRedemptionCreate,
    OperatorRedemptionRead,
    OrderCreate,
    OrderRead,
    RedeemedVoucher,
    Statement,
    UsedPointsReport,
)
from app.points.exceptions import InsufficientPoints

router = APIRouter(route_class=CommitRoute, tags=["mall"])
direct_writes = APIRouter(route_class=DirectWriteRoute, tags=["mall"])
"""Placing an order, the mall's request at a city's lunch hour (:class:`app.core.routing.DirectWriteRoute`)."""
Buyer = Annotated[
    Principal,
    # the key's lock and record are taken by the order's own statement (app.mall.repository.place), which checks
    # the caller's standing first when this process does not know it
    Depends(
        require(
            "user", idempotency_required=True, idempotency_deferred=True, scope="mall", standing_deferred=True
        )
    ),
]
MallUser = Annotated[Principal, Depends(require("user", scope="mall"))]
"""A person through an operator's app that they let order in the platform mall (``mall``)."""
_THROUGH = (
    " Needs the scope `mall`; only orders placed through the operator the token was issued to (`azp`): "
    "another operator's order of the same person is 404 `order_not_found` (the person sees every order, and "
    "can show its voucher or cancel it, on their own page on the platform: `/me/orders`)."
)
Format = Annotated[
    Literal["json", "csv"], Query(description="`csv`: one row per day and organisation, with a header")
]
From = Annotated[Day, Query(alias="from", description="First local day (platform time zone)")]
To = Annotated[Day, Query(description="Last local day, inclusive (at most 366 days after `from`)")]
OrderStatusFilter = Literal["issued", "redeemed", "cancelled", "expired"]


def _json(data, status_code: int = 200) -> Response:
    return Response(
        orjson.dumps(data, default=str, option=orjson.OPT_UTC_Z),
        status_code=status_code,
        media_type="application/json",
    )


_REPORT_FORMATS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The report: JSON, or with `format=csv` CSV with a header row",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


def _report(report: UsedPointsReport, fmt: str) -> Response:
    if fmt == "csv":
        name = f"used-points-{report.group_by}-{report.from_}-{report.to}.csv"
        return Response(
            service.used_points_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return _json(service.used_points_json(report))


# ---- items -----------------------------------------------------------------------------------------------

_ITEM_INVALID = (InvalidSaleWindow, UnknownOperator)


@router.get(
    "/v1/mall/items",
    response_model=Page[ItemRead],
    responses=responses(InvalidCursor),
    dependencies=[Public],
    summary="What can be bought (anyone)",
    description="Active items whose sale has not ended (including those whose sale starts later), newest "
    "first. Filters: `merchant_id`, a price range in points, `in_stock` (true: unlimited or some left; "
    "false: sold out).",
)
async def list_items(
    session: Session,
    merchant_id: uuid.UUID | None = None,
    min_price: Annotated[Int64 | None, Query(ge=0)] = None,
    max_price: Annotated[Int64 | None, Query(ge=0)] = None,
    in_stock: bool | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
):
    return await service.list_items(
        session,
        merchant_id=merchant_id,
        min_price=min_price,
        max_price=max_price,
        in_stock=in_stock,
        limit=limit,
        cursor=cursor,
    )


@router.get(
    "/v1/mall/items/{item_id}",
    response_model=ItemRead,
    responses=responses(ItemNotFound),
    dependencies=[Public],
    summary="An item (anyone), whatever its status",
)
async def get_item(item_id: uuid.UUID, session: Session):
    return await service.get_item(session, item_id)


@router.post(
    "/v1/mall/items",
    status_code=status.HTTP_201_CREATED,
    response_model=ItemRead,
    responses=responses(*_ITEM_INVALID),
    summary="List an item (approved merchant)",
    description="Goods or a service for points. `stock` null is unlimited; `per_user_limit` caps the units "
    "one person holds (cancelled and refunded orders give theirs back); the sale runs from `sale_starts_at` "
    "to `sale_ends_at`; each voucher is valid `voucher_valid_days`; `operator_ids` restricts buyers to users "
    "who came through those operators. The item is `active` at once.",
)
async def create_item(data: ItemCreate, session: Session, merchant: Merchant):
    return await service.create_item(session, merchant, data)


@router.get(
    "/v1/merchant/items",
    response_model=Page[ItemRead],
    responses=responses(InvalidCursor),
    summary="The merchant's own items, any status",
)
async def my_items(
    session: Session,
    merchant: Merchant,
    status: Literal["active", "paused", "ended"] | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
):
    return await service.list_items(session, merchant=merchant, status=status, limit=limit, cursor=cursor)


@router.patch(
    "/v1/mall/items/{item_id}",
    response_model=ItemRead,
    responses=responses(ItemNotFound, NotItemOwner, InvalidItemTransition, FieldNotNullable, *_ITEM_INVALID),
    summary="Edit an item (its merchant)",
    description="Only the fields sent change. A new price applies to new orders only: placed orders keep their "
    "own price, voucher validity and expiry policy. `stock` sets the units left from now on. An ended item "
    "cannot be edited (409 `invalid_item_transition`).",
)
async def update_item(item_id: uuid.UUID, data: ItemUpdate, session: Session, merchant: Merchant):
    return await service.update_item(session, merchant, item_id, data)


def _transition(action: str, summary: str):
    @router.post(
        f"/v1/mall/items/{{item_id}}/{action}",
        response_model=ItemRead,
        responses=responses(ItemNotFound, NotItemOwner, InvalidItemTransition),
        summary=summary,
        name=f"{action}_item",
    )
    async def transition(item_id: uuid.UUID, session: Session, merchant: Merchant):
        return await service.transition_item(session, merchant, item_id, action)

    return transition


_transition("pause", "Pause the sale (its merchant): active → paused; vouchers already issued stay valid")
_transition("resume", "Resume the sale (its merchant): paused → active")
_transition("end", "End the sale for good (its merchant); vouchers already issued stay valid")


# ---- orders ----------------------------------------------------------------------------------------------


@direct_writes.post(
    "/v1/me/orders",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderRead,
    responses=responses(
        KeyRequired,
        InvalidQuantity,
        ItemNotFound,
        ItemPaused,
        SaleEnded,
        OutsideSaleWindow,
        ItemRestricted,
        OutOfStock,
        PerUserLimitExceeded,
        InsufficientPoints,
    ),
    summary="Order an item with points (user; Idempotency-Key required)",
    description="One transaction: the points are spent (soonest-expiring lots first), the stock taken, the "
    "per-person limit checked, and a voucher issued: `code` (`XXXX-XXXX-XXXX-XXXX`, 80 random bits) to show "
    "at the counter before `expires_at`; the merchant and the app that placed it get an `order.created` "
    "event (webhooks). Refused: nothing changes. Retry with the same `Idempotency-Key` to "
    "get the same order back. Needs the scope `mall` the person granted (403 `scope_required` naming it); the "
    "order belongs to the operator the token was issued to.",
)
async def place_order(data: OrderCreate, session: Session, user: Buyer):
    placed = await service.place_order(session, user, data.item_id, data.quantity)
    return Response(placed.body, status.HTTP_201_CREATED, media_type="application/json")


@router.get(
    "/v1/me/orders",
    response_model=Page[OrderRead],
    responses=responses(InvalidCursor),
    summary="My orders with their vouchers, newest first",
    description=_THROUGH.strip(),
)
async def my_orders(
    session: Session,
    user: MallUser,
    status: OrderStatusFilter | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
):
    return await service.list_my_orders(session, user, status=status, limit=limit, cursor=cursor)


@router.get(
    "/v1/me/orders/{order_id}",
    response_model=OrderRead,
    responses=responses(OrderNotFound),
    summary="One of my orders",
    description=_THROUGH.strip(),
)
async def my_order(order_id: uuid.UUID, session: Session, user: MallUser):
    return await service.get_order(session, user, order_id)


_NO_STORE = {"Cache-Control": "no-store"}


def _voucher_image(kind: str, media_type: str):
    @router.get(
        f"/v1/me/orders/{{order_id}}/voucher.{kind}",
        response_class=Response,
        responses={
            200: {
                "description": f"The voucher code as a QR code ({kind.upper()}), not to be cached",
                "content": {media_type: {"schema": {"type": "string", "format": "binary"}}},
                "headers": {"Cache-Control": {"description": "`no-store`", "schema": {"type": "string"}}},
            },
            **responses(OrderNotFound, VoucherRedeemed, VoucherCancelled, VoucherExpired),
        },
        summary=f"My order's voucher code as a QR image ({kind.upper()}) to show at the counter",
        description="The code of `GET /v1/me/orders/{order_id}` encoded as a QR code (error correction M, "
        "8 px a module, a 4-module quiet zone) that the merchant's till scans. Only the order's owner; "
        "another person's order is 404 `order_not_found`. Only while the till would take the voucher: a used, "
        "cancelled or expired one (past its expiry even before the job has closed it) is 409 "
        "`voucher_redeemed`, `voucher_cancelled` or `voucher_expired`, as at the till. Answered with "
        "`Cache-Control: no-store`." + _THROUGH,
        name=f"my_order_voucher_{kind}",
    )
    async def voucher_image(order_id: uuid.UUID, session: Session, user: MallUser) -> Response:
        image = await service.voucher_qr(session, user, order_id, kind)
        return Response(image, media_type=media_type, headers=_NO_STORE)

    return voucher_image


_voucher_image("svg", "image/svg+xml")
_voucher_image("png", "image/png")


@router.post(
    "/v1/me/orders/{order_id}/cancel",
    response_model=OrderRead,
    responses=responses(OrderNotFound, VoucherRedeemed, VoucherCancelled, VoucherExpired),
    summary="Cancel my unused order (user)",
    description="Before the voucher is used or expires. The points go back to the lots they came from, with "
    "their original expiry (a share whose lot has expired meanwhile is expired at once); the stock and the "
    "per-person allowance go back. Exactly once: racing a redemption, one of them wins and the other gets 409."
    + _THROUGH,
)
async def cancel_order(order_id: uuid.UUID, session: Session, user: MallUser):
    return await service.cancel_order(session, user, order_id)


# ---- the merchant's counter ------------------------------------------------------------------------------


@router.post(
    "/v1/merchant/vouchers/{code}/redeem",
    response_model=RedeemedVoucher,
    responses=responses(VoucherNotFound, VoucherRedeemed, VoucherCancelled, VoucherExpired, RateLimited),
    summary="Use (核销) a voucher at the counter (the item's merchant), once",
    description="Case, hyphens and the look-alikes O/I/L are forgiven. A code that does not exist and one of "
    "another merchant's item both answer 404 `voucher_not_found`; each such failure counts, and beyond "
    "`voucher_guess_limit_per_minute` (default 20) failures a minute every attempt answers 429 until the "
    "minute is over.",
)
async def redeem_voucher(code: Annotated[Text, Path(max_length=40)], session: Session, merchant: Merchant):
    return await service.redeem_voucher(session, merchant, code)


@router.get(
    "/v1/merchant/orders",
    response_model=Page[MerchantOrderRead],
    responses=responses(InvalidCursor),
    summary="Orders of the merchant's items, newest first (no voucher codes)",
)
async def merchant_orders(
    session: Session,
    merchant: Merchant,
    status: OrderStatusFilter | None = None,
    item_id: uuid.UUID | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
):
    return await service.list_merchant_orders(
        session, merchant, status=status, item_id=item_id, limit=limit, cursor=cursor
    )


@router.get(
    "/v1/merchant/statement",
    response_model=Statement,
    summary="The merchant's statement of a day (platform time zone)",
    description="Orders placed, vouchers redeemed, orders cancelled and vouchers expired (refunded or "
    "forfeited) during the local day: count, units and points of each.",
)
async def merchant_statement(session: Session, merchant: Merchant, day: Day):
    return await service.statement(session, merchant, day)


@router.get(
    "/v1/merchant/reports/used-points",
    response_model=UsedPointsReport,
    responses={**_REPORT_FORMATS, **responses(InvalidPeriod)},
    summary="Used points per day of the merchant's items (JSON or CSV)",
)
async def merchant_used_points(
    session: Session, merchant: Merchant, from_: From, to: To, format: Format = "json"
):
    report = await service.used_points(session, merchant, group_by="merchant", first=from_, last=to)
    return _report(report, format)


# ---- operator-mall redemptions ---------------------------------------------------------------------------


@router.post(
    "/v1/me/operator-redemptions",
    status_code=status.HTTP_201_CREATED,
    response_model=OperatorRedemptionRead,
    responses={
        200: {"model": OperatorRedemptionRead, "description": "A repeat of the operator's order id"},
        **responses(OperatorRequired, InvalidPoints, InsufficientPoints, OperatorOrderConflict),
    },
    summary="Points used in the operator's own mall, spent and cancelled (注销) here (user)",
    description="With a user token of the operator (`azp`): the redemption belongs to that operator, always "
    "in its own mall (no other operator's). Needs no scope beyond the person's live entrustment of it. "
    "Idempotent by the operator's order id: a repeat answers 200 with "
    "the first result; the same id with another person or amount is 409 `operator_order_conflict`.",
)
async def operator_redemption(data: OperatorRedemptionCreate, session: Session, user: User):
    result = await service.operator_redeem(session, user, data)
    return _json(
        result.redemption.model_dump(), status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
    )


@router.post(
    "/v1/operator/redemptions/{operator_order_id}/reverse",
    response_model=OperatorRedemptionRead,
    responses=responses(RedemptionNotFound, RedemptionReversed, ReversalWindowClosed),
    summary="Reverse a redemption in the operator's own mall (operator), within the window",
    description="Within `operator_redemption_reversal_days` (default 7) of the redemption: the points go "
    "back to the lots they came from (a share whose lot has expired is expired at once). Once.",
)
async def reverse_redemption(
    operator_order_id: Annotated[Text, Path(max_length=100)], session: Session, operator: Operator
):
    return await service.reverse_redemption(session, operator, operator_order_id)


@router.get(
    "/v1/operator/redemptions",
    response_model=Page[OperatorRedemptionRead],
    responses=responses(InvalidCursor),
    summary="The operator's own-mall redemptions, newest first",
)
async def list_redemptions(session: Session, operator: Operator, limit: Limit = 50, cursor: Cursor = None):
    return await service.list_redemptions(session, operator, limit, cursor)


@router.get(
    "/v1/operator/reports/used-points",
    response_model=UsedPointsReport,
    responses={**_REPORT_FORMATS, **responses(InvalidPeriod)},
    summary="Used points per day in the operator's own mall (JSON or CSV)",
)
async def operator_used_points(
    session: Session, operator: Operator, from_: From, to: To, format: Format = "json"
):
    report = await service.used_points(session, operator, group_by="operator", first=from_, last=to)
    return _report(report, format)


@router.get(
    "/v1/reports/used-points",
    response_model=UsedPointsReport,
    responses={**_REPORT_FORMATS, **responses(InvalidPeriod)},
    summary="Used points per day, platform-wide, per merchant or per operator (authority; JSON or CSV)",
    description="`group_by=merchant`: the platform mall's orders per merchant; `group_by=operator`: the "
    "redemptions operators reported from their own malls (SZ 23).",
)
async def used_points(
    session: Session,
    authority: Authority,
    from_: From,
    to: To,
    group_by: Literal["merchant", "operator"] = "merchant",
    format: Format = "json",
):
    report = await service.used_points(session, authority, group_by=group_by, first=from_, last=to)
    return _report(report, format)
