"""People and their entrustments of operators (SZ 6, 21; personal data SZ 30–31)."""

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.core import audit, clock, coalesce, db, ratelimit, sms
from app.core.config import get_settings
from app.organizations import service as organizations_service
from app.users import repository
from app.users.exceptions import (
    AlreadyEntrusted,
    ExternalIdTaken,
    InvalidConsent,
    NotEntrusted,
    PersonConfirmationRequired,
)
from app.users.identity import identity_hash, normalise_phone
from app.users.models import OneTimeCode
from app.users.schemas import AccountDeletion, Enrolment, EnrolUser, EntrustmentRead, Withdrawal
from app.webhooks import service as webhooks_service


@dataclass(frozen=True)
class UserStanding:
    """What every request of a user token checks: the account, its operator, the entrustment."""

    deleted: bool
    operator_status: str
    entrusted: bool  # a live entrustment of the token's operator


async def enrol(session: AsyncSession, operator: Principal, data: EnrolUser) -> Enrolment:
    """Operator-asserted enrolment: only for an operator the authority trusts to enrol people on its own
    word (``person_confirmation_required`` otherwise); each use is audited."""
    assert operator.org_id is not None  # an operator's client token names its organisation
    profile = await organizations_service.client_profile(session, operator.org_id)
    if profile is None or not profile.trusted_enrolment:
        raise PersonConfirmationRequired()
    now = clock.now()
    if data.consent.accepted_at > now:
        raise InvalidConsent("consent.accepted_at is in the future")
    digest = identity_hash(data.identifier.type, data.identifier.value)
    # One account per person, whichever operator enrols them first.
    user_id = await repository.upsert_person(session, digest, now)
    live = await repository.live_entrustments_locked(session, operator.org_id, data.external_user_id, user_id)
    for row in live:
        if row.external_user_id == data.external_user_id and row.user_id == user_id:
            audit.record(
                session,
                actor=operator.actor,
                action="entrustment.asserted_again",
                subject_type="user",
                subject_id=user_id,
                data={"operator_id": str(operator.org_id), "confirmed_by": "operator_asserted"},
            )
            return Enrolment(
                user_id=user_id,
                external_user_id=row.external_user_id,
                agreement_version=row.agreement_version,
                accepted_at=row.accepted_at,
                created=False,
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
        session,
        operator.org_id,
        user_id,
        data.external_user_id,
        data.consent.agreement_version,
        data.consent.accepted_at,
        now,
    )
    if not inserted:  # a concurrent enrolment of another person under this external id won
        raise ExternalIdTaken("this external_user_id was just enrolled for another person")
    audit.record(
        session,
        actor=operator.actor,
        action="entrustment.granted",
        subject_type="user",
        subject_id=user_id,
        data={
            "operator_id": str(operator.org_id),
            "agreement_version": data.consent.agreement_version,
            "confirmed_by": "operator_asserted",
        },
    )
    return Enrolment(
        user_id=user_id,
        external_user_id=data.external_user_id,
        agreement_version=data.consent.agreement_version,
        accepted_at=data.consent.accepted_at,
        created=True,
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
        session,
        actor=operator.actor,
        action="entrustment.withdrawn",
        subject_type="user",
        subject_id=user_id,
        data={"operator_id": str(operator.org_id)},
    )
    await webhooks_service.emit(
        session,
        org_id=operator.org_id,
        type="entrustment.withdrawn",
        subject_type="entrustment",
        subject_id=external_user_id,
        payload={"external_user_id": external_user_id, "withdrawn_at": now, "by": "operator"},
    )
    return Withdrawal(user_id=user_id, external_user_id=external_user_id, withdrawn_at=now)


async def entrustments(session: AsyncSession, user_id: uuid.UUID) -> list[EntrustmentRead]:
    """Every entrustment the person made, live or withdrawn, oldest first (their data export)."""
    return [EntrustmentRead.model_validate(e) for e in await repository.entrustments(session, user_id)]


async def delete_account(session: AsyncSession, user: Principal) -> AccountDeletion:
    """Anonymise: the identity hash goes, entrustments end (each operator told by ``entrustment.withdrawn``
    with ``reason: account_deleted``), the ledger and its totals stay."""
    now = clock.now()
    ended = await repository.anonymise(session, user.subject, now)
    audit.record(
        session, actor=user.actor, action="user.deleted", subject_type="user", subject_id=user.subject
    )
    await webhooks_service.emit_all(
        session,
        [
            webhooks_service.Emission(
                operator_id,
                "entrustment.withdrawn",
                "entrustment",
                external_user_id,
                {
                    "external_user_id": external_user_id,
                    "withdrawn_at": now,
                    "by": "person",
                    "reason": "account_deleted",
                },
            )
            for operator_id, external_user_id in ended
        ],
    )
    return AccountDeletion(user_id=user.subject, deleted_at=now)


async def _standing(conn: db.Conn, caller: repository.Standing) -> Any:
    return await repository.standing(conn, *caller)


async def _standings(conn: db.Conn, wanted: list[repository.Standing]) -> dict[repository.Standing, Any]:
    return await repository.standings(conn, wanted)


_standings_shared = coalesce.Coalesced(_standing, _standings)
"""User tokens' standings: direct reads waiting at the same time share one statement."""


async def standing(
    session: AsyncSession, user_id: uuid.UUID, operator_id: uuid.UUID | None
) -> UserStanding | None:
    """A user token's standing, per request (one indexed read on asyncpg); None: person or operator unknown."""
    row = await _standings_shared.get(session, (user_id, operator_id))
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
    rows = await repository.live_entrustments(
        await db.raw_connection(session), operator_id, list(external_user_ids)
    )
    return [LiveEntrustment(r["external_user_id"], r["user_id"], r["accepted_at"]) for r in rows]


async def count_people(session: AsyncSession) -> int:
    """People with an account not deleted (public disclosure)."""
    return await repository.count_people(session)


# ---- one-time codes (the person's own confirmation, issue 14) --------------------------------------------

OTP_MESSAGE = "【碳普惠】验证码 {code}，{minutes} 分钟内有效。请勿告诉他人。Carbon points code: {code}"


class CodeOutcome(StrEnum):
    verified = "verified"
    wrong = "wrong"
    expired = "expired"
    exhausted = "exhausted"  # the last allowed attempt went by, or the code was used
    unknown = "unknown"


@dataclass(frozen=True)
class CodeSent:
    """A one-time code on its way: its id, whose phone (as the identity hash) and the number masked."""

    id: uuid.UUID
    identity_hash: bytes
    masked_phone: str


@dataclass(frozen=True)
class CodeCheck:
    outcome: CodeOutcome
    identity_hash: bytes | None
    attempts_left: int


def _code_mac(code_id: uuid.UUID, code: str) -> bytes:
    key = get_settings().identity_hash_key.encode()
    return hmac.new(key, f"otp:{code_id}:{code}".encode(), hashlib.sha256).digest()


async def send_code(session: AsyncSession, phone: str, client_ip: str) -> CodeSent:
    """Send a 6-digit code to ``phone``: ``invalid_identifier``, 429 past the per-phone or per-address budget.

    The code is kept only as an HMAC under the platform key, the phone only as its identity hash;
    the sender gets the number in memory.
    """
    settings = get_settings()
    normalised = normalise_phone(phone)
    digest = identity_hash("phone", normalised)
    await ratelimit.hit(f"otp-ip:{client_ip}", settings.otp_per_ip_per_hour, 3600)
    await ratelimit.hit(f"otp-phone:{digest.hex()}", settings.otp_per_phone_per_hour, 3600)
    now = clock.now()
    code_id = uuid.uuid4()
    code = f"{secrets.randbelow(1_000_000):06d}"
    await repository.insert_code(
        session,
        OneTimeCode(
            id=code_id,
            identity_hash=digest,
            code_hmac=_code_mac(code_id, code),
            created_at=now,
            expires_at=now + timedelta(seconds=settings.otp_ttl_seconds),
        ),
    )
    minutes = max(1, settings.otp_ttl_seconds // 60)
    await sms.send(session, normalised, OTP_MESSAGE.format(code=code, minutes=minutes))
    return CodeSent(code_id, digest, sms.mask(normalised))


async def check_code(session: AsyncSession, code_id: uuid.UUID, code: str) -> CodeCheck:
    """Check a code: every attempt is counted first (at most ``otp_max_attempts``), a right one is used once.

    Returns the outcome rather than raising, so the caller's transaction keeps the counted attempt.
    """
    settings = get_settings()
    row = await repository.count_attempt(session, code_id)
    if row is None:
        return CodeCheck(CodeOutcome.unknown, None, 0)
    left = max(0, settings.otp_max_attempts - row.attempts)
    if row.used_at is not None or row.attempts > settings.otp_max_attempts:
        return CodeCheck(CodeOutcome.exhausted, None, 0)
    now = clock.now()
    if row.expires_at <= now:
        return CodeCheck(CodeOutcome.expired, None, left)
    well_formed = len(code) == 6 and code.isascii() and code.isdigit()
    if not well_formed or not hmac.compare_digest(row.code_hmac, _code_mac(code_id, code)):
        return CodeCheck(CodeOutcome.wrong if left else CodeOutcome.exhausted, None, left)
    if not await repository.mark_code_used(session, code_id, now):
        return CodeCheck(CodeOutcome.exhausted, None, 0)
    return CodeCheck(CodeOutcome.verified, row.identity_hash, left)


# ---- entrustments the person confirmed (the authorization code flow) -------------------------------------


class Confirmation(StrEnum):
    """How an entrustment was confirmed."""

    operator_asserted = "operator_asserted"
    person_otp = "person_otp"


@dataclass(frozen=True)
class ConfirmedEntrustment:
    id: int
    user_id: uuid.UUID
    external_user_id: str
    created: bool  # a new entrustment (else an existing one, now confirmed by the person)


async def confirm_entrustment(
    session: AsyncSession,
    operator_id: uuid.UUID,
    person: bytes,
    agreement_version: str,
    scope: str,
    external_user_id: str | None = None,
) -> ConfirmedEntrustment:
    """The person (by identity hash) confirmed with a one-time code that they entrust ``operator_id``
    with ``scope`` (the OAuth scopes they granted, kept on the entrustment).

    Creates the person's account if new. A live entrustment of (person, operator) is marked confirmed by
    the person; otherwise a new one starts now, under ``external_user_id`` (the person's ``user_id`` when
    not given). ``external_user_id_taken`` when that id is the operator's for another person.
    """
    now = clock.now()
    user_id = await repository.upsert_person(session, person, now)
    live = await repository.live_entrustment_of(session, operator_id, user_id)
    if live is not None and live.id is not None:
        if external_user_id is not None and external_user_id != live.external_user_id:
            raise AlreadyEntrusted(f"this person entrusted you as {live.external_user_id!r}")
        await repository.confirm(session, live.id, agreement_version, scope, now)
        entrustment = ConfirmedEntrustment(live.id, user_id, live.external_user_id, created=False)
    else:
        external = external_user_id or str(user_id)
        new_id = await repository.insert_confirmed_entrustment(
            session, operator_id, user_id, external, agreement_version, scope, now
        )
        if new_id is None:
            raise ExternalIdTaken("this external_user_id is enrolled for another person")
        entrustment = ConfirmedEntrustment(new_id, user_id, external, created=True)
    audit.record(
        session,
        actor=f"user:{user_id}",
        action="entrustment.confirmed",
        subject_type="user",
        subject_id=user_id,
        data={
            "operator_id": str(operator_id),
            "agreement_version": agreement_version,
            "confirmed_by": Confirmation.person_otp,
            "scope": scope,
            "created": entrustment.created,
        },
    )
    return entrustment


async def entrustment_live(session: AsyncSession, entrustment_id: int) -> bool:
    """Whether the entrustment is still live (not withdrawn, the account not deleted)."""
    return await repository.entrustment_live(session, entrustment_id)


async def external_id_of(session: AsyncSession, entrustment_id: int) -> str:
    """The operator's external id of the person under the entrustment."""
    return await repository.external_id_of(session, entrustment_id) or ""


async def code_usable(session: AsyncSession, code_id: uuid.UUID) -> bool:
    """Whether the code may still be tried (not used, not expired, tries left), without counting a try."""
    row = await repository.code(session, code_id)
    return (
        row is not None
        and row.used_at is None
        and row.expires_at > clock.now()
        and row.attempts < get_settings().otp_max_attempts
    )


# ---- an operator's console: the people who entrusted it (no identifier but the operator's own ids) --------


@dataclass(frozen=True)
class MonthOfEnrolments:
    month: str  # YYYY-MM, platform time
    enrolled: int
    withdrawn: int


@dataclass(frozen=True)
class OperatorEntrustment:
    """One entrustment as its operator sees it: its own id of the person, never the person's."""

    external_user_id: str
    accepted_at: datetime
    withdrawn_at: datetime | None
    confirmed_by: str
    agreement_version: str


async def enrolments_by_month(session: AsyncSession, operator: Principal) -> list[MonthOfEnrolments]:
    """People who entrusted the operator and who withdrew, per month (platform time), newest first."""
    assert operator.org_id is not None
    rows = await repository.enrolments_by_month(
        await db.raw_connection(session), operator.org_id, get_settings().timezone
    )
    return [MonthOfEnrolments(r["month"], r["enrolled"], r["withdrawn"]) for r in rows]


async def find_entrustments(
    session: AsyncSession, operator: Principal, external_user_id: str
) -> list[OperatorEntrustment]:
    """The operator's entrustments under its own id ``external_user_id``, newest first."""
    assert operator.org_id is not None
    return [
        OperatorEntrustment(
            e.external_user_id, e.accepted_at, e.withdrawn_at, e.confirmed_by, e.agreement_version
        )
        for e in await repository.entrustments_under(session, operator.org_id, external_user_id)
    ]
