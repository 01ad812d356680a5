"""``carbon-points ledger verify``: every invariant of the ledger, checked in SQL."""

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import db

CHECKS: list[tuple[str, str]] = [
    (
        "account balance equals the sum of its entries",
        "SELECT a.user_id::text, a.balance, coalesce(e.total, 0) FROM point_accounts a"
        " LEFT JOIN (SELECT user_id, sum(amount) AS total FROM ledger_entries GROUP BY user_id) e"
        " ON e.user_id = a.user_id WHERE a.balance <> coalesce(e.total, 0)",
    ),
    (
        "account balance equals the sum of its lots' remainders",
        "SELECT a.user_id::text, a.balance, coalesce(l.total, 0) FROM point_accounts a"
        " LEFT JOIN (SELECT user_id, sum(remaining) AS total FROM point_lots GROUP BY user_id) l"
        " ON l.user_id = a.user_id WHERE a.balance <> coalesce(l.total, 0)",
    ),
    (
        "entries exist only for accounts",
        "SELECT DISTINCT e.user_id::text FROM ledger_entries e"
        " LEFT JOIN point_accounts a ON a.user_id = e.user_id WHERE a.user_id IS NULL",
    ),
    ("no lot is negative or over-full", "SELECT id, remaining, credited FROM point_lots WHERE remaining < 0 OR remaining > credited"),
    ("no account is negative", "SELECT user_id::text, balance FROM point_accounts WHERE balance < 0"),
    (
        "each entry's balance_after follows the one before it",
        "SELECT id, user_id::text, balance_after, running FROM ("
        " SELECT id, user_id, balance_after, sum(amount) OVER (PARTITION BY user_id ORDER BY id) AS running"
        " FROM ledger_entries) t WHERE balance_after <> running",
    ),
    (
        "each entry's allocations add up to its amount",
        "SELECT e.id, e.amount, coalesce(s.total, 0) FROM ledger_entries e"
        " LEFT JOIN (SELECT entry_id, sum(amount) AS total FROM lot_allocations GROUP BY entry_id) s"
        " ON s.entry_id = e.id WHERE abs(e.amount) <> coalesce(s.total, 0)",
    ),
    (
        "allocations belong to the entry's own account",
        "SELECT a.entry_id, a.lot_id FROM lot_allocations a JOIN ledger_entries e ON e.id = a.entry_id"
        " JOIN point_lots l ON l.id = a.lot_id WHERE e.user_id <> a.user_id OR l.user_id <> a.user_id",
    ),
    (
        "each lot's remainder equals what was put in minus what was taken",
        "SELECT l.id, l.remaining, coalesce(m.net, 0), l.credited, coalesce(m.credited, 0) FROM point_lots l"
        " LEFT JOIN (SELECT a.lot_id, sum(CASE WHEN e.amount > 0 THEN a.amount ELSE -a.amount END) AS net,"
        "   sum(CASE WHEN e.kind = 'earn' THEN a.amount ELSE 0 END) AS credited"
        "   FROM lot_allocations a JOIN ledger_entries e ON e.id = a.entry_id GROUP BY a.lot_id) m"
        " ON m.lot_id = l.id WHERE l.remaining <> coalesce(m.net, 0) OR l.credited <> coalesce(m.credited, 0)",
    ),
    (
        "lifetime points equal the points of the accepted records",
        "SELECT a.user_id::text, a.lifetime_points, coalesce(r.total, 0) FROM point_accounts a"
        " LEFT JOIN (SELECT user_id, sum(points) AS total FROM behaviour_records GROUP BY user_id) r"
        " ON r.user_id = a.user_id WHERE a.lifetime_points <> coalesce(r.total, 0)",
    ),
]


@dataclass
class Violation:
    check: str
    examples: list[tuple]


async def verify(session: AsyncSession, examples: int = 5) -> list[Violation]:
    conn = await db.raw_connection(session)
    violations = []
    for name, sql in CHECKS:
        rows = await conn.fetch(f"{sql} LIMIT {examples}")
        if rows:
            violations.append(Violation(name, [tuple(r) for r in rows]))
    return violations
