"""People and their entrustments of operators (SZ 6, 21; personal data SZ 30–31)."""

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.core import audit, clock, db
from app.users import repository
from app.users.exceptions import AlreadyEntrusted, ExternalIdTaken, InvalidConsent, NotEntrusted
from app.users.identity import identity_hash
from app.users.schemas import AccountDeletion, Enrolment, EnrolUser, EntrustmentRead, Withdrawal


@dataclass(frozen=True)
class UserStanding:
    """What every request of a user token checks: the account, its operator, the entrustment."""

    deleted: bool
    operator_status: str
    entrusted: bool  # a live entrustment of the token's operator


async def enrol(session: AsyncSession, operator: Principal, data: EnrolUser) -> Enrolment:
    now = clock.now()
    if data.consent.accepted_at > now:
        raise InvalidConsent("consent.accepted_at is in the future")
    assert operator.org_id is not None  # an operator's client token names its organisation
    digest = identity_hash(data.identifier.type, data.identifier.value)
    # One account per person, whichever operator enrols them first.
    user_id = await repository.upsert_person(session, digest, now)
    live = await repository.live_entrustments_locked(session, operator.org_id, data.external_user_id, user_id)
    for row in live:
        if row.external_user_id == data.external_user_id and row.user_id == user_id:
            return Enrolment(
                user_id=user_id, external_user_id=row.external_user_id,
                agreement_version=row.agreement_version, accepted_at=row.accepted_at, created=False,
            )
        if row.external_user_id == data.external_user_id:
            raise ExternalIdTaken("this external_user_id is enrolled for another person; withdraw it first")
        raise AlreadyEntrusted(f"this person is enrolled here as {row.external_user_id!r}")
    withdrawn_at = await repository.last_withdrawal(session, user_id, operator.org_id)
    if withdrawn_at is not None and data.consent.accepted_at <= withdrawn_at:
        # a withdrawal ends every earlier consent: a re-enrolment never reaches back before it
        raise InvalidConsent(
            "consent.accepted_at must be after the withdrawal of the previous entrustment"
            f" ({withdrawn_at.isoformat()})"
        )
    inserted = await repository.insert_entrustment(
        session, operator.org_id, user_id, data.external_user_id, data.consent.agreement_version,
        data.consent.accepted_at, now,
    )
    if not inserted:  # a concurrent enrolment of another person under this external id won
        raise ExternalIdTaken("this external_user_id was just enrolled for another person")
    audit.record(
        session, actor=operator.actor, action="entrustment.granted", subject_type="user", subject_id=user_id,
        data={"operator_id": str(operator.org_id), "agreement_version": data.consent.agreement_version},
    )
    return Enrolment(
        user_id=user_id, external_user_id=data.external_user_id,
        agreement_version=data.consent.agreement_version, accepted_at=data.consent.accepted_at, created=True,
    )


async def entrusted_user(session: AsyncSession, operator_id: uuid.UUID, external_user_id: str) -> uuid.UUID:
    """The person behind a live entrustment of ``operator_id``, or ``not_entrusted``."""
    user_id = await repository.entrusted_user(session, operator_id, external_user_id)
    if user_id is None:
        raise NotEntrusted()
    return user_id


async def withdraw(session: AsyncSession, operator: Principal, external_user_id: str) -> Withdrawal:
    assert operator.org_id is not None  # an operator's client token names its organisation
    now = clock.now()
    user_id = await repository.withdraw(session, operator.org_id, external_user_id, now)
    if user_id is None:
        raise NotEntrusted()
    audit.record(
        session, actor=operator.actor, action="entrustment.withdrawn", subject_type="user",
        subject_id=user_id, data={"operator_id": str(operator.org_id)},
    )
    return Withdrawal(user_id=user_id, external_user_id=external_user_id, withdrawn_at=now)


async def entrustments(session: AsyncSession, user_id: uuid.UUID) -> list[EntrustmentRead]:
    """Every entrustment the person made, live or withdrawn, oldest first (their data export)."""
    return [EntrustmentRead.model_validate(e) for e in await repository.entrustments(session, user_id)]


async def delete_account(session: AsyncSession, user: Principal) -> AccountDeletion:
    """Anonymise: the identity hash goes, entrustments end, the ledger and its totals stay."""
    now = clock.now()
    await repository.anonymise(session, user.subject, now)
    audit.record(session, actor=user.actor, action="user.deleted", subject_type="user", subject_id=user.subject)
    return AccountDeletion(user_id=user.subject, deleted_at=now)


async def standing(
    session: AsyncSession, user_id: uuid.UUID, operator_id: uuid.UUID | None
) -> UserStanding | None:
    """A user token's standing, per request (one indexed read on asyncpg); None: person or operator unknown."""
    row = await repository.standing(await db.raw_connection(session), user_id, operator_id)
    if row is None:
        return None
    return UserStanding(
        deleted=row["deleted_at"] is not None, operator_status=row["status"], entrusted=row["entrusted"]
    )


# ---- what other domains ask (points) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LiveEntrustment:
    """A live entrustment of an operator: the person behind its external id, counted from ``accepted_at``."""

    external_user_id: str
    user_id: uuid.UUID
    accepted_at: datetime


async def live_entrustments(
    session: AsyncSession, operator_id: uuid.UUID, external_user_ids: Collection[str]
) -> list[LiveEntrustment]:
    """The operator's live entrustments under these external ids (one statement, for batch ingestion)."""
    rows = await repository.live_entrustments(await db.raw_connection(session), operator_id, list(external_user_ids))
    return [LiveEntrustment(r["external_user_id"], r["user_id"], r["accepted_at"]) for r in rows]


async def count_people(session: AsyncSession) -> int:
    """People with an account not deleted (public disclosure)."""
    return await repository.count_people(session)
