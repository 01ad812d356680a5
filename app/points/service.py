"""The ledger: people's views, spending (soonest-expiring lots first), refunds, clawback, expiry.

Every change locks the person's account row first (one account at a time, or several in
``user_id`` order), appends signed ledger entries with the balance after them, and records in
``lot_allocations`` which lots each entry touched. Balances are never set, only moved by entries.
Other domains (the mall) call :func:`spend` and :func:`refund` inside their own transaction.
The SQL is in :mod:`app.points.repository`.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.core import audit, callers, clock, coalesce, db, security
from app.core.config import get_settings
from app.core.pagination import decode_cursor, page
from app.methodologies import service as methodologies_service
from app.organizations import service as org_service
from app.points import bodies
from app.points import repository as repo
from app.points.exceptions import AccountNotFound, EntryNotFound, InsufficientPoints, InvalidAmount
from app.points.models import CapCode, EntryKind
from app.users import service as users_service
from app.webhooks import service as webhooks_service


@dataclass(frozen=True)
class Spend:
    entry_id: int
    points: int
    balance_after: int


@dataclass(frozen=True)
class Refund:
    refunded: int
    expired: int = 0  # of them, expired at once: their lot had expired meanwhile
    balance: int = 0


@dataclass(frozen=True, slots=True)
class Expiring:
    expires_at: datetime
    points: int


@dataclass(frozen=True)
class Account:
    """Balance usable now (lots not yet expired), broken down by expiry, soonest first."""

    user_id: uuid.UUID
    balance: int
    lifetime_points: int
    lifetime_reduction_g: int
    expiring: list[Expiring]


@dataclass(frozen=True, slots=True)
class Entry:
    """A ledger entry: ``amount`` signed, ``balance_after`` the account's balance after it."""

    id: int
    kind: EntryKind
    amount: int
    balance_after: int
    ref_type: str
    ref_id: str
    memo: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Behaviour:
    """An accepted behaviour record with what it earned, and by which versions."""

    id: int
    record_id: str
    operator_id: uuid.UUID
    type: str
    started_at: datetime
    ended_at: datetime
    quantity: Decimal
    counted_quantity: Decimal
    unit: str
    scene_id: uuid.UUID | None
    reduction_g: int
    points: int
    code: CapCode | None
    methodology_version: str
    rule_version: int


@dataclass(frozen=True)
class Expiry:
    accounts: int
    points: int


@dataclass(frozen=True)
class PlatformTotals:
    """Platform-wide figures for public disclosure (SZ 29)."""

    people: int
    behaviours: int
    reduction_g: int
    points_credited: int
    points_used: int
    points_expired: int
    points_clawed_back: int


# ---- people's views --------------------------------------------------------------------------------------


async def _account_view(conn: db.Conn, user_id: uuid.UUID) -> list[Any]:
    return await repo.account_view(conn, user_id, clock.now())


async def _account_views(conn: db.Conn, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
    return await repo.account_views(conn, user_ids, clock.now())


_account_views_shared = coalesce.Coalesced(_account_view, _account_views, in_flight=1)
"""The balance read a person's app makes on every open: direct reads waiting at the same time share one
statement, one statement at a time a process (the reads arriving meanwhile wait for the next: fewer, larger
statements; measured with ``bench/redeem.py``, ~10 % less CPU a read than two at a time, latency unchanged)."""


async def _checked_account_view(conn: db.Conn, caller: repo.Caller) -> tuple[bool, list[Any]]:
    return await repo.checked_account_view(conn, caller, clock.now())


async def _checked_account_views(
    conn: db.Conn, wanted: list[repo.Caller]
) -> dict[repo.Caller, tuple[bool, list[Any]]]:
    return await repo.checked_account_views(conn, wanted, clock.now())


_checked_account_views_shared = coalesce.Coalesced(_checked_account_view, _checked_account_views, in_flight=1)
"""The same read for a caller whose standing this process does not know: checked by the same statement."""


async def account(session: AsyncSession, user_id: uuid.UUID, operator_id: uuid.UUID | None = None) -> Account:
    """Balance usable now (lots not yet expired), broken down by expiry, soonest first.

    A caller whose standing this process does not know (:func:`app.core.callers.deferred`; ``operator_id``: the
    operator their token was issued through) is checked by the same statement: refused, the standing is read as
    on every route to say why."""
    caller = callers.deferred(session)
    rows = None
    if caller is not None:
        may_act, checked = await _checked_account_views_shared.get(
            session, (user_id, operator_id, caller.family)
        )
        if may_act:
            caller.found_good()
            rows = checked
        else:
            await caller.read(session)  # raises why, as every route refuses the caller; good again: read anew
    if rows is None:
        rows = await _account_views_shared.get(session, user_id)  # one round trip, perhaps shared
    expiring = [Expiring(r["expires_at"], r["points"]) for r in rows if r["expires_at"] is not None]
    return Account(
        user_id=user_id,
        balance=sum(e.points for e in expiring),
        lifetime_points=rows[0]["lifetime_points"] or 0,
        lifetime_reduction_g=rows[0]["lifetime_reduction_g"] or 0,
        expiring=expiring,
    )


async def ledger(
    session: AsyncSession,
    user_id: uuid.UUID,
    limit: int,
    cursor: str | None,
    operator_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """A page of the person's entries (:class:`Entry`), newest first; with ``operator_id`` only those whose
    source is that operator's: earnings from its batches, orders placed through it, redemptions in its own
    mall, their refunds, and expiries and clawbacks that took points from lots it credited."""
    after = decode_cursor(cursor, int)
    rows = await repo.entries(
        await db.raw_connection(session), user_id, after[0] if after else None, limit + 1, operator_id
    )
    items = [
        Entry(
            r["id"],
            EntryKind(r["kind"]),
            r["amount"],
            r["balance_after"],
            r["ref_type"],
            r["ref_id"],
            r["memo"],
            r["created_at"],
        )
        for r in rows
    ]
    return page(items, limit, lambda e: [e.id])


async def batch_operators(
    session: AsyncSession, batch_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    """The operator that sent each of these batches (an id that is no batch is left out)."""
    rows = await repo.batch_operators(await db.raw_connection(session), batch_ids)
    return {r["id"]: r["operator_id"] for r in rows}


async def behaviours(
    session: AsyncSession,
    user_id: uuid.UUID,
    limit: int,
    cursor: str | None,
    operator_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """A page of the person's accepted behaviours (:class:`Behaviour`), latest first; with ``operator_id``
    only those that operator submitted."""
    after = decode_cursor(cursor, datetime, int)
    rows = await repo.records(await db.raw_connection(session), user_id, after, limit + 1, operator_id)
    if not rows:
        return page([], limit, lambda b: [b.started_at, b.id])
    labels = await methodologies_service.version_labels(
        session, {r["methodology_version_id"] for r in rows}, {r["rule_version_id"] for r in rows}
    )
    items = [
        Behaviour(
            r["id"],
            r["record_id"],
            r["operator_id"],
            r["behaviour_type"],
            r["started_at"],
            r["ended_at"],
            r["quantity"],
            r["counted_quantity"],
            r["unit"],
            r["scene_id"],
            r["reduction_g"],
            r["points"],
            CapCode(r["code"]) if r["code"] else None,
            labels.methodologies[r["methodology_version_id"]],
            labels.rules[r["rule_version_id"]],
        )
        for r in rows
    ]
    return page(items, limit, lambda b: [b.started_at, b.id])


# ---- spending and giving back ----------------------------------------------------------------------------


async def _debit(
    conn: repo.Conn,
    user_id: uuid.UUID,
    points: int,
    kind: EntryKind,
    ref_type: str,
    ref_id: str,
    memo: str | None,
    now: datetime,
) -> Spend:
    """Take ``points`` from the soonest-expiring unexpired lots: lock the account, then one statement.

    The statement runs after the lock is held, so its snapshot sees every committed change to the
    person's lots (all writers lock the account first). Not enough points: nothing is changed.
    """
    balance = await repo.lock_balance(conn, user_id) or 0
    if (
        balance < points
    ):  # the balance may still count lots expired but not yet swept: a bound, not the answer
        raise InsufficientPoints(f"{points} points needed")
    entry_id = await repo.debit(conn, user_id, points, kind, balance - points, ref_type, ref_id, memo, now)
    if entry_id is None:
        raise InsufficientPoints(f"{points} points needed")
    return Spend(entry_id, points, balance - points)


async def spend(
    session: AsyncSession,
    user_id: uuid.UUID,
    points: int,
    *,
    ref_type: str,
    ref_id: str,
    memo: str | None = None,
) -> Spend:
    """The person's own redemption: a ``redeem`` entry. Raises ``insufficient_points``."""
    if not isinstance(points, int) or points <= 0:
        raise InvalidAmount()
    conn = await db.raw_connection(session)
    result = await _debit(conn, user_id, points, EntryKind.redeem, ref_type, ref_id, memo, clock.now())
    audit.record(
        session,
        actor=f"user:{user_id}",
        action="points.redeemed",
        subject_type="user",
        subject_id=user_id,
        data={"points": points, "ref_type": ref_type, "ref_id": ref_id, "entry_id": result.entry_id},
    )
    return result


async def refund(session: AsyncSession, spend_entry_id: int, *, ref_type: str, ref_id: str) -> Refund:
    """Give a spend back to the lots it came from, with their original expiry.

    A share whose lot has expired in the meantime is expired at once (a ``refund`` then an
    ``expire`` entry): refunded points are never resurrected. The caller guarantees exactly-once
    (e.g. by a conditional update of its order's status in the same transaction).
    Two round trips: the spend with its account locked, then one statement (a third if a share expired).
    """
    conn = await db.raw_connection(session)
    now = clock.now()
    spent = await repo.lock_spend(conn, spend_entry_id)
    if spent is None:
        raise EntryNotFound()
    user_id, points, balance = spent["user_id"], -spent["amount"], spent["balance"]
    lots = await repo.refund(
        conn,
        spend_entry_id,
        user_id,
        points,
        balance + points,
        ref_type,
        ref_id,
        f"refund of entry {spend_entry_id}",
        now,
    )
    balance += points
    expired = [(r["id"], r["amount"]) for r in lots if r["expires_at"] <= now]
    expired_points = sum(a for _, a in expired)
    if expired_points:
        await repo.expire_shares(conn, user_id, expired, balance, now, ref_type, ref_id)
        balance -= expired_points
    audit.record(
        session,
        actor="platform",
        action="points.refunded",
        subject_type="user",
        subject_id=user_id,
        data={
            "points": points,
            "expired_at_once": expired_points,
            "of_entry": spend_entry_id,
            "ref_id": ref_id,
        },
    )
    return Refund(points, expired_points, balance)


async def clawback(
    session: AsyncSession, authority: Principal, user_id: uuid.UUID, points: int, reason: str
) -> Spend:
    """The authority's recorded clawback (fraud): a ``clawback`` entry, soonest-expiring lots first."""
    if points <= 0:
        raise InvalidAmount()
    conn = await db.raw_connection(session)
    if not await repo.account_exists(conn, user_id):
        raise AccountNotFound()
    result = await _debit(
        conn, user_id, points, EntryKind.clawback, "clawback", str(uuid.uuid4()), reason, clock.now()
    )
    audit.record(
        session,
        actor=authority.actor,
        action="points.clawback",
        subject_type="user",
        subject_id=user_id,
        data={"points": points, "reason": reason, "entry_id": result.entry_id},
    )
    return result


async def expire_due(
    session: AsyncSession, *, now: datetime | None = None, max_accounts: int = 5000
) -> Expiry:
    """Expire every lot whose time has come, for up to ``max_accounts`` people: set-based.

    One ``expire`` entry per person with allocations per lot. Accounts are locked in ``user_id``
    order. Returns how many people and points; run it until ``accounts`` is 0.
    """
    now = now or clock.now()
    users = await people_with_due_lots(session, now, limit=max_accounts)
    if not users:
        await mark_all_expired(session, now)
        return Expiry(0, 0)
    return await expire_people(session, users, now)


EXPIRY_MARK_LAG = timedelta(days=1)
"""The expiry mark trails the run that sets it by a day: a lot refilled by a refund still in flight when
the run read (a refund expires a lot's share at once only by its own clock) is read again next time."""


async def _expired_since(conn: db.Conn, now: datetime) -> datetime | None:
    """Where the due lots begin: after the job's mark, where the platform's clock only goes forward
    (production). A sandbox clock that was put back, or a test's, can credit a lot due before the mark:
    there every due lot is read."""
    if clock.sandbox_allowed():
        return None
    since = await repo.expired_through(conn)
    return since if since is not None and since < now else None


async def people_with_due_lots(
    session: AsyncSession, now: datetime, *, after: datetime | None = None, limit: int | None = None
) -> list[uuid.UUID]:
    """Everybody (up to ``limit``) with points in lots expired at ``now``, in ``user_id`` order (one read).
    ``after``: only lots due after it (the job's earlier pass emptied those due at or before it)."""
    conn = await db.raw_connection(session)
    since = await _expired_since(conn, now)
    if after is not None:
        since = after if since is None else max(since, after)
    return await repo.people_with_due_lots(conn, now, limit, since)


async def mark_all_expired(session: AsyncSession, now: datetime) -> None:
    """Nobody has points due at ``now`` (just read in this transaction): remember it, less the lag, so the
    next runs read only lots due after that."""
    await repo.mark_expired_through(await db.raw_connection(session), now - EXPIRY_MARK_LAG, clock.now())


async def expire_people(session: AsyncSession, users: list[uuid.UUID], now: datetime) -> Expiry:
    """Expire these people's lots due at ``now`` (``user_id`` order): lock their accounts, then one statement.

    The job's transactions may lose their last moments in a crash (no wait for the WAL flush): the lots
    are then still due and the next run expires them, all or nothing.
    """
    conn = await db.raw_connection(session)
    await repo.relaxed_commit(conn)
    await repo.lock_existing_accounts(conn, users)
    points = await repo.expire_lots(conn, users, now)
    await _emit_expired(session, conn, users, now)
    audit.record(
        session,
        actor="platform",
        action="points.expired",
        subject_type="expiry",
        subject_id=now.isoformat(),
        data={"accounts": len(users), "points": points},
    )
    return Expiry(len(users), points)


MAX_DIGEST_PEOPLE = 10_000
"""A ``points.expiring`` digest names at most this many people (soonest-expiring first); ``complete`` says
whether it named them all."""


def _by_operator(rows: Sequence[Any]) -> dict[uuid.UUID, list[Any]]:
    out: dict[uuid.UUID, list[Any]] = {}
    for r in rows:
        out.setdefault(r["operator_id"], []).append(r)
    return out


async def _emit_expired(session: AsyncSession, conn: db.Conn, users: list[uuid.UUID], now: datetime) -> None:
    """``points.expired`` to each operator: which of its people lost how many in this run."""
    rows = await repo.expired_by_operator(conn, users, now.isoformat())
    await webhooks_service.emit_all(
        session,
        [
            webhooks_service.Emission(
                operator_id,
                "points.expired",
                "points_expiry",
                now.isoformat(),
                {
                    "expired_at": now,
                    "people": [
                        {"external_user_id": r["external_user_id"], "points": r["points"]} for r in mine
                    ],
                    "points": sum(r["points"] for r in mine),
                },
            )
            for operator_id, mine in _by_operator(rows).items()
        ],
    )


async def send_expiring_digests(session: AsyncSession, *, now: datetime | None = None) -> int:
    """``points.expiring``: to each operator whose people have points expiring in the next
    ``webhook_expiring_days`` days, one digest for today (the platform's day): each person by external id
    with their lots' amounts and expiry times. A second run the same day writes nothing (the event's id
    derives from the operator and the day). The number of digests written."""
    now = now or clock.now()
    days = get_settings().webhook_expiring_days
    until = now + timedelta(days=days)
    today = now.astimezone(ZoneInfo(get_settings().timezone)).date()
    rows = await repo.expiring_by_operator(await db.raw_connection(session), now, until)
    emissions = []
    for operator_id, mine in _by_operator(rows).items():
        people: dict[str, list[dict[str, Any]]] = {}
        for r in mine:
            people.setdefault(r["external_user_id"], []).append(
                {"points": r["points"], "expires_at": r["expires_at"]}
            )
        listed = sorted(people.items(), key=lambda p: (p[1][0]["expires_at"], p[0]))[:MAX_DIGEST_PEOPLE]
        payload = {
            "day": today,
            "until": until,
            "days": days,
            "people": [
                {"external_user_id": ext, "points": sum(lot["points"] for lot in lots), "lots": lots}
                for ext, lots in listed
            ],
            "people_total": len(people),
            "points_total": sum(r["points"] for r in mine),
            "complete": len(listed) == len(people),
        }
        emissions.append(
            webhooks_service.Emission(
                operator_id,
                "points.expiring",
                "points_expiring",
                today.isoformat(),
                payload,
                id=webhooks_service.stable_id("points.expiring", operator_id, today),
            )
        )
    return len(await webhooks_service.emit_all(session, emissions))


# ---- records and batches for certified reductions (the CER registry) -------------------------------------


@dataclass(frozen=True, slots=True)
class RecordFacts:
    """What a certified-reduction project needs of an accepted record."""

    id: int
    record_id: str
    batch_id: uuid.UUID
    user_id: uuid.UUID
    behaviour_type: str
    started_at: datetime
    scene_id: uuid.UUID | None
    methodology_version_id: uuid.UUID
    reduction_g: int


@dataclass(frozen=True, slots=True)
class BatchFacts:
    """A signed batch as received; ``body_hash_ok``: its stored body still hashes to ``body_sha256``."""

    id: uuid.UUID
    operator_id: uuid.UUID
    kid: str
    body_sha256: str
    body_hash_ok: bool
    signature: str
    received_at: datetime


def _facts(rows: list[Any]) -> list[RecordFacts]:
    return [RecordFacts(*r) for r in rows]


async def records_of_period(
    session: AsyncSession,
    operator_id: uuid.UUID,
    methodology_version_ids: Sequence[uuid.UUID],
    start: datetime,
    end: datetime,
) -> list[RecordFacts]:
    """The records of a period: the operator's, computed by these methodology versions, started in
    [start, end), by id."""
    conn = await db.raw_connection(session)
    return _facts(await repo.records_of_period(conn, operator_id, methodology_version_ids, start, end))


async def records_by_id(session: AsyncSession, ids: Sequence[int]) -> list[RecordFacts]:
    """These records (by ``behaviour_records.id``), by id; ids that do not exist are left out."""
    return _facts(await repo.records_by_id(await db.raw_connection(session), ids))


BODIES_AT_ONCE = 100
"""Batches read at a time to check their bodies (~36 KB each as kept, ~300 KB decompressed)."""


async def batches(
    session: AsyncSession, batch_ids: Sequence[uuid.UUID], *, limit: int | None = None
) -> list[BatchFacts]:
    """These signed batches (the first ``limit``), by time of receipt, each with whether its body still
    matches its hash (checked here, on the body decompressed: :mod:`app.points.bodies`)."""
    conn = await db.raw_connection(session)
    ordered = await repo.batches_by_receipt(conn, batch_ids, limit)
    facts = []
    for at in range(0, len(ordered), BODIES_AT_ONCE):
        for r in await repo.batches(conn, ordered[at : at + BODIES_AT_ONCE]):
            facts.append(
                BatchFacts(
                    r["id"],
                    r["operator_id"],
                    r["kid"],
                    r["body_sha256"],
                    bodies.checked(r["body"], r["body_encoding"], r["body_sha256"]) is not None,
                    r["signature"],
                    r["received_at"],
                )
            )
    return facts


class SignatureOutcome(StrEnum):
    """A stored batch's signature checked again now, against the operator's registered key."""

    verified = "verified"
    body_hash_mismatch = "body_hash_mismatch"  # the stored body no longer hashes to the recorded SHA-256
    unknown_key = "unknown_key"  # no key with the batch's kid is registered for its operator
    malformed_signature = "malformed_signature"
    algorithm_not_allowed = "algorithm_not_allowed"  # the JWS names another algorithm than the key's
    invalid_signature = "invalid_signature"  # the signature does not match the stored body


@dataclass(frozen=True, slots=True)
class BatchCheck:
    """A signed batch as received, its signature verified again now (``outcome``)."""

    id: uuid.UUID
    operator_id: uuid.UUID
    kid: str
    algorithm: str | None  # of the registered key; None when there is none
    key_revoked_at: datetime | None
    body_sha256: str
    body_hash_ok: bool
    outcome: SignatureOutcome
    received_at: datetime
    records: int
    accepted: int
    duplicate: int
    rejected: int

    @property
    def verified(self) -> bool:
        return self.outcome == SignatureOutcome.verified


async def check_batches(
    session: AsyncSession,
    batch_ids: Sequence[uuid.UUID],
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[BatchCheck]:
    """``limit`` of these batches by receipt (after ``after``: received_at, id), each with its detached
    signature verified now over the stored body with the key its operator registered under its ``kid``
    (a key revoked since is still used: it was live when the batch was accepted; its revocation is shown)."""
    rows = await repo.signed_batches(await db.raw_connection(session), batch_ids, after, limit)
    keys: dict[tuple[uuid.UUID, str], Any] = {}
    out = []
    for r in rows:
        key_id = (r["operator_id"], r["kid"])
        if key_id not in keys:
            keys[key_id] = await org_service.registered_key(session, *key_id)
        key = keys[key_id]
        body = bodies.checked(r["body"], r["body_encoding"], r["body_sha256"])
        body_hash_ok = body is not None
        if body is None:
            outcome = SignatureOutcome.body_hash_mismatch
        elif key is None:
            outcome = SignatureOutcome.unknown_key
        else:
            try:
                security.verify_detached(r["signature"], body, key.jwk, key.algorithm)
                outcome = SignatureOutcome.verified
            except security.JoseError as exc:
                outcome = SignatureOutcome.__members__.get(exc.code, SignatureOutcome.invalid_signature)
        out.append(
            BatchCheck(
                id=r["id"],
                operator_id=r["operator_id"],
                kid=r["kid"],
                algorithm=key.algorithm if key else None,
                key_revoked_at=key.revoked_at if key else None,
                body_sha256=r["body_sha256"],
                body_hash_ok=body_hash_ok,
                outcome=outcome,
                received_at=r["received_at"],
                records=r["records"],
                accepted=r["accepted"],
                duplicate=r["duplicate"],
                rejected=r["rejected"],
            )
        )
    return out


async def methodology_versions_used(session: AsyncSession, operator_id: uuid.UUID) -> list[uuid.UUID]:
    """The methodology versions that computed any of the operator's records."""
    return await repo.methodology_versions_used(await db.raw_connection(session), operator_id)


@dataclass(frozen=True, slots=True)
class ActivityRow:
    month: str  # YYYY-MM in the platform's time zone
    behaviour_type: str
    records: int
    reduction_g: int
    points: int


@dataclass(frozen=True)
class SceneActivity:
    """What was recorded at a scene in the last months: by month and behaviour type, and in all."""

    since: datetime
    rows: list[ActivityRow]
    records: int
    reduction_g: int
    points: int
    by_type: dict[str, tuple[int, int]]  # behaviour type → (records, grams)


SCENE_ACTIVITY_MONTHS = 12


async def scene_activity(session: AsyncSession, scene_id: uuid.UUID) -> SceneActivity:
    """The records made at ``scene_id`` since the first day of the month 11 months ago (platform time)."""
    tz = ZoneInfo(get_settings().timezone)
    today = clock.now().astimezone(tz)
    month_index = today.year * 12 + today.month - 1 - (SCENE_ACTIVITY_MONTHS - 1)
    since = datetime(month_index // 12, month_index % 12 + 1, 1, tzinfo=tz)
    rows = [
        ActivityRow(r["month"], r["behaviour_type"], r["records"], int(r["reduction_g"]), int(r["points"]))
        for r in await repo.scene_activity(await db.raw_connection(session), scene_id, since, str(tz))
    ]
    by_type: dict[str, tuple[int, int]] = {}
    for r in rows:
        n, g = by_type.get(r.behaviour_type, (0, 0))
        by_type[r.behaviour_type] = (n + r.records, g + r.reduction_g)
    return SceneActivity(
        since=since,
        rows=rows,
        records=sum(r.records for r in rows),
        reduction_g=sum(r.reduction_g for r in rows),
        points=sum(r.points for r in rows),
        by_type=by_type,
    )


# ---- disclosure ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DailyTotals:
    """One local day of the platform: behaviours and grams by when they happened, points by when entered."""

    day: date
    behaviours: int
    reduction_g: int
    points_earned: int
    points_spent: int
    points_expired: int


async def platform_days(session: AsyncSession, first: date, last: date) -> list[DailyTotals]:
    """Every day from ``first`` to ``last`` (the platform's time zone), days without anything as zeros."""
    rows = await repo.platform_days(await db.raw_connection(session), first, last, get_settings().timezone)
    return [
        DailyTotals(r["day"], r["behaviours"], r["reduction_g"], r["earned"], r["spent"], r["expired"])
        for r in rows
    ]


async def platform_totals(session: AsyncSession) -> PlatformTotals:
    """Platform-wide figures for public disclosure (SZ 29): people, behaviours, grams, points by fate."""
    row = await repo.totals(await db.raw_connection(session))
    return PlatformTotals(
        people=await users_service.count_people(session),
        behaviours=row["behaviours"],
        reduction_g=int(row["reduction_g"]),
        points_credited=int(row["points_credited"]),
        points_used=-row["redeem"] - row["refund"],
        points_expired=-row["expire"],
        points_clawed_back=-row["clawback"],
    )


@dataclass(frozen=True)
class RecordsDay:
    """Records and grams of one local day (by when the behaviour happened) for one behaviour type or operator."""

    day: date
    key: str
    records: int
    reduction_g: int


async def records_by_day(session: AsyncSession, first: date, last: date, by: str) -> list[RecordsDay]:
    """Per local day from ``first`` to ``last`` and per ``by`` (``behaviour_type`` or ``operator_id``):
    the days and keys that have records, oldest first."""
    rows = await repo.records_by_day(
        await db.raw_connection(session), first, last, get_settings().timezone, by
    )
    return [RecordsDay(r["day"], r["key"], r["records"], r["reduction_g"]) for r in rows]


@dataclass(frozen=True)
class ExpiringDay:
    """Points that expire on one local day unless spent, and how many accounts hold them."""

    day: date
    points: int
    accounts: int


async def expiring_by_day(session: AsyncSession, first: date, last: date) -> list[ExpiringDay]:
    """Points still in lots that expire from now until the end of ``last``, per local day (days with any)."""
    rows = await repo.expiring_by_day(
        await db.raw_connection(session), clock.now(), first, last, get_settings().timezone
    )
    return [ExpiringDay(r["day"], r["points"], r["accounts"]) for r in rows]
