"""The rewards mall for browsing (no sign-in): what carbon points can buy, as a page and CSV. People buy
through their app; the merchant's own pages are in :mod:`app.mall.pages`."""

from typing import Annotated

from fastapi import Query, Request

from app.auth.dependencies import Session
from app.core.types import Int64, Text
from app.mall import service
from app.mall.schemas import ItemRead
from app.web.dependencies import page_router
from app.web.disclosure import Column, Listing, respond
from app.web.i18n import date_, gettext, number

router = page_router()


def _stock(stock: int | None) -> str:
    return gettext("Unlimited") if stock is None else number(stock)


def _window(item: ItemRead) -> str:
    start, end = item.sale_starts_at, item.sale_ends_at
    if start is None and end is None:
        return gettext("Always")
    return f"{date_(start) if start else ''} – {date_(end) if end else ''}"


@router.get("/mall", name="public_mall")
async def mall(
    request: Request,
    session: Session,
    max_price: Annotated[Int64 | None, Query(ge=0)] = None,
    in_stock: Annotated[Text | None, Query(max_length=5)] = None,
):
    columns = [
        Column(gettext("Item"), lambda i: i.title),
        Column(gettext("Price (points)"), lambda i: number(i.points_price), lambda i: i.points_price),
        Column(gettext("In stock"), lambda i: _stock(i.stock), lambda i: "" if i.stock is None else i.stock),
        Column(
            gettext("On sale"),
            _window,
            lambda i: "/".join(d.isoformat() if d else "" for d in (i.sale_starts_at, i.sale_ends_at)),
        ),
        Column(gettext("Description"), lambda i: i.description),
    ]
    only_in_stock = True if in_stock == "true" else None
    listing = Listing(
        gettext("Rewards mall"),
        "mall-items.csv",
        extra={"wide_last": True},
        filters={
            "max_price": None if max_price is None else str(max_price),
            "in_stock": "true" if only_in_stock else None,
        },
    )
    return await respond(
        request,
        "mall/browse.html",
        columns,
        lambda cursor, limit: service.list_items(
            session, max_price=max_price, in_stock=only_in_stock, limit=limit, cursor=cursor
        ),
        listing,
    )
