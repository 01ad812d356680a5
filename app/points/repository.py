"""All SQL of the points domain, set-based, on the raw asyncpg connection of the transaction."""

import uuid
from datetime import date, datetime

import asyncpg
import orjson

Conn = asyncpg.Connection


async def entrustments(conn: Conn, operator_id: uuid.UUID, external_ids: set[str]):
    return await conn.fetch(
        "SELECT external_user_id, user_id, accepted_at, withdrawn_at FROM entrustments"
        " WHERE operator_id = $1 AND external_user_id = ANY($2::text[]) ORDER BY accepted_at",
        operator_id, list(external_ids),
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


async def lock_accounts(conn: Conn, user_ids: list[uuid.UUID]) -> None:
    """Create missing accounts, then lock them all in ``user_id`` order (no deadlocks)."""
    await conn.execute(
        "INSERT INTO point_accounts (user_id) SELECT u FROM unnest($1::uuid[]) AS u ORDER BY u"
        " ON CONFLICT DO NOTHING",
        user_ids,
    )
    await conn.execute(
        "SELECT 1 FROM point_accounts WHERE user_id = ANY($1::uuid[]) ORDER BY user_id FOR UPDATE", user_ids
    )


async def existing_records(conn: Conn, operator_id: uuid.UUID, record_ids: list[str]):
    return await conn.fetch(
        "SELECT r.record_id, r.code, r.reduction_g, r.points, m.code AS methodology_code,"
        " m.version AS methodology_version, x.version AS rule_version"
        " FROM behaviour_records r JOIN methodology_versions m ON m.id = r.methodology_version_id"
        " JOIN exchange_rule_versions x ON x.id = r.rule_version_id"
        " WHERE r.operator_id = $1 AND r.record_id = ANY($2::text[])",
        operator_id, record_ids,
    )


async def claimed_evidence(conn: Conn, sources: list[str], refs: list[str]):
    return await conn.fetch(
        "SELECT r.evidence_source, r.evidence_ref FROM behaviour_records r"
        " JOIN unnest($1::text[], $2::text[]) AS e(source, ref)"
        " ON r.evidence_source = e.source AND r.evidence_ref = e.ref",
        sources, refs,
    )


async def overlapping(conn: Conn, candidates) -> list:
    """Earlier records of the same people and types whose time overlaps a candidate's.

    Records last at most 24 hours, so only those starting in the 24 hours before a candidate's
    start are looked at: an index range scan whatever the person's history.
    """
    return await conn.fetch(
        "SELECT DISTINCT r.user_id, r.behaviour_type, r.started_at, r.ended_at"
        " FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[]) AS c(u, t, s, e)"
        " JOIN behaviour_records r ON r.user_id = c.u AND r.behaviour_type = c.t"
        " AND r.started_at > c.s - interval '24 hours' AND r.started_at < c.e AND r.ended_at > c.s",
        [c.user_id for c in candidates], [c.type for c in candidates],
        [c.started_at for c in candidates], [c.ended_at for c in candidates],
    )


async def daily_totals(conn: Conn, pairs: list[tuple[uuid.UUID, date]]):
    return await conn.fetch(
        "SELECT d.user_id, d.day, d.behaviour_type, d.points, d.quantity FROM daily_totals d"
        " JOIN unnest($1::uuid[], $2::date[]) AS p(u, day) ON d.user_id = p.u AND d.day = p.day",
        [p[0] for p in pairs], [p[1] for p in pairs],
    )


async def insert_batch(conn: Conn, batch_id, operator_id, kid, signature, body, sha, now, count, summary) -> None:
    await conn.execute(
        "INSERT INTO behaviour_batches (id, operator_id, kid, signature, body, body_sha256, received_at, records,"
        " accepted, duplicate, rejected) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        batch_id, operator_id, kid, signature, body, sha, now, count,
        summary["accepted"], summary["duplicate"], summary["rejected"],
    )


async def insert_records(conn: Conn, operator_id, batch_id, credited: list, now: datetime) -> None:
    cols = [[] for _ in range(16)]
    for c, points, reduction_g, counted, code in credited:
        for i, v in enumerate((
            c.record_id, c.user_id, c.type, c.started_at, c.ended_at, c.quantity, counted, c.unit,
            c.scene_id, c.evidence_source, c.evidence_ref, c.methodology["id"], c.rule["id"],
            reduction_g, points, code,
        )):
            cols[i].append(v)
    await conn.execute(
        "INSERT INTO behaviour_records (operator_id, batch_id, created_at, record_id, user_id, behaviour_type,"
        " started_at, ended_at, quantity, counted_quantity, unit, scene_id, evidence_source, evidence_ref,"
        " methodology_version_id, rule_version_id, reduction_g, points, code)"
        " SELECT $1, $2, $3, * FROM unnest($4::text[], $5::uuid[], $6::text[], $7::timestamptz[],"
        " $8::timestamptz[], $9::numeric[], $10::numeric[], $11::text[], $12::uuid[], $13::text[], $14::text[],"
        " $15::uuid[], $16::uuid[], $17::bigint[], $18::bigint[], $19::text[])",
        operator_id, batch_id, now, *cols,
    )


async def add_daily_totals(conn: Conn, rows: dict) -> None:
    keys = sorted(rows)
    await conn.execute(
        "INSERT INTO daily_totals (user_id, day, behaviour_type, points, quantity)"
        " SELECT * FROM unnest($1::uuid[], $2::date[], $3::text[], $4::bigint[], $5::numeric[])"
        " ON CONFLICT (user_id, day, behaviour_type) DO UPDATE SET"
        " points = daily_totals.points + EXCLUDED.points, quantity = daily_totals.quantity + EXCLUDED.quantity",
        [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
        [rows[k][0] for k in keys], [rows[k][1] for k in keys],
    )


async def credit_lots(conn: Conn, per_lot: dict) -> dict:
    keys = sorted(per_lot)
    rows = await conn.fetch(
        "INSERT INTO point_lots (user_id, expires_at, credited, remaining)"
        " SELECT u, x, p, p FROM unnest($1::uuid[], $2::timestamptz[], $3::bigint[]) AS d(u, x, p)"
        " ON CONFLICT (user_id, expires_at) DO UPDATE SET"
        " credited = point_lots.credited + EXCLUDED.credited, remaining = point_lots.remaining + EXCLUDED.remaining"
        " RETURNING id, user_id, expires_at",
        [k[0] for k in keys], [k[1] for k in keys], [per_lot[k] for k in keys],
    )
    by_moment = {(r["user_id"], r["expires_at"]): r["id"] for r in rows}
    return {k: by_moment[(k[0], k[1])] for k in keys}


async def add_to_accounts(conn: Conn, per_user: dict) -> dict:
    users = sorted(per_user)
    rows = await conn.fetch(
        "UPDATE point_accounts a SET balance = a.balance + d.p, lifetime_points = a.lifetime_points + d.p,"
        " lifetime_reduction_g = a.lifetime_reduction_g + d.g"
        " FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) AS d(u, p, g) WHERE a.user_id = d.u"
        " RETURNING a.user_id, a.balance",
        users, [per_user[u][0] for u in users], [per_user[u][1] for u in users],
    )
    return {r["user_id"]: r["balance"] for r in rows}


async def append_entries(conn: Conn, entries: list[tuple], now: datetime) -> dict:
    """Entries ``(user_id, kind, amount, balance_after, ref_type, ref_id, memo)`` → {user_id: entry id}."""
    rows = await conn.fetch(
        "INSERT INTO ledger_entries (user_id, kind, amount, balance_after, ref_type, ref_id, memo, created_at)"
        " SELECT u, k, a, b, rt, ri, m, $8 FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::bigint[],"
        " $5::text[], $6::text[], $7::text[]) AS e(u, k, a, b, rt, ri, m) RETURNING id, user_id",
        *[[e[i] for e in entries] for i in range(7)], now,
    )
    return {r["user_id"]: r["id"] for r in rows}


async def allocate(conn: Conn, allocations: list[tuple]) -> None:
    """Allocations ``(entry_id, lot_id, user_id, amount)``."""
    if not allocations:
        return
    await conn.execute(
        "INSERT INTO lot_allocations (entry_id, lot_id, user_id, amount)"
        " SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::uuid[], $4::bigint[])",
        *[[a[i] for a in allocations] for i in range(4)],
    )
