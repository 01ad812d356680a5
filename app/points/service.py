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
from app.core.pagination import InvalidCursor, decode_cursor, page
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
    after = decode_cursor(cursor, 1)
    if after and not isinstance(after[0], int):
        raise InvalidCursor("the cursor is not one this API gave out")
    rows = (
        await session.execute(
            sa.text(
                "SELECT id, kind, amount, balance_after, ref_type, ref_id, memo, created_at FROM ledger_entries"
                " WHERE user_id = :u AND id < :after ORDER BY id DESC LIMIT :n"
            ),
            {"u": user_id, "after": int(after[0]) if after else 2**63 - 1, "n": limit + 1},
        )
    ).all()
    return page([dict(r._mapping) for r in rows], limit, lambda r: [r["id"]])


async def behaviours(session: AsyncSession, user_id: uuid.UUID, limit: int, cursor: str | None) -> dict:
    after = decode_cursor(cursor, 2)
    params = {"u": user_id, "n": limit + 1}
    where = ""
    if after:
        where = " AND (r.started_at, r.id) < (:s, :i)"
        try:
            params.update(s=datetime.fromisoformat(after[0]), i=int(after[1]))
        except (TypeError, ValueError) as exc:
            raise InvalidCursor("the cursor is not one this API gave out") from exc
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
    return page([dict(r._mapping) for r in rows], limit, lambda r: [r["started_at"].isoformat(), r["id"]])


async def _lock(conn, user_id: uuid.UUID) -> int:
    balance = await conn.fetchval("SELECT balance FROM point_accounts WHERE user_id = $1 FOR UPDATE", user_id)
    return balance if balance is not None else 0


async def _debit(conn, user_id: uuid.UUID, points: int, kind: str, ref_type: str, ref_id: str, memo, now) -> Spend:
    """Take ``points`` from the soonest-expiring unexpired lots (the account is locked)."""
    balance = await _lock(conn, user_id)
    taken = await conn.fetch(
        "WITH candidates AS ("
        "  SELECT id, remaining, sum(remaining) OVER (ORDER BY expires_at, id) AS running FROM point_lots"
        "  WHERE user_id = $1 AND remaining > 0 AND expires_at > $3 ORDER BY expires_at, id"
        "), chosen AS ("
        "  SELECT id, least(remaining, $2 - (running - remaining)) AS take FROM candidates"
        "  WHERE running - remaining < $2"
        ") UPDATE point_lots l SET remaining = l.remaining - c.take FROM chosen c WHERE l.id = c.id"
        " RETURNING l.id, c.take",
        user_id, points, now,
    )
    if sum(r["take"] for r in taken) < points:
        raise InsufficientPoints(f"{points} points needed")
    entry_id = await conn.fetchval(
        "INSERT INTO ledger_entries (user_id, kind, amount, balance_after, ref_type, ref_id, memo, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        user_id, kind, -points, balance - points, ref_type, ref_id, memo, now,
    )
    await conn.execute(
        "INSERT INTO lot_allocations (entry_id, lot_id, user_id, amount)"
        " SELECT $1, l, $2, a FROM unnest($3::bigint[], $4::bigint[]) AS t(l, a)",
        entry_id, user_id, [r["id"] for r in taken], [r["take"] for r in taken],
    )
    await conn.execute("UPDATE point_accounts SET balance = balance - $2 WHERE user_id = $1", user_id, points)
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


async def refund(session: AsyncSession, spend_entry_id: int, *, ref_type: str, ref_id: str) -> dict:
    """Give a spend back to the lots it came from, with their original expiry.

    A share whose lot has expired in the meantime is expired at once (a ``refund`` then an
    ``expire`` entry): refunded points are never resurrected. The caller guarantees exactly-once
    (e.g. by a conditional update of its order's status in the same transaction).
    """
    conn = await db.raw_connection(session)
    now = clock.now()
    spent = await conn.fetchrow(
        "SELECT user_id, amount FROM ledger_entries WHERE id = $1 AND kind IN ('redeem', 'clawback')", spend_entry_id
    )
    if spent is None:
        raise EntryNotFound()
    user_id, points = spent["user_id"], -spent["amount"]
    balance = await _lock(conn, user_id)
    lots = await conn.fetch(
        "UPDATE point_lots l SET remaining = l.remaining + a.amount FROM lot_allocations a"
        " WHERE a.entry_id = $1 AND l.id = a.lot_id RETURNING l.id, a.amount, l.expires_at",
        spend_entry_id,
    )
    refund_id = await conn.fetchval(
        "INSERT INTO ledger_entries (user_id, kind, amount, balance_after, ref_type, ref_id, memo, created_at)"
        " VALUES ($1, 'refund', $2, $3, $4, $5, $6, $7) RETURNING id",
        user_id, points, balance + points, ref_type, ref_id, f"refund of entry {spend_entry_id}", now,
    )
    await conn.execute(
        "INSERT INTO lot_allocations (entry_id, lot_id, user_id, amount)"
        " SELECT $1, l, $2, a FROM unnest($3::bigint[], $4::bigint[]) AS t(l, a)",
        refund_id, user_id, [r["id"] for r in lots], [r["amount"] for r in lots],
    )
    expired = [r for r in lots if r["expires_at"] <= now]
    balance += points
    expired_points = sum(r["amount"] for r in expired)
    if expired_points:
        await _expire_shares(conn, user_id, [(r["id"], r["amount"]) for r in expired], balance, now, ref_type, ref_id)
        balance -= expired_points
    await conn.execute("UPDATE point_accounts SET balance = $2 WHERE user_id = $1", user_id, balance)
    audit.record(
        session, actor="platform", action="points.refunded", subject_type="user", subject_id=user_id,
        data={"points": points, "expired_at_once": expired_points, "of_entry": spend_entry_id, "ref_id": ref_id},
    )
    return {"refunded": points, "expired": expired_points, "balance": balance}


async def _expire_shares(conn, user_id, shares: list[tuple[int, int]], balance: int, now, ref_type, ref_id) -> int:
    total = sum(a for _, a in shares)
    await conn.execute(
        "UPDATE point_lots l SET remaining = l.remaining - t.a FROM unnest($1::bigint[], $2::bigint[]) AS t(l, a)"
        " WHERE l.id = t.l",
        [s[0] for s in shares], [s[1] for s in shares],
    )
    entry_id = await conn.fetchval(
        "INSERT INTO ledger_entries (user_id, kind, amount, balance_after, ref_type, ref_id, memo, created_at)"
        " VALUES ($1, 'expire', $2, $3, $4, $5, 'lot expired', $6) RETURNING id",
        user_id, -total, balance - total, ref_type, ref_id, now,
    )
    await conn.execute(
        "INSERT INTO lot_allocations (entry_id, lot_id, user_id, amount)"
        " SELECT $1, l, $2, a FROM unnest($3::bigint[], $4::bigint[]) AS t(l, a)",
        entry_id, user_id, [s[0] for s in shares], [s[1] for s in shares],
    )
    return entry_id


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
