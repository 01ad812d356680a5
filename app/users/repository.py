"""All SQL of the users domain: ``users`` (people, by identity hash) and ``entrustments``.

Enrolments, withdrawals and deletions are the long tail: SQLAlchemy statements on the request's
session. The per-request standing of a user token is the hot path: one indexed statement on the
transaction's asyncpg connection.
"""

import uuid
from datetime import datetime

import asyncpg
import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.core import callers
from app.core.db import Conn
from app.users.models import Entrustment, OneTimeCode, User


async def upsert_person(session: AsyncSession, identity_hash: bytes, now: datetime) -> uuid.UUID:
    """The person with this identity hash, created if new (one account whichever operator enrols first)."""
    person = insert(User).values(id=uuid.uuid4(), identity_hash=identity_hash, created_at=now)
    statement = person.on_conflict_do_update(
        index_elements=["identity_hash"], set_={"identity_hash": person.excluded.identity_hash}
    ).returning(col(User.id))
    return (await session.execute(statement)).scalar_one()


async def live_entrustments_locked(
    session: AsyncSession, operator_id: uuid.UUID, external_user_id: str, user_id: uuid.UUID
) -> list[Entrustment]:
    """The operator's live entrustments under this external id or of this person, locked (FOR UPDATE)."""
    query = (
        select(Entrustment)
        .where(
            col(Entrustment.operator_id) == operator_id,
            col(Entrustment.withdrawn_at).is_(None),
            sa.or_(
                col(Entrustment.external_user_id) == external_user_id, col(Entrustment.user_id) == user_id
            ),
        )
        .with_for_update()
    )
    return list((await session.execute(query)).scalars())


async def last_withdrawal(
    session: AsyncSession, user_id: uuid.UUID, operator_id: uuid.UUID
) -> datetime | None:
    """When the person last withdrew an entrustment of the operator, or None."""
    query = sa.select(sa.func.max(Entrustment.withdrawn_at)).where(
        col(Entrustment.user_id) == user_id, col(Entrustment.operator_id) == operator_id
    )
    return (await session.execute(query)).scalar()


async def insert_entrustment(
    session: AsyncSession,
    operator_id: uuid.UUID,
    user_id: uuid.UUID,
    external_user_id: str,
    agreement_version: str,
    accepted_at: datetime,
    now: datetime,
) -> bool:
    """Write a live entrustment; False when a concurrent one took the external id (or the person) first."""
    statement = (
        insert(Entrustment)
        .values(
            operator_id=operator_id,
            user_id=user_id,
            external_user_id=external_user_id,
            agreement_version=agreement_version,
            accepted_at=accepted_at,
            created_at=now,
        )
        .on_conflict_do_nothing()
        .returning(col(Entrustment.id))
    )
    return (await session.execute(statement)).first() is not None


async def entrusted_user(
    session: AsyncSession, operator_id: uuid.UUID, external_user_id: str
) -> uuid.UUID | None:
    """The person of the operator's live entrustment under ``external_user_id``, or None."""
    query = select(Entrustment.user_id).where(
        col(Entrustment.operator_id) == operator_id,
        col(Entrustment.external_user_id) == external_user_id,
        col(Entrustment.withdrawn_at).is_(None),
    )
    return (await session.execute(query)).scalar()


async def withdraw(
    session: AsyncSession, operator_id: uuid.UUID, external_user_id: str, now: datetime
) -> uuid.UUID | None:
    """End the operator's live entrustment under ``external_user_id``; its person, or None when there is none."""
    callers.standing_changed()  # what this process kept of callers' standing is read again
    statement = (
        sa.update(Entrustment)
        .where(
            col(Entrustment.operator_id) == operator_id,
            col(Entrustment.external_user_id) == external_user_id,
            col(Entrustment.withdrawn_at).is_(None),
        )
        .values(withdrawn_at=now)
        .returning(col(Entrustment.user_id))
    )
    return (await session.execute(statement)).scalar()


async def entrustments(session: AsyncSession, user_id: uuid.UUID) -> list[Entrustment]:
    """Every entrustment of the person, live or withdrawn, in the order they were made."""
    query = select(Entrustment).where(col(Entrustment.user_id) == user_id).order_by(col(Entrustment.id))
    return list((await session.execute(query)).scalars())


async def anonymise(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> list[tuple[uuid.UUID, str]]:
    """Erase the person's identity hash, mark the account deleted and end every live entrustment: the
    entrustments ended, as (operator id, external user id), oldest first."""
    callers.standing_changed()  # what this process kept of callers' standing is read again
    await session.execute(
        sa.update(User).where(col(User.id) == user_id).values(identity_hash=None, deleted_at=now)
    )
    ended = await session.execute(
        sa.update(Entrustment)
        .where(col(Entrustment.user_id) == user_id, col(Entrustment.withdrawn_at).is_(None))
        .values(withdrawn_at=now)
        .returning(col(Entrustment.id), col(Entrustment.operator_id), col(Entrustment.external_user_id))
    )
    return [(operator_id, external_id) for _, operator_id, external_id in sorted(ended.all())]


Standing = tuple[uuid.UUID, uuid.UUID | None]
"""A user token's person and operator."""


async def standing(conn: Conn, user_id: uuid.UUID, operator_id: uuid.UUID | None) -> asyncpg.Record | None:
    """:func:`standings` of one caller: the statement planned for one key (index lookups)."""
    return await conn.fetchrow(
        "SELECT u.deleted_at, o.status, EXISTS (SELECT 1 FROM entrustments e WHERE e.user_id = u.id"
        " AND e.operator_id = o.id AND e.withdrawn_at IS NULL) AS entrusted"
        " FROM users u, organizations o WHERE u.id = $1 AND o.id = $2",
        user_id,
        operator_id,
    )


async def standings(conn: Conn, wanted: list[Standing]) -> dict[Standing, asyncpg.Record | None]:
    """Per request of a user token, one indexed read: the person, their operator's status, a live entrustment;
    for each of ``wanted`` (distinct; None where the person or the operator is unknown), in one statement.

    Reads ``organizations`` (the organizations domain's table) in the same statement: every user call
    comes here, and one round trip is the budget.
    """
    found: dict[Standing, asyncpg.Record | None] = dict.fromkeys(wanted)
    rows = await conn.fetch(
        "SELECT p.user_id, p.operator_id, u.deleted_at, o.status, EXISTS (SELECT 1 FROM entrustments e"
        " WHERE e.user_id = u.id AND e.operator_id = o.id AND e.withdrawn_at IS NULL) AS entrusted"
        " FROM unnest($1::uuid[], $2::uuid[]) AS p(user_id, operator_id)"
        " JOIN users u ON u.id = p.user_id JOIN organizations o ON o.id = p.operator_id",
        [user_id for user_id, _ in wanted],
        [operator_id for _, operator_id in wanted],
    )
    for row in rows:
        found[(row["user_id"], row["operator_id"])] = row
    return found


# ---- what other domains ask (points) ---------------------------------------------------------------------


async def live_entrustments(
    conn: Conn, operator_id: uuid.UUID, external_ids: list[str]
) -> list[asyncpg.Record]:
    """The operator's live entrustments (at most one per external id) under these external ids: batch
    ingestion's first read, on its transaction's connection."""
    return await conn.fetch(
        "SELECT external_user_id, user_id, accepted_at FROM entrustments"
        " JOIN json_array_elements_text($2::json) AS x(id) ON external_user_id = x.id"
        " WHERE operator_id = $1 AND withdrawn_at IS NULL",
        operator_id,
        orjson.dumps(external_ids).decode(),
    )


async def count_people(session: AsyncSession) -> int:
    """People with an account not deleted."""
    query = sa.select(sa.func.count()).select_from(User).where(col(User.deleted_at).is_(None))
    return (await session.execute(query)).scalar_one()


# ---- one-time codes and entrustments confirmed by the person (the authorization code flow) ---------------


async def insert_code(session: AsyncSession, code: OneTimeCode) -> None:
    session.add(code)
    await session.flush()


async def count_attempt(session: AsyncSession, code_id: uuid.UUID) -> OneTimeCode | None:
    """Count one attempt at the code (before comparing it, so no attempt goes uncounted); the code after it."""
    statement = (
        sa.update(OneTimeCode)
        .where(col(OneTimeCode.id) == code_id)
        .values(attempts=OneTimeCode.attempts + 1)
        .returning(OneTimeCode)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(statement)).scalars().first()


async def mark_code_used(session: AsyncSession, code_id: uuid.UUID, now: datetime) -> bool:
    """Use the code once; False when it was used already (a concurrent check won)."""
    statement = (
        sa.update(OneTimeCode)
        .where(col(OneTimeCode.id) == code_id, col(OneTimeCode.used_at).is_(None))
        .values(used_at=now)
        .returning(col(OneTimeCode.id))
    )
    return (await session.execute(statement)).first() is not None


async def person_by_identity(session: AsyncSession, identity_hash: bytes) -> uuid.UUID | None:
    query = select(User.id).where(col(User.identity_hash) == identity_hash, col(User.deleted_at).is_(None))
    return (await session.execute(query)).scalar()


async def live_entrustment_of(
    session: AsyncSession, operator_id: uuid.UUID, user_id: uuid.UUID
) -> Entrustment | None:
    """The live entrustment of (person, operator), locked (FOR UPDATE), or None."""
    query = (
        select(Entrustment)
        .where(
            col(Entrustment.operator_id) == operator_id,
            col(Entrustment.user_id) == user_id,
            col(Entrustment.withdrawn_at).is_(None),
        )
        .with_for_update()
    )
    return (await session.execute(query)).scalars().first()


async def confirm(
    session: AsyncSession, entrustment_id: int, agreement_version: str, scope: str, now: datetime
) -> None:
    """Record that the person confirmed the entrustment themselves, under ``agreement_version``, granting ``scope``."""
    await session.execute(
        sa.update(Entrustment)
        .where(col(Entrustment.id) == entrustment_id)
        .values(confirmed_by="person_otp", confirmed_at=now, agreement_version=agreement_version, scope=scope)
        .execution_options(synchronize_session=False)
    )


async def insert_confirmed_entrustment(
    session: AsyncSession,
    operator_id: uuid.UUID,
    user_id: uuid.UUID,
    external_user_id: str,
    agreement_version: str,
    scope: str,
    now: datetime,
) -> int | None:
    """A live entrustment the person confirmed, granting ``scope``; its id, or None when the external id is taken."""
    statement = (
        insert(Entrustment)
        .values(
            operator_id=operator_id,
            user_id=user_id,
            external_user_id=external_user_id,
            agreement_version=agreement_version,
            accepted_at=now,
            created_at=now,
            confirmed_by="person_otp",
            confirmed_at=now,
            scope=scope,
        )
        .on_conflict_do_nothing()
        .returning(col(Entrustment.id))
    )
    return (await session.execute(statement)).scalar()


async def entrustment_live(session: AsyncSession, entrustment_id: int) -> bool:
    """Whether the entrustment is live and its person's account not deleted."""
    query = (
        select(Entrustment.id)
        .join(User, col(User.id) == col(Entrustment.user_id))
        .where(
            col(Entrustment.id) == entrustment_id,
            col(Entrustment.withdrawn_at).is_(None),
            col(User.deleted_at).is_(None),
        )
    )
    return (await session.execute(query)).first() is not None


async def external_id_of(session: AsyncSession, entrustment_id: int) -> str | None:
    query = select(Entrustment.external_user_id).where(col(Entrustment.id) == entrustment_id)
    return (await session.execute(query)).scalar()


async def code(session: AsyncSession, code_id: uuid.UUID) -> OneTimeCode | None:
    return await session.get(OneTimeCode, code_id, populate_existing=True)


# ---- the person's own sessions on the platform (/me), and purges -----------------------------------------


async def insert_person_session(
    conn: Conn,
    session_id: uuid.UUID,
    token_sha256: bytes,
    user_id: uuid.UUID,
    now: datetime,
    expires_at: datetime,
    ip: str,
    user_agent: str,
) -> None:
    await conn.execute(
        "INSERT INTO person_sessions (id, token_sha256, user_id, created_at, last_seen_at, expires_at, ip,"
        " user_agent) VALUES ($1, $2, $3, $4, $4, $5, $6, $7)",
        session_id,
        token_sha256,
        user_id,
        now,
        expires_at,
        ip,
        user_agent,
    )


async def find_person_session(conn: Conn, token_sha256: bytes) -> asyncpg.Record | None:
    """The session of this token with its person's deletion time (one indexed read a request)."""
    return await conn.fetchrow(
        "SELECT p.id, p.user_id, p.last_seen_at, p.expires_at, u.deleted_at"
        " FROM person_sessions p JOIN users u ON u.id = p.user_id WHERE p.token_sha256 = $1",
        token_sha256,
    )


async def touch_person_session(conn: Conn, session_id: uuid.UUID, now: datetime) -> None:
    await conn.execute("UPDATE person_sessions SET last_seen_at = $2 WHERE id = $1", session_id, now)


async def delete_person_session(conn: Conn, session_id: uuid.UUID) -> bool:
    return await conn.execute("DELETE FROM person_sessions WHERE id = $1", session_id) == "DELETE 1"


async def delete_person_sessions_of(conn: Conn, user_id: uuid.UUID) -> int:
    status = await conn.execute("DELETE FROM person_sessions WHERE user_id = $1", user_id)
    return int(status.split()[-1])


async def purge_person_sessions(conn: Conn, now: datetime, idle_before: datetime) -> int:
    """Delete the sessions past their absolute or idle lifetime; how many."""
    status = await conn.execute(
        "DELETE FROM person_sessions WHERE expires_at <= $1 OR last_seen_at <= $2", now, idle_before
    )
    return int(status.split()[-1])


async def purge_codes(conn: Conn, now: datetime) -> int:
    """Delete the one-time codes that expired; how many."""
    status = await conn.execute("DELETE FROM one_time_codes WHERE expires_at <= $1", now)
    return int(status.split()[-1])


async def own_entrustment(
    session: AsyncSession, user_id: uuid.UUID, entrustment_id: int
) -> Entrustment | None:
    """The person's entrustment ``entrustment_id`` (None when there is none, or it is another person's)."""
    query = select(Entrustment).where(
        col(Entrustment.id) == entrustment_id, col(Entrustment.user_id) == user_id
    )
    return (await session.execute(query.execution_options(populate_existing=True))).scalars().first()


async def withdraw_own(
    session: AsyncSession, user_id: uuid.UUID, entrustment_id: int, now: datetime
) -> uuid.UUID | None:
    """End the person's live entrustment ``entrustment_id``; its operator, or None when there is none."""
    callers.standing_changed()  # what this process kept of callers' standing is read again
    statement = (
        sa.update(Entrustment)
        .where(
            col(Entrustment.id) == entrustment_id,
            col(Entrustment.user_id) == user_id,
            col(Entrustment.withdrawn_at).is_(None),
        )
        .values(withdrawn_at=now)
        .returning(col(Entrustment.operator_id))
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(statement)).scalar()


async def account_live(session: AsyncSession, user_id: uuid.UUID) -> bool:
    """Whether the person's account exists and is not deleted."""
    query = select(User.id).where(col(User.id) == user_id, col(User.deleted_at).is_(None))
    return (await session.execute(query)).first() is not None


# ---- an operator's console: the people who entrusted it ---------------------------------------------------


async def enrolments_by_month(conn: Conn, operator_id: uuid.UUID, zone: str) -> list[asyncpg.Record]:
    """Entrustments of the operator that began and that ended, per month (in ``zone``), newest month first."""
    return await conn.fetch(
        "SELECT month, sum(began)::bigint AS enrolled, sum(ended)::bigint AS withdrawn FROM ("
        " SELECT to_char(accepted_at AT TIME ZONE $2, 'YYYY-MM') AS month, 1 AS began, 0 AS ended"
        " FROM entrustments WHERE operator_id = $1"
        " UNION ALL SELECT to_char(withdrawn_at AT TIME ZONE $2, 'YYYY-MM'), 0, 1"
        " FROM entrustments WHERE operator_id = $1 AND withdrawn_at IS NOT NULL"
        ") AS e GROUP BY month ORDER BY month DESC",
        operator_id,
        zone,
    )


async def entrustments_under(
    session: AsyncSession, operator_id: uuid.UUID, external_user_id: str
) -> list[Entrustment]:
    """The operator's entrustments under its own id for a person, newest first."""
    query = (
        select(Entrustment)
        .where(
            col(Entrustment.operator_id) == operator_id, col(Entrustment.external_user_id) == external_user_id
        )
        .order_by(col(Entrustment.accepted_at).desc())
    )
    return list((await session.execute(query)).scalars())
