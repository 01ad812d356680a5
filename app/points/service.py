"""The ledger: people's views, spending (soonest-expiring lots first), refunds, clawback, expiry.

Every change locks the person's account row first (one account at a time, or several in
``user_id`` order), appends signed ledger entries with the balance after them, and records in
``lot_allocations`` which lots each entry touched. Balances are never set, only moved by entries.
Other domains (the mall) call :func:`spend` and :func:`refund` inside their own transaction.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.core import audit, clock, db
from app.core.pagination import decode_cursor, page
from app.points.exceptions import EntryNotFound, InsufficientPoints, InvalidAmount


@dataclass(frozen=True)
class Spend:
    entry_id: int
    points: int
    balance_after: int


async def account(session: AsyncSession, user_id: uuid.UUID) -> dict:
    """Balance usable now (lots not yet expired), broken down by expiry, soonest first."""
    conn = await db.raw_connection(session)
    now = clock.now()
    totals = await conn.fetchrow(
        "SELECT lifetime_points, lifetime_reduction_g FROM point_accounts WHERE user_id = $1", user_id
    )
    lots = await conn.fetch(
        "SELECT expires_at, sum(remaining)::bigint AS points FROM point_lots"
        " WHERE user_id = $1 AND remaining > 0 AND expires_at > $2 GROUP BY expires_at ORDER BY expires_at",
        user_id, now,
    )
    expiring = [{"expires_at": r["expires_at"], "points": r["points"]} for r in lots]
    return {
        "user_id": user_id,
        "balance": sum(e["points"] for e in expiring),
        "lifetime_points": totals["lifetime_points"] if totals else 0,
        "lifetime_reduction_g": totals["lifetime_reduction_g"] if totals else 0,
        "expiring": expiring,
    }


async def ledger(session: AsyncSession, user_id: uuid.UUID, limit: int, cursor: str | None) -> dict:
    after = decode_cursor(cursor, int)
    rows = (
        await session.execute(
            sa.text(
                "SELECT id, kind, amount, balance_after, ref_type, ref_id, memo, created_at FROM ledger_entries"
                " WHERE user_id = :u AND id < :after ORDER BY id DESC LIMIT :n"
            ),
            {"u": user_id, "after": after[0] if after else 2**63 - 1, "n": limit + 1},
        )
    ).all()
    return page([dict(r._mapping) for r in rows], limit, lambda r: [r["id"]])


async def behaviours(session: AsyncSession, user_id: uuid.UUID, limit: int, cursor: str | None) -> dict:
    after = decode_cursor(cursor, datetime, int)
    params = {"u": user_id, "n": limit + 1}
    where = ""
    if after:
        where = " AND (r.started_at, r.id) < (:s, :i)"
        params.update(s=after[0], i=after[1])
    rows = (
        await session.execute(
            sa.text(
                "SELECT r.id, r.record_id, r.operator_id, r.behaviour_type AS type, r.started_at, r.ended_at,"
                " r.quantity, r.counted_quantity, r.unit, r.scene_id, r.reduction_g, r.points, r.code,"
                " m.code || '@' || m.version AS methodology_version, x.version AS rule_version"
                " FROM behaviour_records r JOIN methodology_versions m ON m.id = r.methodology_version_id"
                " JOIN exchange_rule_versions x ON x.id = r.rule_version_id"
                f" WHERE r.user_id = :u{where} ORDER BY r.started_at DESC, r.id DESC LIMIT :n"
            ),
            params,
        )
    ).all()
    return page([dict(r._mapping) for r in rows], limit, lambda r: [r["started_at"], r["id"]])


async def _lock(conn, user_id: uuid.UUID) -> int:
    balance = await conn.fetchval("SELECT balance FROM point_accounts WHERE user_id = $1 FOR UPDATE", user_id)
    return balance if balance is not None else 0


_DEBIT_SQL = """
WITH candidates AS (
  SELECT id, remaining, sum(remaining) OVER (ORDER BY expires_at, id) AS running FROM point_lots
  WHERE user_id = $1 AND remaining > 0 AND expires_at > $3
), chosen AS (
  SELECT id, least(remaining, $2::bigint - (running - remaining))::bigint AS take FROM candidates
  WHERE running - remaining < $2::bigint
), enough AS (
  SELECT coalesce(sum(take), 0) = $2::bigint AS ok FROM chosen
), lots AS (
  UPDATE point_lots l SET remaining = l.remaining - c.take FROM chosen c, enough e
  WHERE e.ok AND l.id = c.id RETURNING l.id, c.take
), entry AS (
  INSERT INTO ledger_entries (user_id, kind, amount, balance_after, ref_type, ref_id, memo, created_at)
  SELECT $1, $4, -$2::bigint, $5, $6, $7, $8, $3 FROM enough WHERE ok RETURNING id
), allocations AS (
  INSERT INTO lot_allocations (entry_id, lot_id, user_id, amount) SELECT entry.id, lots.id, $1, lots.take FROM entry, lots
), account AS (
  UPDATE point_accounts SET balance = balance - $2::bigint WHERE user_id = $1 AND (SELECT ok FROM enough)
)
SELECT id FROM entry
"""


async def _debit(conn, user_id: uuid.UUID, points: int, kind: str, ref_type: str, ref_id: str, memo, now) -> Spend:
    """Take ``points`` from the soonest-expiring unexpired lots: lock the account, then one statement.

    The statement runs after the lock is held, so its snapshot sees every committed change to the
    person's lots (all writers lock the account first). Not enough points: nothing is changed.
    """
    balance = await _lock(conn, user_id)
    if balance < points:  # the balance may still count lots expired but not yet swept: a bound, not the answer
        raise InsufficientPoints(f"{points} points needed")
    entry_id = await conn.fetchval(_DEBIT_SQL, user_id, points, now, kind, balance - points, ref_type, ref_id, memo)
    if entry_id is None:
        raise InsufficientPoints(f"{points} points needed")
    return Spend(entry_id, points, balance - points)


async def spend(
    session: AsyncSession, user_id: uuid.UUID, points: int, *, ref_type: str, ref_id: str, memo: str | None = None
) -> Spend:
    """The person's own redemption: a ``redeem`` entry. Raises ``insufficient_points``."""
    if not isinstance(points, int) or points <= 0:
        raise InvalidAmount()
    conn = await db.raw_connection(session)
    result = await _debit(conn, user_id, points, "redeem", ref_type, ref_id, memo, clock.now())
    audit.record(
        session, actor=f"user:{user_id}", action="points.redeemed", subject_type="user", subject_id=user_id,
        data={"points": points, "ref_type": ref_type, "ref_id": ref_id, "entry_id": result.entry_id},
    )
    return result


_REFUND_SQL = """
WITH lots AS (
  UPDATE point_lots l SET remaining = l.remaining + a.amount FROM lot_allocations a
  WHERE a.entry_id = $1 AND l.id = a.lot_id RETURNING l.id, a.amount, l.expires_at
), entry AS (
  INSERT INTO ledger_entries (user_id, kind, amount, balance_after, ref_type, ref_id, memo, created_at)
  VALUES ($2, 'refund', $3, $4, $5, $6, $7, $8) RETURNING id
), allocations AS (
  INSERT INTO lot_allocations (entry_id, lot_id, user_id, amount) SELECT entry.id, lots.id, $2, lots.amount FROM entry, lots
), account AS (
  UPDATE point_accounts SET balance = $4 WHERE user_id = $2
)
SELECT id, amount, expires_at FROM lots
"""


async def refund(session: AsyncSession, spend_entry_id: int, *, ref_type: str, ref_id: str) -> dict:
    """Give a spend back to the lots it came from, with their original expiry.

    A share whose lot has expired in the meantime is expired at once (a ``refund`` then an
    ``expire`` entry): refunded points are never resurrected. The caller guarantees exactly-once
    (e.g. by a conditional update of its order's status in the same transaction).
    Two round trips: the spend with its account locked, then one statement (a third if a share expired).
    """
    conn = await db.raw_connection(session)
    now = clock.now()
    spent = await conn.fetchrow(
        "SELECT e.user_id, e.amount, a.balance FROM ledger_entries e JOIN point_accounts a ON a.user_id = e.user_id"
        " WHERE e.id = $1 AND e.kind IN ('redeem', 'clawback') FOR UPDATE OF a",
        spend_entry_id,
    )
    if spent is None:
        raise EntryNotFound()
    user_id, points, balance = spent["user_id"], -spent["amount"], spent["balance"]
    lots = await conn.fetch(
        _REFUND_SQL, spend_entry_id, user_id, points, balance + points, ref_type, ref_id,
        f"refund of entry {spend_entry_id}", now,
    )
    balance += points
    expired = [(r["id"], r["amount"]) for r in lots if r["expires_at"] <= now]
    expired_points = sum(a for _, a in expired)
    if expired_points:
        await _expire_shares(conn, user_id, expired, balance, now, ref_type, ref_id)
        balance -= expired_points
    audit.record(
        session, actor="platform", action="points.refunded", subject_type="user", subject_id=user_id,
        data={"points": points, "expired_at_once": expired_points, "of_entry": spend_entry_id, "ref_id": ref_id},
    )
    return {"refunded": points, "expired": expired_points, "balance": balance}


_EXPIRE_SHARES_SQL = """
WITH shares AS (
  SELECT * FROM unnest($2::bigint[], $3::bigint[]) AS t(lot_id, amount)
), lots AS (
  UPDATE point_lots l SET remaining = l.remaining - s.amount FROM shares s WHERE l.id = s.lot_id
), entry AS (
  INSERT INTO ledger_entries (user_id, kind, amount, balance_after, ref_type, ref_id, memo, created_at)
  VALUES ($1, 'expire', -$4::bigint, $5::bigint - $4::bigint, $6, $7, 'lot expired', $8) RETURNING id
), allocations AS (
  INSERT INTO lot_allocations (entry_id, lot_id, user_id, amount) SELECT entry.id, s.lot_id, $1, s.amount FROM entry, shares s
), account AS (
  UPDATE point_accounts SET balance = $5::bigint - $4::bigint WHERE user_id = $1
)
SELECT id FROM entry
"""


async def _expire_shares(conn, user_id, shares: list[tuple[int, int]], balance: int, now, ref_type, ref_id) -> int:
    """Expire refunded shares of lots that have expired: lots, entry, allocations, account in one statement."""
    total = sum(a for _, a in shares)
    return await conn.fetchval(
        _EXPIRE_SHARES_SQL, user_id, [s[0] for s in shares], [s[1] for s in shares], total, balance, ref_type,
        ref_id, now,
    )


async def clawback(session: AsyncSession, authority: Principal, user_id: uuid.UUID, points: int, reason: str) -> Spend:
    """The authority's recorded clawback (fraud): a ``clawback`` entry, soonest-expiring lots first."""
    if points <= 0:
        raise InvalidAmount()
    conn = await db.raw_connection(session)
    exists = await conn.fetchval("SELECT 1 FROM point_accounts WHERE user_id = $1", user_id)
    if not exists:
        from app.points.exceptions import AccountNotFound

        raise AccountNotFound()
    result = await _debit(conn, user_id, points, "clawback", "clawback", str(uuid.uuid4()), reason, clock.now())
    audit.record(
        session, actor=authority.actor, action="points.clawback", subject_type="user", subject_id=user_id,
        data={"points": points, "reason": reason, "entry_id": result.entry_id},
    )
    return result


async def expire_due(session: AsyncSession, *, now: datetime | None = None, max_accounts: int = 5000) -> dict:
    """Expire every lot whose time has come, for up to ``max_accounts`` people: set-based.

    One ``expire`` entry per person with allocations per lot. Accounts are locked in ``user_id``
    order. Returns how many people and points; run it until ``accounts`` is 0.
    """
    conn = await db.raw_connection(session)
    now = now or clock.now()
    users = [
        r["user_id"]
        for r in await conn.fetch(
            "SELECT DISTINCT user_id FROM point_lots WHERE expires_at <= $1 AND remaining > 0"
            " ORDER BY user_id LIMIT $2",
            now, max_accounts,
        )
    ]
    if not users:
        return {"accounts": 0, "points": 0}
    await conn.execute(
        "SELECT 1 FROM point_accounts WHERE user_id = ANY($1::uuid[]) ORDER BY user_id FOR UPDATE", users
    )
    rows = await conn.fetch(
        "WITH due AS ("
        "  UPDATE point_lots SET remaining = 0 FROM ("
        "    SELECT id, remaining AS amount FROM point_lots"
        "    WHERE user_id = ANY($1::uuid[]) AND expires_at <= $2 AND remaining > 0"
        "  ) d WHERE point_lots.id = d.id RETURNING point_lots.id, point_lots.user_id, d.amount"
        "), per_user AS ("
        "  SELECT user_id, sum(amount)::bigint AS total FROM due GROUP BY user_id"
        "), accounts AS ("
        "  UPDATE point_accounts a SET balance = a.balance - p.total FROM per_user p WHERE a.user_id = p.user_id"
        "  RETURNING a.user_id, a.balance, p.total"
        "), entries AS ("
        "  INSERT INTO ledger_entries (user_id, kind, amount, balance_after, ref_type, ref_id, memo, created_at)"
        "  SELECT user_id, 'expire', -total, balance, 'expiry', $3, 'lots expired', $2 FROM accounts"
        "  RETURNING id, user_id"
        ") INSERT INTO lot_allocations (entry_id, lot_id, user_id, amount)"
        " SELECT e.id, d.id, d.user_id, d.amount FROM due d JOIN entries e ON e.user_id = d.user_id"
        " RETURNING amount",
        users, now, now.isoformat(),
    )
    points = sum(r["amount"] for r in rows)
    audit.record(
        session, actor="platform", action="points.expired", subject_type="expiry", subject_id=now.isoformat(),
        data={"accounts": len(users), "points": points},
    )
    return {"accounts": len(users), "points": points}


async def platform_totals(session: AsyncSession) -> dict:
    """Platform-wide figures for public disclosure (SZ 29): people, behaviours, grams, points by fate."""
    conn = await db.raw_connection(session)
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM users WHERE deleted_at IS NULL) AS people,"
        " (SELECT count(*) FROM behaviour_records) AS behaviours,"
        " (SELECT coalesce(sum(lifetime_reduction_g), 0) FROM point_accounts) AS reduction_g,"
        " (SELECT coalesce(sum(lifetime_points), 0) FROM point_accounts) AS points_credited"
    )
    by_kind = {
        r["kind"]: -r["total"]
        for r in await conn.fetch(
            "SELECT kind, coalesce(sum(amount), 0)::bigint AS total FROM ledger_entries"
            " WHERE kind IN ('redeem', 'refund', 'expire', 'clawback') GROUP BY kind"
        )
    }
    return {
        "people": row["people"],
        "behaviours": row["behaviours"],
        "reduction_g": int(row["reduction_g"]),
        "points_credited": int(row["points_credited"]),
        "points_used": by_kind.get("redeem", 0) + by_kind.get("refund", 0),
        "points_expired": by_kind.get("expire", 0),
        "points_clawed_back": by_kind.get("clawback", 0),
    }
