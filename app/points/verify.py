"""``carbon-points ledger verify``: every invariant of the ledger, checked in SQL."""

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import db
from app.points import repository as repo

CHECKS = repo.LEDGER_CHECKS
"""(what must hold, a query for the rows that break it), in the order they are checked."""


@dataclass
class Violation:
    check: str
    examples: list[tuple]


async def verify(session: AsyncSession, examples: int = 5) -> list[Violation]:
    conn = await db.raw_connection(session)
    return [Violation(name, rows) for name, rows in await repo.broken_invariants(conn, examples)]
