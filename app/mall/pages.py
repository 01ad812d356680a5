"""The merchant's till and back office (``/merchant``): redeem vouchers at the counter, the day's
statement, items, orders and used-points reports, on the same services as the JSON routes.

A voucher code travels only in POST bodies (never in a URL or a log line): the till posts it to be
looked up, the confirmation posts it again to be used, and the success screen is addressed by the
order's id.
"""

import uuid
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from app.auth.dependencies import Session
from app.core import clock
from app.core.errors import RateLimited
from app.core.pagination import Cursor
from app.core.types import Text
from app.mall import service, vouchers
from app.mall.exceptions import (
    InvalidItemTransition,
    InvalidPeriod,
    InvalidSaleWindow,
    VoucherCancelled,
    VoucherExpired,
    VoucherNotFound,
    VoucherRedeemed,
)
from app.mall.schemas import ItemCreate, ItemRead, ItemUpdate
from app.web import paging
from app.web.dependencies import page_router, require_viewer
from app.web.i18n import N_, gettext, number
from app.web.i18n import datetime_ as show_time
from app.web.sessions import Viewer
from app.web.templating import render

router = page_router()
Merchant = Annotated[Viewer, Depends(require_viewer("merchant"))]
PAGE_SIZE = 20
REPORT_DAYS = 30

# The till's refusals: (status, message), in the words of the counter.
VOUCHER_REFUSALS: dict[type[Exception], tuple[int, str]] = {
    VoucherNotFound: (404, N_("No voucher of your shop has this code. Check the code and try again.")),
    VoucherRedeemed: (409, N_("This voucher has already been used. It cannot be used again.")),
    VoucherExpired: (409, N_("This voucher has expired and can no longer be used.")),
    VoucherCancelled: (409, N_("The buyer cancelled this order, so its voucher can no longer be used.")),
    RateLimited: (429, N_("Too many wrong codes in a minute. Wait a minute, then try again.")),
}
VOUCHER_REFUSED = tuple(VOUCHER_REFUSALS)

ITEM_FIELD_ERRORS = {
    "title": N_("Enter a title of 1 to 200 characters."),
    "description": N_("The description can be at most 5,000 characters."),
    "points_price": N_("Enter the price as a whole number of points from 1 to 1,000,000,000."),
    "stock": N_("Enter the stock as a whole number from 0 to 100,000,000, or leave it empty for unlimited."),
    "per_user_limit": N_("Enter a whole number from 1 to 10,000, or leave it empty for no limit."),
    "voucher_valid_days": N_("Enter a whole number of days from 1 to 3,650."),
    "expiry_policy": N_("Choose what happens to vouchers that are never used."),
    "sale_starts_at": N_("Enter a date and a time, or leave it empty."),
    "sale_ends_at": N_("Enter a date and a time, or leave it empty."),
}
ITEM_FIELDS = tuple(ITEM_FIELD_ERRORS)
OPTIONAL = {"stock", "per_user_limit", "sale_starts_at", "sale_ends_at"}
EXPIRY_POLICIES = (
    ("refund", N_("Give the points back")),
    ("forfeit", N_("Keep the points (forfeited)")),
)
ORDER_STATUSES = {
    "issued": N_("Not used yet"),
    "redeemed": N_("Redeemed"),
    "cancelled": N_("Cancelled"),
    "expired": N_("Expired"),
}
STATEMENT_LINES = (
    ("ordered", N_("Orders placed")),
    ("redeemed", N_("Vouchers redeemed at the counter")),
    ("cancelled", N_("Orders cancelled by buyers")),
    ("expired_refunded", N_("Expired unused, points refunded")),
    ("expired_forfeited", N_("Expired unused, points forfeited")),
)


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# ---- the till --------------------------------------------------------------------------------------------


def _till(request: Request, code: str = "", error: str | None = None, status: int = 200) -> Response:
    return render(
        request, "mall/till.html", {"code": code, "error": error, "refused": None}, status_code=status
    )


def _refusal(request: Request, code: str, exc: Exception) -> Response:
    status, message = VOUCHER_REFUSALS[type(exc)]
    headers = {"Retry-After": exc.headers.get("Retry-After", "60")} if isinstance(exc, RateLimited) else None
    return render(
        request,
        "mall/till.html",
        {"code": code, "error": gettext(message), "refused": type(exc).__name__},
        status_code=status,
        headers=headers,
    )


def _code_error(code: str) -> str | None:
    if not code:
        return gettext("Enter the voucher code.")
    if vouchers.normalise(code) is None:
        return gettext("A voucher code has 16 letters and digits, like ABCD-EFGH-JKMN-PQRS.")
    return None


@router.get("/merchant", name="merchant_till")
async def till(request: Request, viewer: Merchant) -> Response:
    return _till(request)


@router.post("/merchant/vouchers/check")
async def check_voucher(
    request: Request, session: Session, viewer: Merchant, code: Annotated[Text, Form(max_length=100)] = ""
) -> Response:
    code = code.strip()
    if error := _code_error(code):
        return _till(request, code, error, 400)
    try:
        preview = await service.look_up_voucher(session, viewer.principal, code)
    except VOUCHER_REFUSED as exc:
        return _refusal(request, code, exc)
    return render(request, "mall/voucher_check.html", {"code": code, "voucher": preview})


@router.post("/merchant/vouchers/redeem")
async def redeem_voucher(
    request: Request, session: Session, viewer: Merchant, code: Annotated[Text, Form(max_length=100)] = ""
) -> Response:
    code = code.strip()
    if error := _code_error(code):
        return _till(request, code, error, 400)
    try:
        redeemed = await service.redeem_voucher(session, viewer.principal, code)
    except VOUCHER_REFUSED as exc:
        return _refusal(request, code, exc)
    return _see_other(f"/merchant/redeemed/{redeemed.order_id}")


@router.get("/merchant/redeemed/{order_id}")
async def redeemed(request: Request, session: Session, viewer: Merchant, order_id: uuid.UUID) -> Response:
    order = await service.get_merchant_order(session, viewer.principal, order_id)
    return render(request, "mall/redeemed.html", {"order": order})


# ---- the day's statement ---------------------------------------------------------------------------------


def _parse_day(value: str | None, default: date) -> tuple[date, str | None]:
    if not value:
        return default, None
    try:
        return date.fromisoformat(value.strip()), None
    except ValueError:
        return default, gettext("Enter a date such as %(example)s.") % {"example": default.isoformat()}


@router.get("/merchant/statement")
async def statement(
    request: Request,
    session: Session,
    viewer: Merchant,
    day: Annotated[Text | None, Query(max_length=40)] = None,
) -> Response:
    today = clock.today()
    chosen, error = _parse_day(day, today)
    result = await service.statement(session, viewer.principal, chosen)
    lines = [(gettext(label), getattr(result, name)) for name, label in STATEMENT_LINES]
    return render(
        request,
        "mall/statement.html",
        {
            "statement": result,
            "lines": lines,
            "day_value": day if error else chosen.isoformat(),
            "error": error,
            "is_today": chosen == today,
        },
        status_code=400 if error else 200,
    )


# ---- items -----------------------------------------------------------------------------------------------


def _local_input(moment: datetime | None) -> str:
    """A moment as the value of a ``datetime-local`` input, in the platform's time zone."""
    return moment.astimezone(clock.zone()).strftime("%Y-%m-%dT%H:%M") if moment else ""


def _item_values(item: ItemRead | None = None) -> dict[str, str]:
    if item is None:
        return {"expiry_policy": "refund", "voucher_valid_days": "30"}
    return {
        "title": item.title,
        "description": item.description,
        "points_price": str(item.points_price),
        "stock": "" if item.stock is None else str(item.stock),
        "per_user_limit": "" if item.per_user_limit is None else str(item.per_user_limit),
        "voucher_valid_days": str(item.voucher_valid_days),
        "expiry_policy": item.expiry_policy,
        "sale_starts_at": _local_input(item.sale_starts_at),
        "sale_ends_at": _local_input(item.sale_ends_at),
    }


async def _item_form(request: Request) -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
    """The form as typed, the body for ItemCreate/ItemUpdate, and the errors found parsing it."""
    form = await request.form()
    values = {name: str(form.get(name, ""))[:10_000] for name in ITEM_FIELDS}
    body: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, raw in values.items():
        text = raw if name == "description" else raw.strip()
        if name in OPTIONAL and not text:
            body[name] = None
        elif name in ("sale_starts_at", "sale_ends_at"):
            try:
                body[name] = datetime.fromisoformat(text).replace(tzinfo=clock.zone())
            except ValueError:
                errors[name] = gettext(ITEM_FIELD_ERRORS[name])
        else:
            body[name] = text
    return values, body, errors


def _validation_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        errors.setdefault(name, gettext(ITEM_FIELD_ERRORS.get(name, N_("Check this value."))))
    return errors


def _render_item_form(
    request: Request, values: dict[str, str], errors: dict[str, str], item: ItemRead | None, status: int = 200
) -> Response:
    policies = [(value, gettext(label)) for value, label in EXPIRY_POLICIES]
    return render(
        request,
        "mall/item_form.html",
        {"values": values, "errors": errors, "item": item, "policies": policies},
        status_code=status,
    )


@router.get("/merchant/items")
async def items(request: Request, session: Session, viewer: Merchant, cursor: Cursor = None) -> Response:
    result = await service.list_items(session, merchant=viewer.principal, limit=PAGE_SIZE, cursor=cursor)
    return render(
        request,
        "mall/items.html",
        {"items": result["items"], **paging.links("/merchant/items", {}, result["next_cursor"], cursor)},
    )


@router.get("/merchant/items/new")
async def new_item(request: Request, viewer: Merchant) -> Response:
    return _render_item_form(request, _item_values(), {}, None)


@router.post("/merchant/items/new")
async def create_item(request: Request, session: Session, viewer: Merchant) -> Response:
    values, body, errors = await _item_form(request)
    if not errors:
        try:
            created = await service.create_item(session, viewer.principal, ItemCreate.model_validate(body))
        except ValidationError as exc:
            errors = _validation_errors(exc)
        except InvalidSaleWindow:
            errors = {"sale_ends_at": gettext("The end of the sale must be after its start.")}
        else:
            return _see_other(f"/merchant/items?{urlencode({'saved': str(created.id)})}")
    return _render_item_form(request, values, errors, None, 400)


@router.get("/merchant/items/{item_id}/edit")
async def edit_item(request: Request, session: Session, viewer: Merchant, item_id: uuid.UUID) -> Response:
    item = await service.get_own_item(session, viewer.principal, item_id)
    return _render_item_form(request, _item_values(item), {}, item)


@router.post("/merchant/items/{item_id}/edit")
async def update_item(request: Request, session: Session, viewer: Merchant, item_id: uuid.UUID) -> Response:
    item = await service.get_own_item(session, viewer.principal, item_id)
    values, body, errors = await _item_form(request)
    if (await request.form()).get("stock_was") == values["stock"]:
        body.pop("stock", None)  # untouched: orders placed since the form was opened keep their units
    status = 400
    if not errors:
        try:
            await service.update_item(session, viewer.principal, item_id, ItemUpdate.model_validate(body))
        except ValidationError as exc:
            errors = _validation_errors(exc)
        except InvalidSaleWindow:
            errors = {"sale_ends_at": gettext("The end of the sale must be after its start.")}
        except InvalidItemTransition:
            errors, status = (
                {"form": gettext("The sale of this item has ended; it can no longer be edited.")},
                409,
            )
        else:
            return _see_other(f"/merchant/items?{urlencode({'saved': str(item_id)})}")
    return _render_item_form(request, values, errors, item, status)


@router.post("/merchant/items/{item_id}/{action}")
async def change_item(
    request: Request, session: Session, viewer: Merchant, item_id: uuid.UUID, action: Text
) -> Response:
    if action not in service.TRANSITIONS:
        return _see_other("/merchant/items")
    await service.transition_item(session, viewer.principal, item_id, action)
    return _see_other(f"/merchant/items?{urlencode({'saved': str(item_id)})}")


# ---- orders ----------------------------------------------------------------------------------------------


@router.get("/merchant/orders")
async def orders(
    request: Request,
    session: Session,
    viewer: Merchant,
    status: Annotated[Text | None, Query(max_length=20)] = None,
    cursor: Cursor = None,
) -> Response:
    chosen = status if status in ORDER_STATUSES else None
    result = await service.list_merchant_orders(
        session, viewer.principal, status=chosen, item_id=None, limit=PAGE_SIZE, cursor=cursor
    )
    rows = [
        [
            show_time(o.created_at, "short"),
            o.title,
            number(o.quantity),
            number(o.points),
            gettext(ORDER_STATUSES[o.status]),
            show_time(o.voucher_expires_at, "short"),
            show_time(o.redeemed_at, "short"),
        ]
        for o in result["items"]
    ]
    statuses = [("", gettext("All"))] + [(s, gettext(label)) for s, label in ORDER_STATUSES.items()]
    return render(
        request,
        "mall/orders.html",
        {
            "rows": rows,
            "status": chosen or "",
            "statuses": statuses,
            **paging.links("/merchant/orders", {"status": chosen}, result["next_cursor"], cursor),
        },
    )


# ---- used-points reports ---------------------------------------------------------------------------------


def _period(first: str | None, last: str | None) -> tuple[date, date, dict[str, str]]:
    today = clock.today()
    errors: dict[str, str] = {}
    to, error = _parse_day(last, today)
    if error:
        errors["to"] = error
    start, error = _parse_day(first, to - timedelta(days=REPORT_DAYS - 1))
    if error:
        errors["from"] = error
    return start, to, errors


@router.get("/merchant/reports")
async def reports(
    request: Request,
    session: Session,
    viewer: Merchant,
    from_: Annotated[Text | None, Query(alias="from", max_length=40)] = None,
    to: Annotated[Text | None, Query(max_length=40)] = None,
) -> Response:
    first, last, errors = _period(from_, to)
    report = None
    if not errors:
        try:
            report = await service.used_points(
                session, viewer.principal, group_by="merchant", first=first, last=last
            )
        except InvalidPeriod:
            errors["to"] = gettext(
                "The last day must not be before the first, and a report spans at most 366 days."
            )
    values = {
        "from": from_ if errors.get("from") else first.isoformat(),
        "to": to if errors.get("to") else last.isoformat(),
    }
    return render(
        request,
        "mall/reports.html",
        {
            "report": report,
            "values": values,
            "errors": errors,
            "csv_url": f"/merchant/reports/used-points.csv?{urlencode(values)}",
        },
        status_code=400 if errors else 200,
    )


@router.get("/merchant/reports/used-points.csv")
async def reports_csv(
    session: Session,
    viewer: Merchant,
    from_: Annotated[Text | None, Query(alias="from", max_length=40)] = None,
    to: Annotated[Text | None, Query(max_length=40)] = None,
) -> Response:
    first, last, errors = _period(from_, to)
    if errors:
        raise InvalidPeriod()
    report = await service.used_points(session, viewer.principal, group_by="merchant", first=first, last=last)
    name = f"used-points-merchant-{report.from_}-{report.to}.csv"
    return Response(
        service.used_points_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
