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
from app.organizations import service as organizations_service
from app.points import service as points_service
from app.users import repository, sessions
from app.users import service as users_service
from app.users.exceptions import NotEntrusted
from app.users.schemas import AccountDeletion, Withdrawal
from app.webhooks import service as webhooks_service

EXPORT_LIMIT = 10_000


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


async def overview(session: AsyncSession, user_id: uuid.UUID) -> Overview:
    """The person's page: their points and what expires when, live entrustments newest first, then withdrawn ones."""
    views = await _views(session, user_id)
    return Overview(
        account=await points_service.account(session, user_id),
        live=[v for v in reversed(views) if v.live],
        withdrawn=sorted(
            (v for v in views if not v.live), key=lambda v: v.withdrawn_at or v.accepted_at, reverse=True
        ),
    )


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
    """Everything the platform holds about the person (their data export, PIPL art. 45)."""
    user_id = person.subject
    ledger = await points_service.ledger(session, user_id, EXPORT_LIMIT, None)
    behaviours = await points_service.behaviours(session, user_id, EXPORT_LIMIT, None)
    audit.record(session, actor=person.actor, action="user.exported", subject_type="user", subject_id=user_id)
    return {
        "user_id": user_id,
        "entrustments": await users_service.entrustments(session, user_id),
        "account": await points_service.account(session, user_id),
        "ledger": ledger["items"],
        "behaviours": behaviours["items"],
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
