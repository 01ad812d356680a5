"""What a person does for themselves on the platform (``/me``, and ``GET /v1/me/export``, ``DELETE /v1/me``
with the same session): see their points and entrustments, withdraw one, export everything, delete the account.

Every action is the person's own, audited as ``user:<id>``; none is open to an operator's user token.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import oauth
from app.auth.principal import Principal
from app.core import audit, clock
from app.mall import service as mall_service
from app.mall.schemas import OrderRead
from app.organizations import service as organizations_service
from app.points import service as points_service
from app.users import repository, sessions
from app.users import service as users_service
from app.users.exceptions import NotEntrusted
from app.users.schemas import AccountDeletion, Withdrawal
from app.webhooks import service as webhooks_service

EXPORT_LIMIT = 10_000
VOUCHERS_SHOWN = 5


@dataclass(frozen=True)
class EntrustmentView:
    """One entrustment as the person sees it."""

    id: int
    operator_id: uuid.UUID
    operator_name: str
    accepted_at: datetime
    agreement_version: str
    confirmed_by: str  # users_service.Confirmation
    confirmed_at: datetime | None
    scopes: list[str]  # what the person granted (empty: an operator-asserted entrustment)
    withdrawn_at: datetime | None

    @property
    def live(self) -> bool:
        return self.withdrawn_at is None


@dataclass(frozen=True)
class Overview:
    account: points_service.Account
    live: list[EntrustmentView]
    withdrawn: list[EntrustmentView]
    vouchers: "Page"  # the newest orders whose voucher is not used yet (OrderLine)


async def _views(session: AsyncSession, user_id: uuid.UUID) -> list[EntrustmentView]:
    rows = await repository.entrustments(session, user_id)
    names = await organizations_service.names(session, [r.operator_id for r in rows])
    return [
        EntrustmentView(
            id=r.id or 0,
            operator_id=r.operator_id,
            operator_name=names.get(r.operator_id, ""),
            accepted_at=r.accepted_at,
            agreement_version=r.agreement_version,
            confirmed_by=r.confirmed_by,
            confirmed_at=r.confirmed_at,
            scopes=(r.scope or "").split(),
            withdrawn_at=r.withdrawn_at,
        )
        for r in rows
    ]


async def _usable_vouchers(session: AsyncSession, person: Principal) -> "Page":
    """The newest ``VOUCHERS_SHOWN`` issued vouchers, less any already past its expiry."""
    shown = await orders(session, person, "issued", VOUCHERS_SHOWN, None)
    return Page([line for line in shown.items if line.status == "issued"], shown.next_cursor)


async def overview(session: AsyncSession, person: Principal) -> Overview:
    """The person's page: their points and what expires when, the vouchers not used yet (the newest
    ``VOUCHERS_SHOWN``), live entrustments newest first, then withdrawn ones."""
    user_id = person.subject
    views = await _views(session, user_id)
    return Overview(
        vouchers=await _usable_vouchers(session, person),
        account=await points_service.account(session, user_id),
        live=[v for v in reversed(views) if v.live],
        withdrawn=sorted(
            (v for v in views if not v.live), key=lambda v: v.withdrawn_at or v.accepted_at, reverse=True
        ),
    )


@dataclass(frozen=True)
class HistoryLine:
    """A ledger entry of the person's with where it came from: ``source`` the organisation's name (the operator
    whose batch earned it, the merchant of an order, the operator of a redemption; "" for none), ``spend`` what
    an order or a redemption bought (None for other entries)."""

    entry: points_service.Entry
    source: str
    spend: mall_service.Spend | None


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_cursor: str | None


async def history(
    session: AsyncSession,
    user_id: uuid.UUID,
    limit: int,
    cursor: str | None,
    operator_id: uuid.UUID | None = None,
) -> Page:
    """A page of the person's whole ledger, newest first, whichever app the points came from or went to
    (``invalid_cursor`` for a cursor that is not one); with ``operator_id``, that operator's share of it, as
    the operator's own token reads it (``GET /v1/me/ledger``)."""
    result = await points_service.ledger(session, user_id, limit, cursor, operator_id=operator_id)
    entries: list[points_service.Entry] = result["items"]
    batch_of = {e.id: batch for e in entries if e.ref_type == "batch" and (batch := _uuid(e.ref_id))}
    operators = await points_service.batch_operators(session, list(batch_of.values())) if batch_of else {}
    spends = await mall_service.spends(session, user_id, [(e.ref_type, e.ref_id) for e in entries])

    def source(e: points_service.Entry) -> uuid.UUID | None:
        if (spend := spends.get((e.ref_type, e.ref_id))) is not None:
            return spend.org_id
        return operators.get(batch_of[e.id]) if e.id in batch_of else None

    sources = {e.id: source(e) for e in entries}
    names = await organizations_service.names(session, list(sources.values()))
    lines = [
        HistoryLine(
            e, names.get(org, "") if (org := sources[e.id]) else "", spends.get((e.ref_type, e.ref_id))
        )
        for e in entries
    ]
    return Page(lines, result["next_cursor"])


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class BehaviourLine:
    """An accepted behaviour record of the person's, with the name of the operator that sent it."""

    behaviour: points_service.Behaviour
    operator_name: str


async def behaviours(
    session: AsyncSession,
    user_id: uuid.UUID,
    limit: int,
    cursor: str | None,
    operator_id: uuid.UUID | None = None,
) -> Page:
    """A page of every behaviour recorded for the person, latest first, whichever operator sent it (with
    ``operator_id``, only that operator's)."""
    result = await points_service.behaviours(session, user_id, limit, cursor, operator_id=operator_id)
    items: list[points_service.Behaviour] = result["items"]
    names = await organizations_service.names(session, [b.operator_id for b in items])
    return Page([BehaviourLine(b, names.get(b.operator_id, "")) for b in items], result["next_cursor"])


@dataclass(frozen=True)
class OrderLine:
    """An order of the person's in the platform's mall, with its merchant's name and its ``status`` as the
    counter would find it now."""

    order: OrderRead  # the voucher's code included
    merchant_name: str
    status: str  # mall_service.status_at


def _line(order: OrderRead, names: dict[uuid.UUID, str], now: datetime) -> OrderLine:
    status = mall_service.status_at(order.status, order.voucher.expires_at, now)
    return OrderLine(order, names.get(order.merchant_id, ""), status)


async def orders(
    session: AsyncSession, person: Principal, status: str | None, limit: int, cursor: str | None
) -> Page:
    """A page of the person's orders, newest first, through whichever app they were placed."""
    result = await mall_service.list_my_orders(session, person, status=status, limit=limit, cursor=cursor)
    names = await organizations_service.names(session, [o.merchant_id for o in result["items"]])
    now = clock.now()
    return Page([_line(o, names, now) for o in result["items"]], result["next_cursor"])


async def order(session: AsyncSession, person: Principal, order_id: uuid.UUID) -> OrderLine:
    """One of the person's orders (``order_not_found`` for another's or none)."""
    found = await mall_service.get_order(session, person, order_id)
    return _line(found, await organizations_service.names(session, [found.merchant_id]), clock.now())


async def cancel_order(session: AsyncSession, person: Principal, order_id: uuid.UUID) -> None:
    """The person cancels their unused voucher (``voucher_redeemed``, ``voucher_cancelled`` or
    ``voucher_expired`` once it is not): the points go back to their lots, as when the app cancels it."""
    await mall_service.cancel_order(session, person, order_id)


async def voucher_qr(session: AsyncSession, person: Principal, order_id: uuid.UUID) -> bytes:
    """The voucher code of the person's own order as a QR code (SVG) for the counter to scan."""
    return await mall_service.voucher_qr(session, person, order_id, "svg")


async def apps(session: AsyncSession, user_id: uuid.UUID) -> dict[uuid.UUID, str]:
    """Every app the person entrusted, live or withdrawn, by name: what their records can be filtered by."""
    return {v.operator_id: v.operator_name for v in await _views(session, user_id)}


async def entrustment(session: AsyncSession, user_id: uuid.UUID, entrustment_id: int) -> EntrustmentView:
    """The person's own entrustment ``entrustment_id`` (``not_entrusted`` when it is someone else's or none)."""
    for view in await _views(session, user_id):
        if view.id == entrustment_id:
            return view
    raise NotEntrusted("no such entrustment of yours")


async def withdraw(session: AsyncSession, person: Principal, entrustment_id: int) -> Withdrawal:
    """The person withdraws their live entrustment ``entrustment_id``: from now on the operator's records of
    them are ``not_entrusted``, every refresh-token family of (person, operator) is revoked so its user
    tokens stop at once, and the operator's next refresh answers ``entrustment_withdrawn``."""
    now = clock.now()
    row = await repository.own_entrustment(session, person.subject, entrustment_id)
    operator_id = await repository.withdraw_own(session, person.subject, entrustment_id, now)
    if row is None or operator_id is None:
        raise NotEntrusted("no live entrustment of yours with this id")
    revoked = await oauth.revoke_person_tokens(session, person.subject, operator_id)
    audit.record(
        session,
        actor=person.actor,
        action="entrustment.withdrawn",
        subject_type="user",
        subject_id=person.subject,
        data={"operator_id": str(operator_id), "by": "person", "refresh_tokens_revoked": revoked},
    )
    await webhooks_service.emit(
        session,
        org_id=operator_id,
        type="entrustment.withdrawn",
        subject_type="entrustment",
        subject_id=row.external_user_id,
        payload={"external_user_id": row.external_user_id, "withdrawn_at": now, "by": "person"},
    )
    return Withdrawal(user_id=person.subject, external_user_id=row.external_user_id, withdrawn_at=now)


async def export(session: AsyncSession, person: Principal) -> dict[str, Any]:
    """Everything the platform holds about the person (their data export, PIPL art. 45): entrustments, account,
    ledger, behaviours, orders in the platform's mall (voucher codes included) and redemptions in operators'
    own malls."""
    user_id = person.subject
    ledger = await points_service.ledger(session, user_id, EXPORT_LIMIT, None)
    behaviours = await points_service.behaviours(session, user_id, EXPORT_LIMIT, None)
    bought = await mall_service.list_my_orders(session, person, status=None, limit=EXPORT_LIMIT, cursor=None)
    redemption_ids = {
        redemption
        for e in ledger["items"]
        if e.ref_type == "operator_redemption" and (redemption := _uuid(e.ref_id)) is not None
    }
    audit.record(session, actor=person.actor, action="user.exported", subject_type="user", subject_id=user_id)
    return {
        "user_id": user_id,
        "entrustments": await users_service.entrustments(session, user_id),
        "account": await points_service.account(session, user_id),
        "ledger": ledger["items"],
        "behaviours": behaviours["items"],
        "orders": bought["items"],
        "operator_redemptions": await mall_service.person_redemptions(session, user_id, list(redemption_ids)),
    }


async def delete_account(session: AsyncSession, person: Principal) -> AccountDeletion:
    """Anonymise the account (:func:`app.users.service.delete_account`), revoke every refresh token of the
    person and end every session of theirs: nothing opens it again."""
    deletion = await users_service.delete_account(session, person)
    await oauth.revoke_person_tokens(session, person.subject)
    await sessions.end_all(session, person.subject)
    return deletion


async def account_live(session: AsyncSession, user_id: uuid.UUID) -> bool:
    return await repository.account_live(session, user_id)
