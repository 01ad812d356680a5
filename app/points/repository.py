"""All SQL of the points domain, set-based, on the raw asyncpg connection of the transaction.

Sets of rows travel as one JSON parameter read with ``json_to_recordset``: PostgreSQL parses it
in C, and asyncpg need not inspect every element of a dozen arrays (measured: the array path
cost a quarter of a batch's CPU).
"""

import uuid
from datetime import date, datetime

import asyncpg
import orjson

Conn = asyncpg.Connection


def as_json(rows) -> str:
    return orjson.dumps(rows, default=_default).decode()


def _default(value) -> str:
    return str(value)  # Decimal, and asyncpg's own UUID type (orjson knows only uuid.UUID)


async def live_entrustments(conn: Conn, operator_id: uuid.UUID, external_ids: set[str]):
    """The operator's entrustments not withdrawn (at most one per external id), by external id."""
    return await conn.fetch(
        "SELECT external_user_id, user_id, accepted_at FROM entrustments"
        " JOIN json_array_elements_text($2::json) AS x(id) ON external_user_id = x.id"
        " WHERE operator_id = $1 AND withdrawn_at IS NULL",
        operator_id, as_json(list(external_ids)),
    )


async def methodology_versions(conn: Conn, types: set[str]):
    return await conn.fetch(
        "SELECT id, code, version, behaviour_type, category, unit, net_factor_g, max_quantity_per_record,"
        " max_quantity_per_day, effective_from, effective_to FROM methodology_versions"
        " WHERE behaviour_type = ANY($1::text[]) AND status IN ('published', 'retired')"
        " ORDER BY behaviour_type, effective_from",
        list(types),
    )


async def rule_versions(conn: Conn) -> list:
    rows = await conn.fetch(
        "SELECT id, version, points_per_gram, daily_cap_points, type_daily_caps, lot_lifetime_days,"
        " effective_from, effective_to FROM exchange_rule_versions"
        " WHERE status IN ('published', 'retired') ORDER BY effective_from"
    )
    out = []
    for r in rows:
        caps = r["type_daily_caps"]
        out.append({**dict(r), "type_daily_caps": orjson.loads(caps) if isinstance(caps, str | bytes) else caps})
    return out


async def scenes(conn: Conn, scene_ids: set[uuid.UUID]):
    exists = await conn.fetchval("SELECT to_regclass('scenes') IS NOT NULL")
    if not exists:
        return []
    return await conn.fetch(
        "SELECT id, status, behaviour_types FROM scenes WHERE id = ANY($1::uuid[])", list(scene_ids)
    )


async def lock_accounts(conn: Conn, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Create missing accounts, then lock them all in ``user_id`` order (no deadlocks); balances."""
    ids = as_json(user_ids)
    await conn.execute(
        "INSERT INTO point_accounts (user_id) SELECT u::uuid FROM json_array_elements_text($1::json) AS u"
        " ORDER BY 1 ON CONFLICT DO NOTHING",
        ids,
    )
    rows = await conn.fetch(
        "SELECT a.user_id, a.balance FROM json_array_elements_text($1::json) AS u"
        " JOIN point_accounts a ON a.user_id = u::uuid ORDER BY a.user_id FOR UPDATE OF a",
        ids,
    )
    return {r["user_id"]: r["balance"] for r in rows}


async def existing_records(conn: Conn, operator_id: uuid.UUID, record_ids: list[str]):
    return await conn.fetch(
        "SELECT r.record_id, r.code, r.reduction_g, r.points, m.code AS methodology_code,"
        " m.version AS methodology_version, x.version AS rule_version"
        " FROM behaviour_records r JOIN methodology_versions m ON m.id = r.methodology_version_id"
        " JOIN exchange_rule_versions x ON x.id = r.rule_version_id"
        " JOIN json_array_elements_text($2::json) AS ids(id) ON r.record_id = ids.id WHERE r.operator_id = $1",
        operator_id, as_json(record_ids),
    )


async def claimed_evidence(conn: Conn, evidence: list[tuple[str, str]]):
    return await conn.fetch(
        "SELECT r.evidence_source, r.evidence_ref FROM behaviour_records r"
        " JOIN json_to_recordset($1::json) AS e(s text, r text) ON r.evidence_source = e.s AND r.evidence_ref = e.r",
        as_json([{"s": s, "r": r} for s, r in evidence]),
    )


async def overlapping(conn: Conn, candidates) -> list:
    """Earlier records of the same people and types whose time overlaps a candidate's.

    Records last at most 24 hours, so only those starting in the 24 hours before a candidate's
    start are looked at: an index range scan whatever the person's history.
    """
    return await conn.fetch(
        "SELECT DISTINCT r.user_id, r.behaviour_type, r.started_at, r.ended_at"
        " FROM json_to_recordset($1::json) AS c(u uuid, t text, s timestamptz, e timestamptz)"
        " JOIN behaviour_records r ON r.user_id = c.u AND r.started_at > c.s - interval '24 hours'"
        " AND r.started_at < c.e AND r.ended_at > c.s AND r.behaviour_type = c.t",
        as_json([{"u": c.user_id, "t": c.type, "s": c.started_at, "e": c.ended_at} for c in candidates]),
    )


async def daily_totals(conn: Conn, days: list[tuple[uuid.UUID, date, datetime, datetime]]):
    """What each person already earned on each local day, by type: summed from their records."""
    return await conn.fetch(
        "SELECT p.u AS user_id, p.d AS day, r.behaviour_type, sum(r.points)::bigint AS points,"
        " sum(r.counted_quantity) AS quantity"
        " FROM json_to_recordset($1::json) AS p(u uuid, d date, s timestamptz, e timestamptz)"
        " JOIN behaviour_records r ON r.user_id = p.u AND r.started_at >= p.s AND r.started_at < p.e"
        " GROUP BY p.u, p.d, r.behaviour_type",
        as_json([{"u": u, "d": d, "s": s, "e": e} for u, d, s, e in days]),
    )


async def insert_batch(conn: Conn, batch_id, operator_id, kid, signature, body, sha, now, count, summary) -> None:
    await conn.execute(
        "INSERT INTO behaviour_batches (id, operator_id, kid, signature, body, body_sha256, received_at, records,"
        " accepted, duplicate, rejected) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        batch_id, operator_id, kid, signature, body, sha, now, count,
        summary["accepted"], summary["duplicate"], summary["rejected"],
    )


CREDIT_SQL = """
WITH records AS (
  INSERT INTO behaviour_records (operator_id, batch_id, created_at, record_id, user_id, behaviour_type, started_at,
    ended_at, quantity, counted_quantity, unit, scene_id, evidence_source, evidence_ref, methodology_version_id,
    rule_version_id, reduction_g, points, code)
  SELECT $1, $2, $3, r.* FROM json_to_recordset($4::json) AS r(record_id text, user_id uuid, behaviour_type text,
    started_at timestamptz, ended_at timestamptz, quantity numeric, counted_quantity numeric, unit text,
    scene_id uuid, evidence_source text, evidence_ref text, methodology_version_id uuid, rule_version_id uuid,
    reduction_g bigint, points bigint, code text)
  RETURNING 1
), lot_rows AS (
  SELECT * FROM json_to_recordset($5::json) AS l(u uuid, x timestamptz, p bigint)
), lots AS (
  INSERT INTO point_lots (user_id, expires_at, credited, remaining)
  SELECT u, x, p, p FROM lot_rows ORDER BY u, x
  ON CONFLICT (user_id, expires_at) DO UPDATE SET credited = point_lots.credited + EXCLUDED.credited,
    remaining = point_lots.remaining + EXCLUDED.remaining
  RETURNING id, user_id, expires_at
), account_rows AS (
  SELECT * FROM json_to_recordset($6::json) AS a(u uuid, p bigint, g bigint, b bigint)
), entries AS (
  INSERT INTO ledger_entries (user_id, kind, amount, balance_after, ref_type, ref_id, created_at)
  SELECT u, 'earn', p, b, 'batch', $2::text, $3 FROM account_rows WHERE p > 0
  RETURNING id, user_id
), allocations AS (
  INSERT INTO lot_allocations (entry_id, lot_id, user_id, amount)
  SELECT e.id, l.id, l.user_id, r.p FROM lots l JOIN lot_rows r ON r.u = l.user_id AND r.x = l.expires_at
  JOIN entries e ON e.user_id = l.user_id
  RETURNING 1
), accounts AS (
  UPDATE point_accounts a SET balance = a.balance + r.p, lifetime_points = a.lifetime_points + r.p,
    lifetime_reduction_g = a.lifetime_reduction_g + r.g
  FROM account_rows r WHERE a.user_id = r.u
  RETURNING 1
)
SELECT (SELECT count(*) FROM records), (SELECT count(*) FROM allocations), (SELECT count(*) FROM accounts)
"""


async def credit(
    conn: Conn, operator_id: uuid.UUID, batch_id: uuid.UUID, now: datetime,
    records: list[dict], lots: list[dict], accounts: list[dict],
) -> None:
    """Records, lots, one earn entry per person, allocations, accounts: one statement."""
    await conn.fetchrow(CREDIT_SQL, operator_id, batch_id, now, as_json(records), as_json(lots), as_json(accounts))
