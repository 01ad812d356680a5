"""A batch's reads of earlier records look each of its keys up on its own (``ONE_LOOKUP_EACH``), however the
planner prices the table: never one pass hashing all the records (which grew with the history)."""

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from app.points import repository as repo

NOW = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)


@dataclass
class Candidate:
    user_id: uuid.UUID
    type: str
    started_at: datetime
    ended_at: datetime


class Explained:
    """A connection whose ``fetch`` answers the statement's plan instead of its rows."""

    def __init__(self, conn: asyncpg.Connection):
        self.conn, self.plans = conn, []

    async def fetch(self, sql: str, *args):
        self.plans.append("\n".join(r[0] for r in await self.conn.fetch("EXPLAIN " + sql, *args)))
        return []


@pytest.fixture
async def explained(servers):
    conn = await asyncpg.connect(servers.database_url)
    try:
        async with conn.transaction():
            # an index priced so dear that a plain join would hash every record of the table
            await conn.execute("SET LOCAL random_page_cost = 100000")
            yield Explained(conn)
    finally:
        await conn.close()


async def test_each_key_is_its_own_lookup(explained):
    people = [uuid.uuid4() for _ in range(1000)]
    candidates = [Candidate(p, "metro", NOW, NOW + timedelta(minutes=30)) for p in people]
    await repo.existing_records(explained, uuid.uuid4(), [f"r-{n}" for n in range(1000)])
    await repo.claimed_evidence(explained, [("card", f"ref-{n}") for n in range(1000)])
    await repo.overlapping(explained, candidates)
    await repo.daily_totals(explained, [(p, 1) for p in people], [(NOW.date(), NOW, NOW + timedelta(days=1))])
    assert len(explained.plans) == 4
    for plan in explained.plans:
        assert "Nested Loop" in plan and "Hash Join" not in plan and "Merge Join" not in plan, plan
        # the records' scan runs under the loop, once a key, with the key as its condition
        assert "on behaviour_records r" in plan.split("Nested Loop", 1)[1], plan


def test_the_credit_keys_fill_the_columns_they_name():
    """``repo.CREDIT_KEYS`` (what ingestion writes) and the statement that reads the rows say the same."""
    records = repo.CREDIT_SQL.split("RETURNING 1", 1)[0]
    columns = re.search(r"INSERT INTO behaviour_records \((.*?)\)", records, re.S)
    values = re.search(r"SELECT \$1, \$2, \$3, (.*?)\s+FROM json_to_recordset", records, re.S)
    declared = re.search(r"AS r\((.*?)\)\s*$", records.strip(), re.S)
    assert columns and values and declared
    names = re.split(r",\s*", columns.group(1).strip())[3:]  # after operator_id, batch_id, created_at
    keys = [re.findall(r"r\.(\w+)", v)[0] for v in re.split(r",\s*", values.group(1))]
    assert dict(zip(keys, names, strict=True)) == repo.CREDIT_KEYS
    assert [d.split()[0] for d in re.split(r",\s*", declared.group(1).strip())] == list(repo.CREDIT_KEYS)
