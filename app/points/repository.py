"""All SQL of the points domain, set-based, on the raw asyncpg connection of the transaction.

Sets of rows travel as one JSON parameter read with ``json_to_recordset``: PostgreSQL parses it
in C, and asyncpg need not inspect every element of a dozen arrays (measured: the array path
cost a quarter of a batch's CPU).

Every change to a person's points locks their account row first (see :mod:`app.points.service`);
the statements here assume that lock is held where they say so.
"""

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import asyncpg
import orjson

Conn = asyncpg.Connection


def as_json(rows: Any) -> str:
    return orjson.dumps(rows, default=_default).decode()


def _default(value: Any) -> str:
    return str(value)  # Decimal, and asyncpg's own UUID type (orjson knows only uuid.UUID)


# ---- ingestion -------------------------------------------------------------------------------------------

ONE_LOOKUP_EACH = " OFFSET 0"
"""Ends the subquery a batch's read runs for each of its keys (``CROSS JOIN LATERAL (…)``): a fence the planner
does not flatten, so each key is one lookup in the index that answers it. Joined plainly, a batch's 1,000 keys
were matched by hashing every record of the operator (or of everyone) whenever the statistics lagged the
table's growth: on 180,000 records 30 ms a read instead of 1.5–4 ms, and growing with the history. The plans
were checked with statistics missing (a table never analysed), stale and fresh (``EXPLAIN ANALYZE``)."""


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


async def existing_records(conn: Conn, operator_id: uuid.UUID, record_ids: list[str]) -> list[asyncpg.Record]:
    """The operator's records accepted before under these ids, with the versions that computed them."""
    return await conn.fetch(
        "SELECT r.* FROM json_array_elements_text($2::json) AS ids(id) CROSS JOIN LATERAL ("
        " SELECT r.record_id, r.code, r.reduction_g, r.points, r.methodology_version_id, r.rule_version_id"
        " FROM behaviour_records r WHERE r.operator_id = $1 AND r.record_id = ids.id"
        + ONE_LOOKUP_EACH
        + ") r",
        operator_id,
        as_json(record_ids),
    )


async def claimed_evidence(conn: Conn, evidence: list[tuple[str, str]]):
    return await conn.fetch(
        "SELECT r.* FROM json_to_recordset($1::json) AS e(s text, r text) CROSS JOIN LATERAL ("
        " SELECT r.evidence_source, r.evidence_ref FROM behaviour_records r"
        " WHERE r.evidence_source = e.s AND r.evidence_ref = e.r" + ONE_LOOKUP_EACH + ") r",
        as_json([{"s": s, "r": r} for s, r in evidence]),
    )


async def overlapping(conn: Conn, candidates) -> list:
    """Earlier records of the same people and types whose time overlaps a candidate's.

    Records last at most 24 hours, so only those starting in the 24 hours before a candidate's
    start are looked at: an index range scan whatever the person's history.
    """
    return await conn.fetch(
        "SELECT DISTINCT r.* FROM json_to_recordset($1::json) AS c(u uuid, t text, s timestamptz, e timestamptz)"
        " CROSS JOIN LATERAL (SELECT r.user_id, r.behaviour_type, r.started_at, r.ended_at FROM behaviour_records r"
        " WHERE r.user_id = c.u AND r.started_at > c.s - interval '24 hours' AND r.started_at < c.e"
        " AND r.ended_at > c.s AND r.behaviour_type = c.t" + ONE_LOOKUP_EACH + ") r",
        as_json([{"u": c.user_id, "t": c.type, "s": c.started_at, "e": c.ended_at} for c in candidates]),
    )


async def daily_totals(
    conn: Conn, people_days: list[tuple[uuid.UUID, int]], days: list[tuple[date, datetime, datetime]]
):
    """What each person already earned on each local day, by type: summed from their records. ``people_days``:
    (person, the day's place in ``days``, from 1); ``days``: each local day with its start and end, sent once
    (a batch's records fall on one or two)."""
    return await conn.fetch(
        "SELECT p.u AS user_id, ($2::date[])[p.i] AS day, r.behaviour_type, sum(r.points)::bigint AS points,"
        " sum(r.counted_quantity) AS quantity FROM json_to_recordset($1::json) AS p(u uuid, i int)"
        " CROSS JOIN LATERAL (SELECT r.behaviour_type, r.points, r.counted_quantity FROM behaviour_records r"
        " WHERE r.user_id = p.u AND r.started_at >= ($3::timestamptz[])[p.i]"
        " AND r.started_at < ($4::timestamptz[])[p.i]" + ONE_LOOKUP_EACH + ") r"
        " GROUP BY p.u, p.i, r.behaviour_type",
        as_json([{"u": u, "i": i} for u, i in people_days]),
        [day for day, _, _ in days],
        [start for _, start, _ in days],
        [end for _, _, end in days],
    )


async def insert_batch(
    conn: Conn,
    batch_id: uuid.UUID,
    operator_id: uuid.UUID,
    kid: str,
    signature: str,
    body: bytes,
    encoding: str,
    sha: str,
    now: datetime,
    count: int,
    accepted: int,
    duplicate: int,
    rejected: int,
    rejections: str,
) -> None:
    """The signed batch (its body as kept, ``encoding``: app.points.bodies) with the count of each outcome and
    ``rejections``: the rejected records' outcomes as answered (a JSON array)."""
    await conn.execute(
        "INSERT INTO behaviour_batches (id, operator_id, kid, signature, body, body_encoding, body_sha256,"
        " received_at, records, accepted, duplicate, rejected, rejections)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb)",
        batch_id,
        operator_id,
        kid,
        signature,
        body,
        encoding,
        sha,
        now,
        count,
        accepted,
        duplicate,
        rejected,
        rejections,
    )


CREDIT_SQL = """
WITH records AS (
  INSERT INTO behaviour_records (operator_id, batch_id, created_at, record_id, user_id, behaviour_type, started_at,
    ended_at, quantity, counted_quantity, unit, scene_id, evidence_source, evidence_ref, methodology_version_id,
    rule_version_id, reduction_g, points, code)
  SELECT $1, $2, $3, r.i, r.u, r.t, r.s, r.e, r.q, r.c, r.n, r.sc, r.es, r.er, ($7::uuid[])[r.m], ($8::uuid[])[r.x],
    r.g, r.p, r.k
  FROM json_to_recordset($4::json) AS r(i text, u uuid, t text, s timestamptz, e timestamptz, q numeric, c numeric,
    n text, sc uuid, es text, er text, m int, x int, g bigint, p bigint, k text)
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


CREDIT_KEYS = {
    "i": "record_id",
    "u": "user_id",
    "t": "behaviour_type",
    "s": "started_at",
    "e": "ended_at",
    "q": "quantity",
    "c": "counted_quantity",
    "n": "unit",
    "sc": "scene_id",
    "es": "evidence_source",
    "er": "evidence_ref",
    "m": "methodology_version_id",
    "x": "rule_version_id",
    "g": "reduction_g",
    "p": "points",
    "k": "code",
}
"""The keys of a record in the credit's JSON rows and the columns they fill; ``m`` and ``x`` are places (from 1)
in the statement's arrays of methodology and exchange rule versions, a null member may be left out. A batch's
rows are ~450 KB of JSON with the columns' names as keys and ~300 KB with these: PostgreSQL receives and reads
them while the batch holds its people's accounts, and on two busy cores a message's bytes cost it far more than
alone (binding the rows took 7–10 ms of its CPU under bench/ingest.py, ~1 ms alone)."""


async def credit(
    conn: Conn,
    operator_id: uuid.UUID,
    batch_id: uuid.UUID,
    now: datetime,
    records: list[dict],
    lots: list[dict],
    accounts: list[dict],
    methodology_versions: list[uuid.UUID],
    rule_versions: list[uuid.UUID],
) -> None:
    """Records (keyed as :data:`CREDIT_KEYS` says), lots, one earn entry per person, allocations, accounts: one
    statement."""
    await conn.fetchrow(
        CREDIT_SQL,
        operator_id,
        batch_id,
        now,
        as_json(records),
        as_json(lots),
        as_json(accounts),
        methodology_versions,
        rule_versions,
    )


# ---- people's views --------------------------------------------------------------------------------------


async def account_totals(conn: Conn, user_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT lifetime_points, lifetime_reduction_g FROM point_accounts WHERE user_id = $1", user_id
    )


# A person's view ({0}: the person, {1}: now): the account's lifetime totals (NULL without an account) and the
# points left in lots not yet expired per expiry moment, at least one row (expires_at NULL when there are none).
_VIEW_COLUMNS = "a.lifetime_points, a.lifetime_reduction_g, l.expires_at, l.points"
_VIEW_JOINS = (
    " LEFT JOIN point_accounts a ON a.user_id = {0} LEFT JOIN LATERAL (SELECT expires_at,"
    " sum(remaining)::bigint AS points FROM point_lots WHERE user_id = {0} AND remaining > 0 AND expires_at > {1}"
    " GROUP BY expires_at) l ON true"
)


async def account_view(conn: Conn, user_id: uuid.UUID, now: datetime) -> list[asyncpg.Record]:
    """:func:`account_views` of one person: the statement planned for one key (index lookups)."""
    return await conn.fetch(
        f"SELECT {_VIEW_COLUMNS} FROM (SELECT 1) AS one{_VIEW_JOINS.format('$1', '$2')} ORDER BY l.expires_at",
        user_id,
        now,
    )


async def account_views(
    conn: Conn, user_ids: list[uuid.UUID], now: datetime
) -> dict[uuid.UUID, list[asyncpg.Record]]:
    """Each person's lifetime totals (``NULL`` without an account) on every row, with the points left in lots
    not yet expired per expiry moment, soonest first (one row with ``expires_at`` ``NULL`` when there are none);
    for all of ``user_ids`` (distinct) in one statement."""
    views: dict[uuid.UUID, list[asyncpg.Record]] = {user_id: [] for user_id in user_ids}
    rows = await conn.fetch(
        f"SELECT p.user_id, {_VIEW_COLUMNS} FROM unnest($1::uuid[]) AS p(user_id)"
        f"{_VIEW_JOINS.format('p.user_id', '$2')} ORDER BY p.user_id, l.expires_at",
        user_ids,
        now,
    )
    for row in rows:
        views[row["user_id"]].append(row)
    return views


# Whether a person's token may act ({0}: the person, {1}: their operator, {2}: the token's refresh family or null):
# what user_caller_may_act (migration 0025) answers, written out so that PostgreSQL plans it with the statement
# (a SQL function with sub-selects is not inlined: called once a row, it cost a first balance read ~15 % more of
# PostgreSQL's CPU). Reads the users, organisations, entrustments (users and organizations domains) and refresh
# tokens (auth domain): a person's app reads the balance on every open, and one statement is the budget.
_MAY_ACT = (
    "(EXISTS (SELECT 1 FROM users u JOIN organizations o ON o.id = {1} WHERE u.id = {0} AND u.deleted_at IS NULL"
    " AND o.status = 'approved' AND EXISTS (SELECT 1 FROM entrustments e WHERE e.user_id = u.id"
    " AND e.operator_id = o.id AND e.withdrawn_at IS NULL))"
    " AND ({2} IS NULL OR NOT EXISTS (SELECT 1 FROM oauth_refresh_tokens t WHERE t.family_id = {2}"
    " AND t.revoked_at IS NOT NULL)))"
)
Caller = tuple[uuid.UUID, uuid.UUID | None, uuid.UUID | None]
"""A person's token: the person, the operator it was issued through, its refresh family (or None)."""


async def checked_account_view(
    conn: Conn, caller: Caller, now: datetime
) -> tuple[bool, list[asyncpg.Record]]:
    """:func:`checked_account_views` of one caller: the statement planned for one key (index lookups)."""
    rows = await conn.fetch(
        f"SELECT {_MAY_ACT.format('$1::uuid', '$2::uuid', '$3::uuid')} AS may_act, {_VIEW_COLUMNS}"
        f" FROM (SELECT 1) AS one{_VIEW_JOINS.format('$1', '$4')} ORDER BY l.expires_at",
        *caller,
        now,
    )
    return rows[0]["may_act"], rows


async def checked_account_views(
    conn: Conn, wanted: list[Caller], now: datetime
) -> dict[Caller, tuple[bool, list[asyncpg.Record]]]:
    """:func:`account_views` of callers whose standing the same statement checks: for each of ``wanted``
    (distinct), whether the caller may act (``_MAY_ACT``) and the person's rows, in one statement."""
    rows = await conn.fetch(
        f"SELECT p.n, {_MAY_ACT.format('p.user_id', 'p.operator_id', 'p.family')} AS may_act, {_VIEW_COLUMNS}"
        " FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]) WITH ORDINALITY AS p(user_id, operator_id, family, n)"
        f"{_VIEW_JOINS.format('p.user_id', '$4')} ORDER BY p.n, l.expires_at",
        [user_id for user_id, _, _ in wanted],
        [operator_id for _, operator_id, _ in wanted],
        [family for _, _, family in wanted],
        now,
    )
    found: dict[int, list[asyncpg.Record]] = {}
    for row in rows:
        found.setdefault(row["n"], []).append(row)
    return {caller: (found[n][0]["may_act"], found[n]) for n, caller in enumerate(wanted, start=1)}


async def usable_lots(conn: Conn, user_id: uuid.UUID, now: datetime) -> list[asyncpg.Record]:
    """Points left in lots not yet expired, per expiry moment, soonest first."""
    return await conn.fetch(
        "SELECT expires_at, sum(remaining)::bigint AS points FROM point_lots"
        " WHERE user_id = $1 AND remaining > 0 AND expires_at > $2 GROUP BY expires_at ORDER BY expires_at",
        user_id,
        now,
    )


# An entry whose source is the operator $4's: an earning from a batch it submitted, an order placed through its
# token, a redemption in its own mall (with their refunds and the expiry of refunded shares, which carry the
# same reference), and an expiry or an authority's clawback that took points from a lot it credited. Reads
# ``mall_orders`` and ``operator_redemptions`` (the mall domain's tables) in the same statement: a page is one
# query.
_OPERATORS_ENTRY = """(
  (e.ref_type = 'batch' AND EXISTS (SELECT 1 FROM behaviour_batches b
     WHERE b.id = CASE WHEN e.ref_type = 'batch' THEN e.ref_id::uuid END AND b.operator_id = $4))
  OR (e.ref_type = 'mall_order' AND EXISTS (SELECT 1 FROM mall_orders o
     WHERE o.id = CASE WHEN e.ref_type = 'mall_order' THEN e.ref_id::uuid END AND o.operator_id = $4))
  OR (e.ref_type = 'operator_redemption' AND EXISTS (SELECT 1 FROM operator_redemptions r
     WHERE r.id = CASE WHEN e.ref_type = 'operator_redemption' THEN e.ref_id::uuid END AND r.operator_id = $4))
  OR (e.ref_type IN ('expiry', 'clawback') AND EXISTS (SELECT 1 FROM lot_allocations x
     JOIN lot_allocations c ON c.lot_id = x.lot_id AND c.entry_id <> x.entry_id
     JOIN ledger_entries ce ON ce.id = c.entry_id AND ce.kind = 'earn' AND ce.ref_type = 'batch'
     JOIN behaviour_batches b ON b.id = CASE WHEN ce.ref_type = 'batch' THEN ce.ref_id::uuid END
       AND b.operator_id = $4
     WHERE x.entry_id = e.id))
)"""


async def entries(
    conn: Conn, user_id: uuid.UUID, before_id: int | None, limit: int, operator_id: uuid.UUID | None = None
) -> list[asyncpg.Record]:
    """Up to ``limit`` of the person's entries older than ``before_id``, newest first; with ``operator_id``,
    only those whose source is that operator's (``_OPERATORS_ENTRY``)."""
    before = before_id if before_id is not None else 2**63 - 1
    if operator_id is None:
        return await conn.fetch(
            "SELECT id, kind, amount, balance_after, ref_type, ref_id, memo, created_at FROM ledger_entries"
            " WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
            user_id,
            before,
            limit,
        )
    return await conn.fetch(
        "SELECT e.id, e.kind, e.amount, e.balance_after, e.ref_type, e.ref_id, e.memo, e.created_at"
        f" FROM ledger_entries e WHERE e.user_id = $1 AND e.id < $2 AND {_OPERATORS_ENTRY}"
        " ORDER BY e.id DESC LIMIT $3",
        user_id,
        before,
        limit,
        operator_id,
    )


_RECORD_COLUMNS = (
    "id, record_id, operator_id, behaviour_type, started_at, ended_at, quantity, counted_quantity, unit, scene_id,"
    " reduction_g, points, code, methodology_version_id, rule_version_id"
)


async def records(
    conn: Conn,
    user_id: uuid.UUID,
    after: tuple[datetime, int] | None,
    limit: int,
    operator_id: uuid.UUID | None = None,
) -> list[asyncpg.Record]:
    """Up to ``limit`` of the person's records before ``after`` (started_at, id), latest first; with
    ``operator_id``, only the records that operator submitted."""
    if after is None:
        return await conn.fetch(
            f"SELECT {_RECORD_COLUMNS} FROM behaviour_records WHERE user_id = $1"
            " AND ($3::uuid IS NULL OR operator_id = $3) ORDER BY started_at DESC, id DESC LIMIT $2",
            user_id,
            limit,
            operator_id,
        )
    return await conn.fetch(
        f"SELECT {_RECORD_COLUMNS} FROM behaviour_records WHERE user_id = $1 AND (started_at, id) < ($2, $3)"
        " AND ($5::uuid IS NULL OR operator_id = $5) ORDER BY started_at DESC, id DESC LIMIT $4",
        user_id,
        after[0],
        after[1],
        limit,
        operator_id,
    )


# ---- the ledger: spend, refund, clawback, expiry ---------------------------------------------------------


async def lock_balance(conn: Conn, user_id: uuid.UUID) -> int | None:
    """Lock the person's account row; its balance, or None if they have no account."""
    return await conn.fetchval("SELECT balance FROM point_accounts WHERE user_id = $1 FOR UPDATE", user_id)


async def account_exists(conn: Conn, user_id: uuid.UUID) -> bool:
    return await conn.fetchval("SELECT 1 FROM point_accounts WHERE user_id = $1", user_id) is not None


DEBIT_SQL = """
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


async def debit(
    conn: Conn,
    user_id: uuid.UUID,
    points: int,
    kind: str,
    balance_after: int,
    ref_type: str,
    ref_id: str,
    memo: str | None,
    now: datetime,
) -> int | None:
    """Take ``points`` from the soonest-expiring unexpired lots (the account locked): lots, entry,
    allocations, account in one statement. The entry's id, or None (nothing changed) if too few."""
    return await conn.fetchval(DEBIT_SQL, user_id, points, now, kind, balance_after, ref_type, ref_id, memo)


async def lock_spend(conn: Conn, entry_id: int) -> asyncpg.Record | None:
    """A ``redeem`` or ``clawback`` entry (user_id, amount) with its account locked (balance)."""
    return await conn.fetchrow(
        "SELECT e.user_id, e.amount, a.balance FROM ledger_entries e JOIN point_accounts a ON a.user_id = e.user_id"
        " WHERE e.id = $1 AND e.kind IN ('redeem', 'clawback') FOR UPDATE OF a",
        entry_id,
    )


REFUND_SQL = """
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


async def refund(
    conn: Conn,
    spend_entry_id: int,
    user_id: uuid.UUID,
    points: int,
    balance_after: int,
    ref_type: str,
    ref_id: str,
    memo: str,
    now: datetime,
) -> list[asyncpg.Record]:
    """Put a spend back into the lots it came from (the account locked): lots, a ``refund`` entry,
    allocations, account in one statement. The lots refilled: id, amount, expires_at."""
    return await conn.fetch(
        REFUND_SQL, spend_entry_id, user_id, points, balance_after, ref_type, ref_id, memo, now
    )


EXPIRE_SHARES_SQL = """
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


async def expire_shares(
    conn: Conn,
    user_id: uuid.UUID,
    shares: list[tuple[int, int]],
    balance: int,
    now: datetime,
    ref_type: str,
    ref_id: str,
) -> int:
    """Expire (lot id, amount) shares at once (the account locked, ``balance`` before): lots, one
    ``expire`` entry, allocations, account in one statement. The entry's id."""
    return await conn.fetchval(
        EXPIRE_SHARES_SQL,
        user_id,
        [s[0] for s in shares],
        [s[1] for s in shares],
        sum(a for _, a in shares),
        balance,
        ref_type,
        ref_id,
        now,
    )


async def people_with_due_lots(
    conn: Conn, now: datetime, limit: int | None, since: datetime | None = None
) -> list[uuid.UUID]:
    """Up to ``limit`` (``None``: all) people with points in lots expired at ``now``, in ``user_id`` order;
    with ``since``, only lots due after it (every lot due at or before it is known to be empty)."""
    after = "" if since is None else "expires_at > $3 AND "
    rows = await conn.fetch(
        f"SELECT DISTINCT user_id FROM point_lots WHERE {after}expires_at <= $1 AND remaining > 0"
        " ORDER BY user_id LIMIT $2",
        now,
        limit,
        *(() if since is None else (since,)),
    )
    return [r["user_id"] for r in rows]


async def expired_through(conn: Conn) -> datetime | None:
    """The expiry job's mark: every lot due at or before it is empty (``None``: no mark yet)."""
    return await conn.fetchval("SELECT expired_through FROM point_expiry_mark WHERE id = 1")


async def mark_expired_through(conn: Conn, through: datetime, now: datetime) -> None:
    """Record that every lot due at or before ``through`` is empty (replacing the previous mark)."""
    await conn.execute(
        "INSERT INTO point_expiry_mark (id, expired_through, marked_at) VALUES (1, $1, $2)"
        " ON CONFLICT (id) DO UPDATE SET expired_through = excluded.expired_through, marked_at = excluded.marked_at",
        through,
        now,
    )


async def relaxed_commit(conn: Conn) -> None:
    """This transaction's commit does not wait for its WAL to reach the disk (a job that a crash only delays)."""
    await conn.execute("SET LOCAL synchronous_commit = off")


async def lock_existing_accounts(conn: Conn, user_ids: list[uuid.UUID]) -> None:
    """Lock these accounts in ``user_id`` order (no deadlock with another locker of several)."""
    await conn.execute(
        "SELECT 1 FROM point_accounts WHERE user_id = ANY($1::uuid[]) ORDER BY user_id FOR UPDATE", user_ids
    )


# The due lots are read, then emptied by their row address (a TID scan): an UPDATE joined to its own read
# is planned as a hash join over a sequential scan of every lot, once per chunk of people. The read needs
# no row locks and the addresses cannot move under it: every writer of a lot holds its account's lock, and
# these accounts are locked.
EXPIRE_LOTS_SQL = """
WITH due AS MATERIALIZED (
  SELECT ctid AS tid, id, user_id, remaining AS amount FROM point_lots
  WHERE user_id = ANY($1::uuid[]) AND expires_at <= $2 AND remaining > 0
), emptied AS (
  UPDATE point_lots SET remaining = 0 WHERE ctid = ANY(ARRAY(SELECT tid FROM due))
), per_user AS (
  SELECT user_id, sum(amount)::bigint AS total FROM due GROUP BY user_id
), accounts AS (
  UPDATE point_accounts a SET balance = a.balance - p.total FROM per_user p WHERE a.user_id = p.user_id
  RETURNING a.user_id, a.balance, p.total
), entries AS (
  INSERT INTO ledger_entries (user_id, kind, amount, balance_after, ref_type, ref_id, memo, created_at)
  SELECT user_id, 'expire', -total, balance, 'expiry', $3, 'lots expired', $2 FROM accounts
  RETURNING id, user_id
), allocations AS (
  INSERT INTO lot_allocations (entry_id, lot_id, user_id, amount)
  SELECT e.id, d.id, d.user_id, d.amount FROM due d JOIN entries e ON e.user_id = d.user_id
  RETURNING amount
)
SELECT coalesce(sum(amount), 0)::bigint FROM allocations
"""


async def expire_lots(conn: Conn, user_ids: list[uuid.UUID], now: datetime) -> int:
    """Empty these people's lots expired at ``now`` (accounts locked): one ``expire`` entry per person,
    allocations per lot, balances, in one statement. The points expired."""
    return await conn.fetchval(EXPIRE_LOTS_SQL, user_ids, now, now.isoformat())


# ---- webhook events about expiry (their statements join entrustments, of app.users: one statement per run
# rather than every person's lots shipped across) ------------------------------------------------------------


async def expired_by_operator(conn: Conn, user_ids: list[uuid.UUID], ref_id: str) -> list[asyncpg.Record]:
    """What each of these people lost in the expiry run ``ref_id``, once per operator they entrust
    (``operator_id, external_user_id, points``), by operator and external id."""
    return await conn.fetch(
        "SELECT e.operator_id, e.external_user_id, -l.amount AS points FROM ledger_entries l"
        " JOIN entrustments e ON e.user_id = l.user_id AND e.withdrawn_at IS NULL"
        " WHERE l.user_id = ANY($1::uuid[]) AND l.kind = 'expire' AND l.ref_type = 'expiry' AND l.ref_id = $2"
        " ORDER BY e.operator_id, e.external_user_id",
        user_ids,
        ref_id,
    )


async def expiring_by_operator(conn: Conn, start: datetime, end: datetime) -> list[asyncpg.Record]:
    """Points in lots expiring in (start, end], per operator entrusted by their holder
    (``operator_id, external_user_id, expires_at, points``), by operator, external id and expiry."""
    return await conn.fetch(
        "SELECT e.operator_id, e.external_user_id, l.expires_at, l.remaining AS points FROM point_lots l"
        " JOIN entrustments e ON e.user_id = l.user_id AND e.withdrawn_at IS NULL"
        " WHERE l.remaining > 0 AND l.expires_at > $1 AND l.expires_at <= $2"
        " ORDER BY e.operator_id, e.external_user_id, l.expires_at",
        start,
        end,
    )


# ---- records and batches for other domains (certified reductions) ----------------------------------------

_FACT_COLUMNS = "id, record_id, batch_id, user_id, behaviour_type, started_at, scene_id, methodology_version_id, reduction_g"


async def records_of_period(
    conn: Conn,
    operator_id: uuid.UUID,
    methodology_version_ids: Sequence[uuid.UUID],
    start: datetime,
    end: datetime,
) -> list[asyncpg.Record]:
    """The operator's records computed by these methodology versions that started in [start, end)."""
    return await conn.fetch(
        f"SELECT {_FACT_COLUMNS} FROM behaviour_records WHERE operator_id = $1"
        " AND methodology_version_id = ANY($2::uuid[]) AND started_at >= $3 AND started_at < $4 ORDER BY id",
        operator_id,
        list(methodology_version_ids),
        start,
        end,
    )


async def records_by_id(conn: Conn, ids: Sequence[int]) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {_FACT_COLUMNS} FROM behaviour_records WHERE id = ANY($1::bigint[]) ORDER BY id", list(ids)
    )


async def batches_by_receipt(
    conn: Conn, batch_ids: Sequence[uuid.UUID], limit: int | None = None
) -> list[uuid.UUID]:
    """These batches' ids by time of receipt (the first ``limit``)."""
    rows = await conn.fetch(
        "SELECT id FROM behaviour_batches WHERE id = ANY($1::uuid[]) ORDER BY received_at, id LIMIT $2",
        list(batch_ids),
        limit,
    )
    return [r["id"] for r in rows]


async def batches(conn: Conn, batch_ids: Sequence[uuid.UUID]) -> list[asyncpg.Record]:
    """These signed batches with their bodies as kept, by time of receipt."""
    return await conn.fetch(
        "SELECT id, operator_id, kid, body_sha256, body, body_encoding, signature, received_at"
        " FROM behaviour_batches WHERE id = ANY($1::uuid[]) ORDER BY received_at, id",
        list(batch_ids),
    )


async def batch_operators(conn: Conn, batch_ids: Sequence[uuid.UUID]) -> list[asyncpg.Record]:
    """(id, operator_id) of these batches."""
    return await conn.fetch(
        "SELECT id, operator_id FROM behaviour_batches WHERE id = ANY($1::uuid[])", list(batch_ids)
    )


async def signed_batches(
    conn: Conn, batch_ids: Sequence[uuid.UUID], after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[asyncpg.Record]:
    """``limit`` of these batches by receipt after ``after`` (received_at, id), with their bodies as kept."""
    return await conn.fetch(
        "SELECT id, operator_id, kid, signature, body, body_encoding, body_sha256, received_at, records,"
        " accepted, duplicate, rejected FROM behaviour_batches WHERE id = ANY($1::uuid[])"
        " AND ($2::timestamptz IS NULL OR (received_at, id) > ($2, $3::uuid)) ORDER BY received_at, id LIMIT $4",
        list(batch_ids),
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )


async def scene_activity(
    conn: Conn, scene_id: uuid.UUID, since: datetime, timezone: str
) -> list[asyncpg.Record]:
    """The records made at a scene since ``since``, by month (in ``timezone``) and behaviour type."""
    return await conn.fetch(
        "SELECT to_char(started_at AT TIME ZONE $3, 'YYYY-MM') AS month, behaviour_type, count(*) AS records,"
        " coalesce(sum(reduction_g), 0)::bigint AS reduction_g, coalesce(sum(points), 0)::bigint AS points"
        " FROM behaviour_records WHERE scene_id = $1 AND started_at >= $2"
        " GROUP BY 1, 2 ORDER BY 1 DESC, 2",
        scene_id,
        since,
        timezone,
    )


async def methodology_versions_used(conn: Conn, operator_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await conn.fetch(
        "SELECT DISTINCT methodology_version_id FROM behaviour_records WHERE operator_id = $1", operator_id
    )
    return [r[0] for r in rows]


# ---- disclosure and checks -------------------------------------------------------------------------------


async def totals(conn: Conn) -> asyncpg.Record:
    """Behaviours, grams and points credited; points by the kind of entry that took or gave them back."""
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM behaviour_records) AS behaviours,"
        " (SELECT coalesce(sum(lifetime_reduction_g), 0) FROM point_accounts) AS reduction_g,"
        " (SELECT coalesce(sum(lifetime_points), 0) FROM point_accounts) AS points_credited,"
        " k.redeem, k.refund, k.expire, k.clawback FROM ("
        "  SELECT coalesce(sum(amount) FILTER (WHERE kind = 'redeem'), 0)::bigint AS redeem,"
        "   coalesce(sum(amount) FILTER (WHERE kind = 'refund'), 0)::bigint AS refund,"
        "   coalesce(sum(amount) FILTER (WHERE kind = 'expire'), 0)::bigint AS expire,"
        "   coalesce(sum(amount) FILTER (WHERE kind = 'clawback'), 0)::bigint AS clawback"
        "  FROM ledger_entries WHERE kind IN ('redeem', 'refund', 'expire', 'clawback')) k"
    )
    assert row is not None  # aggregates: always one row
    return row


async def platform_days(conn: Conn, first: date, last: date, zone: str) -> list[asyncpg.Record]:
    """Per local day from ``first`` to ``last`` (time zone ``zone``): behaviours and grams (by when they
    happened), points earned, spent (net of refunds) and expired (by when they were entered)."""
    return await conn.fetch(
        "WITH days AS (SELECT d::date AS day FROM generate_series($1::date, $2::date, interval '1 day') d),"
        " b AS (SELECT (started_at AT TIME ZONE $3)::date AS day, count(*) AS behaviours,"
        "   sum(reduction_g) AS reduction_g FROM behaviour_records"
        "   WHERE started_at >= ($1::date::timestamp AT TIME ZONE $3)"
        "   AND started_at < (($2::date + 1)::timestamp AT TIME ZONE $3) GROUP BY 1),"
        " l AS (SELECT (created_at AT TIME ZONE $3)::date AS day,"
        "   sum(amount) FILTER (WHERE kind = 'earn') AS earned,"
        "   -sum(amount) FILTER (WHERE kind IN ('redeem', 'refund')) AS spent,"
        "   -sum(amount) FILTER (WHERE kind = 'expire') AS expired FROM ledger_entries"
        "   WHERE created_at >= ($1::date::timestamp AT TIME ZONE $3)"
        "   AND created_at < (($2::date + 1)::timestamp AT TIME ZONE $3) GROUP BY 1)"
        " SELECT days.day, coalesce(b.behaviours, 0)::bigint AS behaviours,"
        " coalesce(b.reduction_g, 0)::bigint AS reduction_g, coalesce(l.earned, 0)::bigint AS earned,"
        " coalesce(l.spent, 0)::bigint AS spent, coalesce(l.expired, 0)::bigint AS expired"
        " FROM days LEFT JOIN b ON b.day = days.day LEFT JOIN l ON l.day = days.day ORDER BY days.day",
        first,
        last,
        zone,
    )


LEDGER_CHECKS: list[tuple[str, str]] = [
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
    (
        "no lot is negative or over-full",
        "SELECT id, remaining, credited FROM point_lots WHERE remaining < 0 OR remaining > credited",
    ),
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
"""Every invariant of the ledger: (what must hold, a query for the rows that break it)."""


def first_rows(check: str, examples: int) -> str:
    """A check's query for its first ``examples`` rows, planned to read everything: a check finds nothing when the
    ledger is sound, and a bare ``LIMIT`` has PostgreSQL plan for an early match (with statistics, the lots'
    remainders against their allocations as a nested loop comparing every lot with every lot's sums: 14 s for
    25,000 lots, growing with the square). A materialised CTE is planned for all its rows and still stops at the
    limit when there are rows to find."""
    return f"WITH broken AS MATERIALIZED ({check}) SELECT * FROM broken LIMIT {int(examples)}"


async def broken_invariants(conn: Conn, examples: int) -> list[tuple[str, list[tuple]]]:
    """Each check of :data:`LEDGER_CHECKS` that finds rows, with up to ``examples`` of them."""
    broken = []
    for name, sql in LEDGER_CHECKS:
        rows = await conn.fetch(first_rows(sql, examples))
        if rows:
            broken.append((name, [tuple(r) for r in rows]))
    return broken


# ---- an operator's own batches (GET /v1/operator/behaviour-batches) ---------------------------------------

_BATCH_COLUMNS = "id, kid, body_sha256, received_at, records, accepted, duplicate, rejected"


async def operator_batches(
    conn: Conn,
    operator_id: uuid.UUID,
    *,
    received_from: datetime | None,
    received_to: datetime | None,
    has_rejections: bool | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """The operator's batches, newest first, ``limit + 1`` after the cursor's (bodies left out)."""
    return await conn.fetch(
        f"SELECT {_BATCH_COLUMNS} FROM behaviour_batches WHERE operator_id = $1"
        " AND ($2::timestamptz IS NULL OR received_at >= $2) AND ($3::timestamptz IS NULL OR received_at < $3)"
        " AND ($4::boolean IS NULL OR (rejected > 0) = $4)"
        " AND ($5::timestamptz IS NULL OR (received_at, id) < ($5, $6::uuid))"
        " ORDER BY received_at DESC, id DESC LIMIT $7",
        operator_id,
        received_from,
        received_to,
        has_rejections,
        after[0] if after else None,
        after[1] if after else None,
        limit + 1,
    )


async def operator_batch(conn: Conn, operator_id: uuid.UUID, batch_id: uuid.UUID) -> asyncpg.Record | None:
    """One of the operator's batches with its signed body and its rejected records' outcomes as answered
    (``rejections``, a list), or None (another operator's too)."""
    return await conn.fetchrow(
        f"SELECT {_BATCH_COLUMNS}, body, body_encoding, rejections FROM behaviour_batches"
        " WHERE id = $1 AND operator_id = $2",
        batch_id,
        operator_id,
    )


async def accepted_under(conn: Conn, operator_id: uuid.UUID, record_ids: list[str]) -> list[asyncpg.Record]:
    """The operator's accepted records under these ids: in which batch and when, and what they earned."""
    return await conn.fetch(
        "SELECT r.record_id, r.batch_id, r.created_at, r.code, r.reduction_g, r.points FROM behaviour_records r"
        " JOIN json_array_elements_text($2::json) AS ids(id) ON r.record_id = ids.id WHERE r.operator_id = $1",
        operator_id,
        as_json(record_ids),
    )


# --- the authority's dashboards (per local day) ----------------------------------------------------------


async def records_by_day(conn: Conn, first: date, last: date, zone: str, by: str) -> list[asyncpg.Record]:
    """Records and grams per local day (by when they happened) and per ``by`` (``behaviour_type`` or
    ``operator_id``, as text), only the days and keys that have any."""
    key = {"behaviour_type": "behaviour_type", "operator_id": "operator_id::text"}[by]
    return await conn.fetch(
        f"SELECT (started_at AT TIME ZONE $3)::date AS day, {key} AS key, count(*)::bigint AS records,"
        " coalesce(sum(reduction_g), 0)::bigint AS reduction_g FROM behaviour_records"
        " WHERE started_at >= ($1::date::timestamp AT TIME ZONE $3)"
        " AND started_at < (($2::date + 1)::timestamp AT TIME ZONE $3) GROUP BY 1, 2 ORDER BY 1, 2",
        first,
        last,
        zone,
    )


async def expiring_by_day(
    conn: Conn, since: datetime, first: date, last: date, zone: str
) -> list[asyncpg.Record]:
    """Points left in lots that expire after ``since`` and on a local day from ``first`` to ``last``,
    per day, with how many accounts hold them; only days that have any."""
    return await conn.fetch(
        "SELECT (expires_at AT TIME ZONE $4)::date AS day, sum(remaining)::bigint AS points,"
        " count(DISTINCT user_id)::bigint AS accounts FROM point_lots"
        " WHERE remaining > 0 AND expires_at > $1 AND expires_at < (($3::date + 1)::timestamp AT TIME ZONE $4)"
        " AND expires_at >= ($2::date::timestamp AT TIME ZONE $4) GROUP BY 1 ORDER BY 1",
        since,
        first,
        last,
        zone,
    )
