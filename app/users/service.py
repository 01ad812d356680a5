"""People and their entrustments of operators (SZ 6, 21; personal data SZ 30–31)."""

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import service as auth_service
from app.auth.principal import Principal
from app.core import audit, clock
from app.users.exceptions import AlreadyEntrusted, ExternalIdTaken, InvalidConsent, NotEntrusted
from app.users.identity import identity_hash
from app.users.schemas import EnrolUser


async def enrol(session: AsyncSession, operator: Principal, data: EnrolUser) -> dict:
    now = clock.now()
    if data.consent.accepted_at > now:
        raise InvalidConsent("consent.accepted_at is in the future")
    digest = identity_hash(data.identifier.type, data.identifier.value)
    # One account per person, whichever operator enrols them first.
    user_id = (
        await session.execute(
            sa.text(
                "INSERT INTO users (id, identity_hash, created_at) VALUES (:id, :h, :now)"
                " ON CONFLICT (identity_hash) DO UPDATE SET identity_hash = EXCLUDED.identity_hash"
                " RETURNING id"
            ),
            {"id": uuid.uuid4(), "h": digest, "now": now},
        )
    ).scalar_one()
    live = (
        await session.execute(
            sa.text(
                "SELECT user_id, external_user_id, agreement_version, accepted_at FROM entrustments"
                " WHERE operator_id = :op AND withdrawn_at IS NULL"
                " AND (external_user_id = :ext OR user_id = :uid) FOR UPDATE"
            ),
            {"op": operator.org_id, "ext": data.external_user_id, "uid": user_id},
        )
    ).all()
    for row in live:
        if row.external_user_id == data.external_user_id and row.user_id == user_id:
            return {
                "user_id": user_id, "external_user_id": row.external_user_id,
                "agreement_version": row.agreement_version, "accepted_at": row.accepted_at, "created": False,
            }
        if row.external_user_id == data.external_user_id:
            raise ExternalIdTaken("this external_user_id is enrolled for another person; withdraw it first")
        raise AlreadyEntrusted(f"this person is enrolled here as {row.external_user_id!r}")
    withdrawn_at = (
        await session.execute(
            sa.text("SELECT max(withdrawn_at) FROM entrustments WHERE user_id = :uid AND operator_id = :op"),
            {"uid": user_id, "op": operator.org_id},
        )
    ).scalar()
    if withdrawn_at is not None and data.consent.accepted_at <= withdrawn_at:
        # a withdrawal ends every earlier consent: a re-enrolment never reaches back before it
        raise InvalidConsent(
            "consent.accepted_at must be after the withdrawal of the previous entrustment"
            f" ({withdrawn_at.isoformat()})"
        )
    inserted = await session.execute(
        sa.text(
            "INSERT INTO entrustments (operator_id, user_id, external_user_id, agreement_version, accepted_at,"
            " created_at) VALUES (:op, :uid, :ext, :ver, :acc, :now) ON CONFLICT DO NOTHING RETURNING id"
        ),
        {
            "op": operator.org_id, "uid": user_id, "ext": data.external_user_id,
            "ver": data.consent.agreement_version, "acc": data.consent.accepted_at, "now": now,
        },
    )
    if inserted.first() is None:  # a concurrent enrolment of another person under this external id won
        raise ExternalIdTaken("this external_user_id was just enrolled for another person")
    audit.record(
        session, actor=operator.actor, action="entrustment.granted", subject_type="user", subject_id=user_id,
        data={"operator_id": str(operator.org_id), "agreement_version": data.consent.agreement_version},
    )
    return {
        "user_id": user_id, "external_user_id": data.external_user_id,
        "agreement_version": data.consent.agreement_version, "accepted_at": data.consent.accepted_at,
        "created": True,
    }


async def entrusted_user(session: AsyncSession, operator_id: uuid.UUID, external_user_id: str) -> uuid.UUID:
    """The person behind a live entrustment of ``operator_id``, or ``not_entrusted``."""
    user_id = (
        await session.execute(
            sa.text(
                "SELECT user_id FROM entrustments WHERE operator_id = :op AND external_user_id = :ext"
                " AND withdrawn_at IS NULL"
            ),
            {"op": operator_id, "ext": external_user_id},
        )
    ).scalar()
    if user_id is None:
        raise NotEntrusted()
    return user_id


async def withdraw(session: AsyncSession, operator: Principal, external_user_id: str) -> dict:
    now = clock.now()
    row = (
        await session.execute(
            sa.text(
                "UPDATE entrustments SET withdrawn_at = :now WHERE operator_id = :op"
                " AND external_user_id = :ext AND withdrawn_at IS NULL RETURNING user_id"
            ),
            {"now": now, "op": operator.org_id, "ext": external_user_id},
        )
    ).first()
    if row is None:
        raise NotEntrusted()
    audit.record(
        session, actor=operator.actor, action="entrustment.withdrawn", subject_type="user",
        subject_id=row.user_id, data={"operator_id": str(operator.org_id)},
    )
    return {"user_id": row.user_id, "external_user_id": external_user_id, "withdrawn_at": now}


async def issue_user_token(session: AsyncSession, operator: Principal, external_user_id: str) -> dict:
    user_id = await entrusted_user(session, operator.org_id, external_user_id)
    return auth_service.issue_token(Principal("user", "user", user_id, operator.org_id))


async def entrustments(session: AsyncSession, user_id: uuid.UUID) -> list[dict]:
    rows = await session.execute(
        sa.text(
            "SELECT operator_id, external_user_id, agreement_version, accepted_at, withdrawn_at"
            " FROM entrustments WHERE user_id = :uid ORDER BY id"
        ),
        {"uid": user_id},
    )
    return [dict(r._mapping) for r in rows]


async def delete_account(session: AsyncSession, user: Principal) -> dict:
    """Anonymise: the identity hash goes, entrustments end, the ledger and its totals stay."""
    now = clock.now()
    await session.execute(
        sa.text("UPDATE users SET identity_hash = NULL, deleted_at = :now WHERE id = :uid"),
        {"now": now, "uid": user.subject},
    )
    await session.execute(
        sa.text("UPDATE entrustments SET withdrawn_at = :now WHERE user_id = :uid AND withdrawn_at IS NULL"),
        {"now": now, "uid": user.subject},
    )
    audit.record(session, actor=user.actor, action="user.deleted", subject_type="user", subject_id=user.subject)
    return {"user_id": user.subject, "deleted_at": now}
