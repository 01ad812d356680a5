"""The rewards mall's rules: items, orders with vouchers, counter redemption, cancellation and expiry,
operator-mall redemptions, statements and used-points reports.

Lock order (see :mod:`app.mall.models`): order row → the person's account → the item → the
per-person counter. Placing an order spends the points first (account lock), then takes the stock
in one statement, so a hot item's row is held for the shortest time. Every exactly-once transition
is a conditional update of a status; losing a race shows up as "no row" and is answered with the
code of the state the winner left.
"""

import csv
import io
import json
import uuid
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.core import audit, callers, clock, coalesce, db, idempotency, ids, ratelimit, sqljson
from app.core.config import get_settings
from app.core.pagination import decode_cursor, page
from app.mall import repository as repo
from app.mall import vouchers
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
    OrderRead,
    RedeemedVoucher,
    Statement,
    StatementLine,
    UsedPointsReport,
    UsedPointsRow,
    VoucherPreview,
)
from app.organizations import service as org_service
from app.organizations.exceptions import OrganizationNotFound
from app.points import service as points_service
from app.points.exceptions import InsufficientPoints
from app.webhooks import service as webhooks_service

MAX_QUANTITY = 100
MAX_POINTS = 1_000_000_000
MAX_REPORT_DAYS = 366
NOT_NULLABLE = {"title", "description", "images", "points_price", "voucher_valid_days", "expiry_policy"}


# ---- shapes ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Redemption:
    """An operator-mall redemption; ``created`` False when it repeats an earlier one."""

    redemption: OperatorRedemptionRead
    created: bool


@dataclass(frozen=True)
class VoucherExpiry:
    """What one run of the voucher expiry did."""

    orders: int
    refunded: int
    forfeited: int
    points_refunded: int


def _item_out(row: Any) -> ItemRead:
    return ItemRead.model_validate(dict(row))


def _order_out(row: Any) -> OrderRead:
    out = {
        k: row[k]
        for k in (
            "id",
            "item_id",
            "merchant_id",
            "title",
            "quantity",
            "unit_price",
            "points",
            "status",
            "expiry_policy",
            "refunded_points",
            "created_at",
            "redeemed_at",
            "cancelled_at",
            "expired_at",
        )
    }
    out["voucher"] = {
        "code": vouchers.unseal(row["voucher_sealed"], row["id"]),
        "expires_at": row["voucher_expires_at"],
    }
    return OrderRead.model_validate(out)


def _merchant_order_out(row: Any) -> MerchantOrderRead:
    return MerchantOrderRead.model_validate(
        {
            k: row[k]
            for k in (
                "id",
                "item_id",
                "title",
                "quantity",
                "unit_price",
                "points",
                "status",
                "voucher_expires_at",
                "refunded_points",
                "created_at",
                "redeemed_at",
                "cancelled_at",
                "expired_at",
            )
        }
    )


def _redemption_out(row: Any) -> OperatorRedemptionRead:
    out = {
        k: row[k]
        for k in (
            "id",
            "operator_id",
            "operator_order_id",
            "user_id",
            "points",
            "description",
            "status",
            "created_at",
            "reversed_at",
        )
    }
    out["reversible_until"] = row["created_at"] + timedelta(
        days=get_settings().operator_redemption_reversal_days
    )
    return OperatorRedemptionRead.model_validate(out)


def _org(principal: Principal) -> uuid.UUID:
    """The merchant or operator a token acts for (the routes let no other role in)."""
    assert principal.org_id is not None
    return principal.org_id


def _after(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    return decode_cursor(cursor, datetime, uuid.UUID)


def _key(read: ItemRead | OrderRead | MerchantOrderRead | OperatorRedemptionRead) -> list[Any]:
    return [read.created_at, read.id]


_ORDER_FACTS = ("item_id", "merchant_id", "operator_id", "title", "quantity", "points", "status")
_ORDER_TIMES = (
    "voucher_expires_at",
    "refunded_points",
    "created_at",
    "redeemed_at",
    "cancelled_at",
    "expired_at",
)


def _order_events(type_: str, orders: Any) -> list[webhooks_service.Emission]:
    """``type_`` for each order (a row or a dict of its columns): to its merchant, and to the operator whose
    token placed it (that copy names the person by their platform id)."""
    out = []
    for o in orders:
        facts = {
            "order_id": o["id"],
            **{k: o[k] for k in _ORDER_FACTS},
            **{k: o.get(k) for k in _ORDER_TIMES},
        }
        out.append(webhooks_service.Emission(o["merchant_id"], type_, "mall_order", str(o["id"]), facts))
        if o["operator_id"] is not None:
            mine = {**facts, "user_id": o["user_id"]}
            out.append(webhooks_service.Emission(o["operator_id"], type_, "mall_order", str(o["id"]), mine))
    return out


# ---- items -----------------------------------------------------------------------------------------------


def _check_window(starts: datetime | None, ends: datetime | None) -> None:
    if starts is not None and ends is not None and ends <= starts:
        raise InvalidSaleWindow()


async def _check_operators(
    session: AsyncSession, operator_ids: list[uuid.UUID] | None
) -> list[uuid.UUID] | None:
    if operator_ids is None:
        return None
    unique = sorted(set(operator_ids))
    if not unique:
        raise UnknownOperator("name at least one operator, or send null for everyone")
    for operator_id in unique:
        try:
            org = await org_service.get(session, operator_id)
        except OrganizationNotFound as exc:
            raise UnknownOperator(f"{operator_id} is not a registered operator") from exc
        if org.kind != "operator":
            raise UnknownOperator(f"{operator_id} is not an operator")
    return unique


async def create_item(session: AsyncSession, merchant: Principal, data: ItemCreate) -> ItemRead:
    _check_window(data.sale_starts_at, data.sale_ends_at)
    operator_ids = await _check_operators(session, data.operator_ids)
    conn = await db.raw_connection(session)
    now = clock.now()
    row = await repo.insert_item(
        conn,
        {
            "id": uuid.uuid4(),
            "merchant_id": merchant.org_id,
            "title": data.title,
            "description": data.description,
            "images": json.dumps([str(u) for u in data.images]),
            "points_price": data.points_price,
            "per_user_limit": data.per_user_limit,
            "sale_starts_at": data.sale_starts_at,
            "sale_ends_at": data.sale_ends_at,
            "voucher_valid_days": data.voucher_valid_days,
            "operator_ids": operator_ids,
            "expiry_policy": data.expiry_policy,
            "status": "active",
            "created_at": now,
            "updated_at": now,
        },
        data.stock,
    )
    return _item_out(row)


async def _own_item(conn, merchant: Principal, item_id: uuid.UUID, *, lock: bool = False):
    row = await repo.item(conn, item_id, lock=lock)
    if row is None:
        raise ItemNotFound()
    if row["merchant_id"] != merchant.org_id:
        raise NotItemOwner()
    return row


async def update_item(
    session: AsyncSession, merchant: Principal, item_id: uuid.UUID, data: ItemUpdate
) -> ItemRead:
    """Edit an item. Orders already placed keep their own price and terms."""
    changes = data.model_dump(exclude_unset=True)
    nulled = sorted(NOT_NULLABLE & {k for k, v in changes.items() if v is None})
    if nulled:
        raise FieldNotNullable(f"{', '.join(nulled)} cannot be null")
    conn = await db.raw_connection(session)
    row = await _own_item(conn, merchant, item_id, lock=True)
    if row["status"] == "ended":
        raise InvalidItemTransition("the sale of this item has ended; list a new item instead")
    _check_window(
        changes.get("sale_starts_at", row["sale_starts_at"]), changes.get("sale_ends_at", row["sale_ends_at"])
    )
    if "operator_ids" in changes:
        changes["operator_ids"] = await _check_operators(session, data.operator_ids)
    if "images" in changes:
        changes["images"] = json.dumps([str(u) for u in data.images or []])
    set_stock = "stock" in changes
    stock = changes.pop("stock", None)
    return _item_out(
        await repo.update_item(conn, item_id, changes, clock.now(), set_stock=set_stock, stock=stock)
    )


TRANSITIONS = {
    "pause": (("active",), "paused"),
    "resume": (("paused",), "active"),
    "end": (("active", "paused"), "ended"),
}


async def transition_item(
    session: AsyncSession, merchant: Principal, item_id: uuid.UUID, action: str
) -> ItemRead:
    sources, target = TRANSITIONS[action]
    conn = await db.raw_connection(session)
    row = await repo.transition_item(conn, item_id, _org(merchant), sources, target, clock.now())
    if row is None:
        current = await _own_item(conn, merchant, item_id)
        raise InvalidItemTransition(f"cannot {action} an item that is {current['status']}")
    return _item_out(row)


async def get_own_item(session: AsyncSession, merchant: Principal, item_id: uuid.UUID) -> ItemRead:
    """One of the merchant's own items, whatever its status (another merchant's: ``not_item_owner``)."""
    return _item_out(await _own_item(await db.raw_connection(session), merchant, item_id))


async def get_item(session: AsyncSession, item_id: uuid.UUID) -> ItemRead:
    row = await repo.item(await db.raw_connection(session), item_id)
    if row is None:
        raise ItemNotFound()
    return _item_out(row)


async def list_items(
    session: AsyncSession,
    *,
    merchant: Principal | None = None,
    merchant_id: uuid.UUID | None = None,
    min_price: int | None = None,
    max_price: int | None = None,
    in_stock: bool | None = None,
    status: str | None = None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:  # a page of ItemRead
    """Public: what can be bought (active, sale not over). A merchant: its own items, any status."""
    rows = await repo.list_items(
        await db.raw_connection(session),
        public=merchant is None,
        merchant_id=merchant.org_id if merchant else merchant_id,
        min_price=min_price,
        max_price=max_price,
        in_stock=in_stock,
        status=status,
        now=clock.now(),
        after=_after(cursor),
        limit=limit,
    )
    return page([_item_out(r) for r in rows], limit, _key)


# ---- orders ----------------------------------------------------------------------------------------------


def _check_buyable(item: Any, user: Principal, quantity: int, now: datetime) -> Any:
    """The item, if ``user`` may buy ``quantity`` of it at ``now``; else the reason why not."""
    if item is None:
        raise ItemNotFound()
    if item["status"] == "paused":
        raise ItemPaused()
    if item["status"] == "ended" or (item["sale_ends_at"] is not None and now >= item["sale_ends_at"]):
        raise SaleEnded()
    if item["sale_starts_at"] is not None and now < item["sale_starts_at"]:
        raise OutsideSaleWindow(f"on sale from {item['sale_starts_at'].isoformat()}")
    if item["operator_ids"] is not None and user.org_id not in item["operator_ids"]:
        raise ItemRestricted()
    if item["stock"] is not None and item["stock"] < quantity:
        raise OutOfStock(f"{item['stock']} left")
    if item["per_user_limit"] is not None and quantity > item["per_user_limit"]:
        raise PerUserLimitExceeded(f"at most {item['per_user_limit']} per person")
    return item


class PlaceOutcome(StrEnum):
    """What ``repository.place`` answers: the order placed, or the rule that refused it."""

    placed = "placed"
    refused = "refused"  # by the item's own rules: :func:`_check_buyable` names which
    insufficient_points = "insufficient_points"
    out_of_stock = "out_of_stock"
    per_user_limit = "per_user_limit"
    busy = "busy"  # sent in a group, it found every free stock slot of its item held: placed again alone
    caller_refused = "caller_refused"  # the caller's standing, which the statement checked: read to say why


@dataclass(frozen=True, slots=True)
class Placed:
    """A placed order's answer: its JSON as the order's statement made it (and stored it under the request's
    Idempotency-Key), sent as it is."""

    body: bytes

    @property
    def order(self) -> OrderRead:
        return OrderRead.model_validate_json(self.body)


_FILLED_BY_THE_ORDER = ("merchant_id", "title", "unit_price", "points", "expires_at", "expiry_policy")
"""The answer's values only the order's statement knows, in the order ``mall_order_request`` fills them."""


async def place_order(session: AsyncSession, user: Principal, item_id: uuid.UUID, quantity: int) -> Placed:
    """Spend the points, take the stock, count the person's units, issue the voucher, tell the merchant and the
    app (order.created), audit the spend and answer: one statement (``repository.place``), which also takes the
    request's deferred Idempotency-Key (:func:`app.core.idempotency.defer`) if it has one and stores the answer
    under it. On the direct path it is the request's own transaction, with no ``BEGIN`` or ``COMMIT``, and is sent
    together with the other requests' orders waiting at the same time (:class:`app.core.coalesce.Together`,
    ``repository.place_together``): one statement and one commit for them all, each its own answer; otherwise it
    runs on the request's connection (:func:`app.core.db.statement_connection`). An order its group found no free
    stock slot for (every one held) was not placed there, and is placed alone on the request's connection.

    A caller whose standing this process does not know (:func:`app.core.callers.deferred`) is checked by the same
    statement, first: refused, nothing was done, and the standing is read as on every route to say why.

    A refusal raises and has changed nothing (the statement undid what the order did before it).
    """
    if type(quantity) is not int or not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidQuantity()
    now = clock.now()
    order_id = ids.uuid7()  # time-ordered: each order's index entries go to the newest pages
    code = vouchers.new_code()
    digest = vouchers.digest(code)
    assert digest is not None  # a code just made is well-formed
    key = idempotency.deferred(session)  # the route's Idempotency-Key, taken by the same statement
    caller = callers.deferred(session)  # the caller's standing, when the statement is to check it
    later = sqljson.later
    answer = {  # OrderRead's fields, in its order
        "id": order_id,
        "item_id": item_id,
        "merchant_id": later("merchant_id"),
        "title": later("title"),
        "quantity": quantity,
        "unit_price": later("unit_price"),
        "points": later("points"),
        "status": "issued",
        "voucher": {"code": code, "expires_at": later("expires_at")},
        "expiry_policy": later("expiry_policy"),
        "refunded_points": 0,
        "created_at": now,
        "redeemed_at": None,
        "cancelled_at": None,
        "expired_at": None,
    }
    # order.created, to the merchant (null: the statement knows it) and the app; the statement adds the rest
    created = {
        "id": order_id,
        "item_id": item_id,
        "merchant_id": None,
        "operator_id": user.org_id,
        "user_id": user.subject,
        "title": None,
        "quantity": quantity,
        "points": None,
        "status": "issued",
        "voucher_expires_at": None,
        "refunded_points": 0,
        "created_at": now,
    }
    request = repo.order_request(
        key=key.args if key is not None else None,
        item_id=item_id,
        user_id=user.subject,
        operator_id=user.org_id,
        quantity=quantity,
        now=now,
        order_id=order_id,
        digest=digest,
        sealed=vouchers.seal(code, order_id),
        events=webhooks_service.columns(_order_events("order.created", [created])),
        # the ledger's record of the spend, as app.points.service.spend writes it
        audit=audit.statement_entry(
            actor=f"user:{user.subject}",
            action="points.redeemed",
            subject_type="user",
            subject_id=user.subject,
            data={
                "points": later("points"),
                "ref_type": "mall_order",
                "ref_id": str(order_id),
                "entry_id": later("entry_id"),
            },
            later=("entry_id", "points"),
        ),
        body=sqljson.template(
            orjson.dumps(answer, default=str, option=orjson.OPT_UTC_Z).decode(), _FILLED_BY_THE_ORDER
        ),
        caller=(caller is not None, caller.family if caller is not None else None),
    )
    row = await _ORDERS.run(session, request)
    if row["outcome"] == PlaceOutcome.busy:  # its group undid it and released the key's lock with its commit
        row = await repo.place(await db.statement_connection(session), request)
    if caller is not None:
        if row["outcome"] != PlaceOutcome.caller_refused:
            caller.found_good()
        else:
            await caller.read(session)  # raises why, as every route refuses the caller
            # good again since the statement looked (a reinstatement in between): placed as for a caller known
            request = request._replace(check_caller=False)
            row = await repo.place(await db.statement_connection(session), request)
    if key is not None:
        key.settle(row)  # a key in use or reused, or a replay, raises: nothing was placed
    outcome = PlaceOutcome(row["outcome"])
    if outcome is PlaceOutcome.refused:
        _check_buyable(row if row["merchant_id"] is not None else None, user, quantity, now)
        raise AssertionError("mall_place_order refused an item _check_buyable accepts")
    if outcome is PlaceOutcome.insufficient_points:
        raise InsufficientPoints(f"{row['points']} points needed")
    if outcome is PlaceOutcome.out_of_stock:
        raise OutOfStock()
    if outcome is PlaceOutcome.per_user_limit:
        raise PerUserLimitExceeded(f"at most {row['per_user_limit']} per person; you hold {row['held']}")
    return Placed(bytes(row["body"]))


def _kept_apart(request: repo.OrderRequest) -> tuple[Hashable, ...]:
    """What two orders sent together must not share: their Idempotency-Key (alone, the second is answered 409 in
    use; in one statement it would find the first's record and answer its response). Orders of one item may: each
    takes a stock slot nobody holds, and one that finds none does not wait in its group (``busy``, placed again
    alone), so a hot item's orders go together like any others."""
    return () if request.key is None else ((request.scope, request.key),)


_ORDERS = coalesce.Together(
    repo.place,
    repo.place_together,
    keys=_kept_apart,
    # the order a group takes its audit chains' heads in, the same in every group: no two groups wait for each
    # other's (the accounts are locked before any, by person)
    order=lambda r: (r.audit_chain, r.user_id),
)


def _mine(row, user: Principal) -> bool:
    """The person's order; through an operator's user token (``org_id``), one placed through that operator."""
    return row["user_id"] == user.subject and (user.org_id is None or row["operator_id"] == user.org_id)


async def _own_order(session: AsyncSession, user: Principal, order_id: uuid.UUID):
    """The person's own order (through an operator's token, one placed through it); anyone else's is not found."""
    row = await repo.order(await db.raw_connection(session), order_id)
    if row is None or not _mine(row, user):
        raise OrderNotFound()
    return row


async def get_order(session: AsyncSession, user: Principal, order_id: uuid.UUID) -> OrderRead:
    return _order_out(await _own_order(session, user, order_id))


async def list_my_orders(
    session: AsyncSession, user: Principal, *, status: str | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    """The person's orders; through an operator's user token, only those placed through that operator."""
    rows = await repo.list_orders(
        await db.raw_connection(session),
        user_id=user.subject,
        operator_id=user.org_id,
        status=status,
        after=_after(cursor),
        limit=limit,
    )
    return page([_order_out(r) for r in rows], limit, _key)


async def list_merchant_orders(
    session: AsyncSession,
    merchant: Principal,
    *,
    status: str | None,
    item_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    rows = await repo.list_orders(
        await db.raw_connection(session),
        merchant_id=merchant.org_id,
        status=status,
        item_id=item_id,
        after=_after(cursor),
        limit=limit,
    )
    return page([_merchant_order_out(r) for r in rows], limit, _key)


async def get_merchant_order(
    session: AsyncSession, merchant: Principal, order_id: uuid.UUID
) -> MerchantOrderRead:
    """One order of the merchant's items (no voucher code); another merchant's is not found."""
    row = await repo.order(await db.raw_connection(session), order_id)
    if row is None or row["merchant_id"] != merchant.org_id:
        raise OrderNotFound()
    return _merchant_order_out(row)


async def voucher_qr(session: AsyncSession, user: Principal, order_id: uuid.UUID, kind: str) -> bytes:
    """The voucher code of the person's own order as a QR image (``svg`` or ``png``) for the counter to scan,
    while the counter would take it: a used, cancelled or expired voucher has no image (the till would refuse
    it), with the same errors as the till's."""
    row = await _own_order(session, user, order_id)
    _refuse_closed(row)
    return vouchers.qr_image(vouchers.unseal(row["voucher_sealed"], row["id"]), kind)


@dataclass(frozen=True, slots=True)
class Spend:
    """What a person's points were spent on: an order of the mall (``quantity`` of the item ``what``, from the
    merchant ``org_id``) or a redemption in an operator's own mall (its description ``what``, or None; the
    operator ``org_id``; no quantity)."""

    ref_type: str  # "mall_order" or "operator_redemption", as the ledger's entries name them
    quantity: int | None
    what: str | None
    org_id: uuid.UUID


async def spends(
    session: AsyncSession, user_id: uuid.UUID, refs: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], Spend]:
    """The person's own spends named by ledger references (``(ref_type, ref_id)``): one statement; a
    reference that is not the person's, or not a spend, is left out."""
    wanted: dict[str, list[uuid.UUID]] = {"mall_order": [], "operator_redemption": []}
    for ref_type, ref_id in refs:
        if ref_type in wanted:
            try:
                wanted[ref_type].append(uuid.UUID(ref_id))
            except ValueError:
                continue
    if not any(wanted.values()):
        return {}
    rows = await repo.spends(
        await db.raw_connection(session), user_id, wanted["mall_order"], wanted["operator_redemption"]
    )
    return {
        (r["ref_type"], str(r["id"])): Spend(r["ref_type"], r["quantity"], r["what"], r["org_id"])
        for r in rows
    }


def status_at(status: str, voucher_expires_at: datetime, now: datetime) -> str:
    """An order's status as the counter finds it at ``now``: an issued voucher past its expiry is ``expired``
    (the till refuses it) before the job that closes it has run."""
    return "expired" if status == "issued" and voucher_expires_at <= now else status


def _refuse_closed(order) -> None:
    """The till's error for an order whose voucher the counter would not take now (used, cancelled, expired)."""
    now = clock.now()
    if status_at(order["status"], order["voucher_expires_at"], now) != "issued":
        raise _closed(order, now)


def _closed(order, now: datetime) -> Exception:
    """The error for an order that is no longer ``issued`` (or whose voucher has run out)."""
    if order["status"] == "redeemed":
        return VoucherRedeemed(f"used at {order['redeemed_at'].isoformat()}")
    if order["status"] == "cancelled":
        return VoucherCancelled(f"cancelled at {order['cancelled_at'].isoformat()}")
    return VoucherExpired(f"expired at {order['voucher_expires_at'].isoformat()}")


async def _guess_allowed(merchant: Principal) -> None:
    """429 once the merchant has used up its allowance of wrong codes this minute."""
    await ratelimit.hit(
        f"voucher-guess:{merchant.org_id}", get_settings().voucher_guess_limit_per_minute, cost=0
    )


async def _not_found(merchant: Principal) -> VoucherNotFound:
    """A wrong code (or another merchant's): it counts against the guessing allowance."""
    await ratelimit.hit(f"voucher-guess:{merchant.org_id}", get_settings().voucher_guess_limit_per_minute)
    return VoucherNotFound()


async def look_up_voucher(session: AsyncSession, merchant: Principal, code: str) -> VoucherPreview:
    """What a voucher buys, for the counter to show before using it: the same answers as
    :func:`redeem_voucher` (another merchant's code is not found, and counts as a wrong guess)."""
    await _guess_allowed(merchant)
    digest = vouchers.digest(code)
    state = await repo.voucher(await db.raw_connection(session), digest) if digest else None
    if state is None or state["merchant_id"] != merchant.org_id:
        raise await _not_found(merchant)
    _refuse_closed(state)
    return VoucherPreview(
        order_id=state["id"],
        item_id=state["item_id"],
        title=state["title"],
        quantity=state["quantity"],
        points=state["points"],
        ordered_at=state["created_at"],
        expires_at=state["voucher_expires_at"],
    )


async def redeem_voucher(session: AsyncSession, merchant: Principal, code: str) -> RedeemedVoucher:
    """核销: the item's merchant uses a valid voucher, exactly once.

    A code that does not exist and one of another merchant get the same 404; those failures count
    against the merchant's guessing allowance (``voucher_guess_limit_per_minute``), beyond which
    every attempt gets 429 until the minute is over.
    """
    await _guess_allowed(merchant)
    conn = await db.raw_connection(session)
    now = clock.now()
    digest = vouchers.digest(code)
    row = await repo.redeem(conn, digest, _org(merchant), now) if digest else None
    if row is None:
        state = await repo.voucher(conn, digest) if digest else None
        if state is None or state["merchant_id"] != merchant.org_id:
            raise await _not_found(merchant)
        raise _closed(state, now)
    audit.record(
        session,
        actor=merchant.actor,
        action="mall.voucher_redeemed",
        subject_type="mall_order",
        subject_id=row["id"],
        data={"merchant_id": str(merchant.org_id), "item_id": str(row["item_id"])},
    )
    await webhooks_service.emit_all(session, _order_events("order.redeemed", [dict(row)]))
    return RedeemedVoucher(
        order_id=row["id"],
        item_id=row["item_id"],
        title=row["title"],
        quantity=row["quantity"],
        points=row["points"],
        status="redeemed",
        redeemed_at=row["redeemed_at"],
    )


async def cancel_order(session: AsyncSession, user: Principal, order_id: uuid.UUID) -> OrderRead:
    """The buyer cancels an unused voucher: points back to their lots, stock and allowance back. Once."""
    conn = await db.raw_connection(session)
    now = clock.now()
    row = await repo.cancel(conn, order_id, user.subject, now, user.org_id)
    if row is None:
        state = await repo.order(conn, order_id)
        if state is None or not _mine(state, user):
            raise OrderNotFound()
        raise _closed(state, now)
    await points_service.refund(session, row["spend_entry_id"], ref_type="mall_order", ref_id=str(order_id))
    await repo.return_stock(conn, [(row["item_id"], row["quantity"])])
    await repo.release_purchases(conn, [(row["item_id"], row["user_id"], row["quantity"])])
    audit.record(
        session,
        actor=user.actor,
        action="mall.order_cancelled",
        subject_type="user",
        subject_id=user.subject,
        data={"order_id": str(order_id), "points": row["points"]},
    )
    await webhooks_service.emit_all(session, _order_events("order.cancelled", [dict(row)]))
    return _order_out(row)


async def expire_vouchers(
    session: AsyncSession, *, now: datetime | None = None, limit: int = 500
) -> VoucherExpiry:
    """Expire up to ``limit`` unused vouchers past their time, each exactly once, per its order's policy:
    ``refund`` gives the points back (accounts locked in ``user_id`` order), ``forfeit`` keeps them
    spent. Stock goes back either way; the per-person allowance only with the refund."""
    conn = await db.raw_connection(session)
    now = now or clock.now()
    rows = await repo.expire_due(conn, now, limit)
    if not rows:
        return VoucherExpiry(0, 0, 0, 0)
    refunds = sorted((r for r in rows if r["refunded_points"]), key=lambda r: (r["user_id"], r["id"]))
    for r in refunds:
        await points_service.refund(session, r["spend_entry_id"], ref_type="mall_order", ref_id=str(r["id"]))
    await repo.return_stock(conn, [(r["item_id"], r["quantity"]) for r in rows])
    await repo.release_purchases(conn, [(r["item_id"], r["user_id"], r["quantity"]) for r in refunds])
    result = VoucherExpiry(
        orders=len(rows),
        refunded=len(refunds),
        forfeited=len(rows) - len(refunds),
        points_refunded=sum(r["points"] for r in refunds),
    )
    audit.record(
        session,
        actor="platform",
        action="mall.vouchers_expired",
        subject_type="mall_expiry",
        subject_id=now.isoformat(),
        data=asdict(result),
    )
    await webhooks_service.emit_all(session, _order_events("order.expired", [dict(r) for r in rows]))
    return result


# ---- operator-mall redemptions (SZ 23) -------------------------------------------------------------------


async def operator_redeem(
    session: AsyncSession, user: Principal, data: OperatorRedemptionCreate
) -> Redemption:
    """Points the person used in the operator's own mall, spent and cancelled here; idempotent by the
    operator's order id (a repeat returns the first result, ``created`` False)."""
    operator_id = user.org_id
    if operator_id is None:
        raise OperatorRequired()
    if type(data.points) is not int or not 1 <= data.points <= MAX_POINTS:
        raise InvalidPoints()
    conn = await db.raw_connection(session)
    now = clock.now()
    redemption_id = ids.uuid7()
    claimed = await repo.claim_redemption(
        conn,
        redemption_id,
        operator_id,
        data.operator_order_id,
        user.subject,
        data.points,
        data.description,
        now,
    )
    if not claimed:
        first = await repo.redemption(conn, operator_id, data.operator_order_id)
        assert first is not None  # claimed before, and redemptions are never deleted
        if first["user_id"] != user.subject or first["points"] != data.points:
            raise OperatorOrderConflict()
        return Redemption(_redemption_out(first), created=False)
    spent = await points_service.spend(
        session,
        user.subject,
        data.points,
        ref_type="operator_redemption",
        ref_id=str(redemption_id),
        memo=data.description or None,
    )
    row = await repo.set_redemption_entry(conn, redemption_id, spent.entry_id)
    audit.record(
        session,
        actor=user.actor,
        action="mall.operator_redemption",
        subject_type="user",
        subject_id=user.subject,
        data={
            "operator_id": str(user.org_id),
            "operator_order_id": data.operator_order_id,
            "points": data.points,
        },
    )
    return Redemption(_redemption_out(row), created=True)


async def reverse_redemption(
    session: AsyncSession, operator: Principal, operator_order_id: str
) -> OperatorRedemptionRead:
    """The operator reverses one of its redemptions within the window: the points go back. Once."""
    conn = await db.raw_connection(session)
    now = clock.now()
    window = timedelta(days=get_settings().operator_redemption_reversal_days)
    row = await repo.reverse_redemption(conn, _org(operator), operator_order_id, now, now - window)
    if row is None:
        state = await repo.redemption(conn, _org(operator), operator_order_id)
        if state is None:
            raise RedemptionNotFound()
        if state["status"] == "reversed":
            raise RedemptionReversed(f"reversed at {state['reversed_at'].isoformat()}")
        raise ReversalWindowClosed(f"reversible until {(state['created_at'] + window).isoformat()}")
    await points_service.refund(
        session, row["spend_entry_id"], ref_type="operator_redemption", ref_id=str(row["id"])
    )
    audit.record(
        session,
        actor=operator.actor,
        action="mall.operator_redemption_reversed",
        subject_type="user",
        subject_id=row["user_id"],
        data={"operator_order_id": operator_order_id, "points": row["points"]},
    )
    await webhooks_service.emit(
        session,
        org_id=row["operator_id"],
        type="operator_redemption.reversed",
        subject_type="operator_redemption",
        subject_id=row["id"],
        payload={
            "redemption_id": row["id"],
            "operator_order_id": operator_order_id,
            "user_id": row["user_id"],
            "points": row["points"],
            "created_at": row["created_at"],
            "reversed_at": row["reversed_at"],
        },
    )
    return _redemption_out(row)


async def list_redemptions(
    session: AsyncSession, operator: Principal, limit: int, cursor: str | None
) -> dict:
    rows = await repo.list_redemptions(
        await db.raw_connection(session), _org(operator), _after(cursor), limit
    )
    return page([_redemption_out(r) for r in rows], limit, _key)


async def person_redemptions(
    session: AsyncSession, user_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[OperatorRedemptionRead]:
    """The person's own redemptions in operators' malls among ``ids`` (those their ledger names), newest first."""
    if not ids:
        return []
    rows = await repo.redemptions_by_id(await db.raw_connection(session), user_id, list(ids))
    return [_redemption_out(r) for r in rows]


# ---- statements and reports ------------------------------------------------------------------------------


def _day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[local midnight of ``first``, local midnight after ``last``) in the platform's time zone."""
    tz = clock.zone()
    return datetime.combine(first, time(0), tz), datetime.combine(last + timedelta(days=1), time(0), tz)


async def statement(session: AsyncSession, merchant: Principal, day: date) -> Statement:
    start, end = _day_bounds(day, day)
    lines = await repo.statement(await db.raw_connection(session), _org(merchant), start, end)

    def line(name: str) -> StatementLine:
        n, q, p = lines.get(name, (0, 0, 0))
        return StatementLine(count=n, quantity=q, points=p)

    return Statement(
        day=day,
        timezone=get_settings().timezone,
        merchant_id=_org(merchant),
        ordered=line("ordered"),
        redeemed=line("redeemed"),
        cancelled=line("cancelled"),
        expired_refunded=line("expired_refunded"),
        expired_forfeited=line("expired_forfeited"),
    )


async def used_points(
    session: AsyncSession, principal: Principal, *, group_by: str, first: date, last: date
) -> UsedPointsReport:
    """Used points per local day: per merchant (mall orders) or per operator (its own mall's redemptions).

    ``points_used`` counts orders placed that day, ``points_refunded`` what was given back that day
    (cancellations, refunds on expiry, reversals). A merchant or operator sees only its own rows.
    """
    if first > last or (last - first).days >= MAX_REPORT_DAYS:
        raise InvalidPeriod()
    start, end = _day_bounds(first, last)
    own = principal.org_id if principal.role in ("merchant", "operator") else None
    tz = get_settings().timezone
    rows = await repo.used_points(await db.raw_connection(session), group_by, start, end, tz, own)
    out_rows = [  # only the row's own key is set: the JSON holds merchant_id or operator_id, not both
        UsedPointsRow.model_validate(
            {
                "day": r["day"],
                f"{group_by}_id": r["key"],
                "orders": r["orders"],
                "points_used": r["points_used"],
                "points_refunded": r["points_refunded"],
                "net_points": r["points_used"] - r["points_refunded"],
            }
        )
        for r in rows
    ]
    totals = {
        k: sum(getattr(r, k) for r in out_rows)
        for k in ("orders", "points_used", "points_refunded", "net_points")
    }
    return UsedPointsReport.model_validate(
        {"group_by": group_by, "timezone": tz, "from": first, "to": last, "rows": out_rows, "totals": totals}
    )


def used_points_json(report: UsedPointsReport) -> dict[str, Any]:
    """The report as the JSON body: ``from`` by its name, each row with its own key only."""
    return report.model_dump(by_alias=True, exclude_unset=True)


def used_points_csv(report: UsedPointsReport) -> str:
    key = f"{report.group_by}_id"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["day", key, "orders", "points_used", "points_refunded", "net_points"])
    for r in report.rows:
        writer.writerow(
            [r.day.isoformat(), getattr(r, key), r.orders, r.points_used, r.points_refunded, r.net_points]
        )
    return buffer.getvalue()


@dataclass(frozen=True)
class MerchantActivity:
    """What happened in one merchant's part of the mall over a period (the authority's dashboard)."""

    merchant_id: uuid.UUID
    orders: int
    points: int
    redeemed: int
    cancelled: int
    expired: int
    refunded_points: int


async def merchant_activity(session: AsyncSession, first: date, last: date) -> list[MerchantActivity]:
    """Every merchant with orders placed, closed or refunded from ``first`` to ``last`` (local days)."""
    start, end = _day_bounds(first, last)
    rows = await repo.merchant_activity(await db.raw_connection(session), start, end)
    return [MerchantActivity(**dict(r)) for r in rows]
