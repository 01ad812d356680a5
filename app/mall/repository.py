"""All SQL of the mall, on the raw asyncpg connection of the request's transaction.

Placing an order is one statement here (the function ``mall_place_order``: the item, the points, the
stock, the per-person count and the order); every status change is a conditional ``UPDATE … WHERE status = …``.
"""

import functools
import itertools
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg

Conn = asyncpg.Connection

ITEM_COLUMNS = (
    "id, merchant_id, title, description, images, points_price, per_user_limit, sale_starts_at, sale_ends_at,"
    " voucher_valid_days, operator_ids, expiry_policy, status, created_at, updated_at, ended_at,"
    " CASE WHEN stock_limited THEN (SELECT coalesce(sum(remaining), 0) FROM mall_item_stock s"
    "  WHERE s.item_id = mall_items.id)::int END AS stock"
)
ORDER_COLUMNS = (
    "id, item_id, merchant_id, user_id, operator_id, title, quantity, unit_price, points, status, expiry_policy,"
    " voucher_sealed, voucher_expires_at, spend_entry_id, refunded_points, created_at, redeemed_at,"
    " cancelled_at, expired_at, closed_at, refunded_at"
)
REDEMPTION_COLUMNS = "id, operator_id, operator_order_id, user_id, points, description, status, spend_entry_id, created_at, reversed_at"
UPDATABLE = {
    "title",
    "description",
    "images",
    "points_price",
    "per_user_limit",
    "sale_starts_at",
    "sale_ends_at",
    "voucher_valid_days",
    "operator_ids",
    "expiry_policy",
}
MAX_SLOTS = 64  # mall_place_order (migrations 0012, 0021) orders the slots modulo 64 too
UNITS_PER_SLOT = 10  # small stocks get fewer slots: 10 units → 1 slot, 640 units or more → 64 slots


# ---- items -----------------------------------------------------------------------------------------------


def slots_for(stock: int) -> list[int]:
    """``stock`` units spread evenly over the slots (at least one slot, even for zero units)."""
    n = max(1, min(MAX_SLOTS, stock // UNITS_PER_SLOT))
    return [stock // n + (1 if i < stock % n else 0) for i in range(n)]


async def insert_item(conn: Conn, values: dict[str, Any], stock: int | None) -> asyncpg.Record:
    names = list(values) + ["stock_limited"]
    placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    item_id = values["id"]
    await conn.execute(
        f"INSERT INTO mall_items ({', '.join(names)}) VALUES ({placeholders})",
        *values.values(),
        stock is not None,
    )
    if stock is not None:
        await _write_slots(conn, item_id, stock)
    return await _written(conn, item_id)


async def _write_slots(conn: Conn, item_id: uuid.UUID, stock: int) -> None:
    units = slots_for(stock)
    await conn.execute(
        "INSERT INTO mall_item_stock (item_id, slot, remaining) SELECT $1, s - 1, r"
        " FROM unnest($2::int[]) WITH ORDINALITY AS t(r, s)",
        item_id,
        units,
    )


async def item(conn: Conn, item_id: uuid.UUID, *, lock: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {ITEM_COLUMNS} FROM mall_items WHERE id = $1{' FOR UPDATE' if lock else ''}", item_id
    )


async def _written(conn: Conn, item_id: uuid.UUID) -> asyncpg.Record:
    """The item this transaction has just written."""
    row = await item(conn, item_id)
    assert row is not None
    return row


async def update_item(
    conn: Conn,
    item_id: uuid.UUID,
    changes: dict[str, Any],
    now: datetime,
    *,
    set_stock: bool,
    stock: int | None,
) -> asyncpg.Record:
    """Apply ``changes`` (the item row is locked). ``set_stock``: the units left become ``stock`` (None:
    unlimited) — the slots are locked in slot order, then replaced."""
    assert set(changes) <= UPDATABLE
    names = list(changes)
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=3))
    if set_stock:
        await conn.execute(
            "SELECT 1 FROM mall_item_stock WHERE item_id = $1 ORDER BY slot FOR UPDATE", item_id
        )
        await conn.execute("DELETE FROM mall_item_stock WHERE item_id = $1", item_id)
        if stock is not None:
            await _write_slots(conn, item_id, stock)
        sets = ", ".join(filter(None, [sets, f"stock_limited = {'true' if stock is not None else 'false'}"]))
    await conn.execute(
        f"UPDATE mall_items SET updated_at = $2{', ' + sets if sets else ''} WHERE id = $1",
        item_id,
        now,
        *changes.values(),
    )
    return await _written(conn, item_id)


async def transition_item(
    conn: Conn,
    item_id: uuid.UUID,
    merchant_id: uuid.UUID,
    sources: tuple[str, ...],
    target: str,
    now: datetime,
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "UPDATE mall_items SET status = $4::text, updated_at = $5,"
        " ended_at = CASE WHEN $4::text = 'ended' THEN $5 ELSE ended_at END"
        f" WHERE id = $1 AND merchant_id = $2 AND status = ANY($3::text[]) RETURNING {ITEM_COLUMNS}",
        item_id,
        merchant_id,
        list(sources),
        target,
        now,
    )


async def list_items(
    conn: Conn,
    *,
    public: bool,
    merchant_id: uuid.UUID | None,
    min_price: int | None,
    max_price: int | None,
    in_stock: bool | None,
    status: str | None,
    now: datetime,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[asyncpg.Record]:
    where, args = [], []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if public:  # what can be bought now or later: active, sale not over
        where.append(f"status = 'active' AND (sale_ends_at IS NULL OR sale_ends_at > {arg(now)})")
    elif status:
        where.append(f"status = {arg(status)}")
    if merchant_id:
        where.append(f"merchant_id = {arg(merchant_id)}")
    if min_price is not None:
        where.append(f"points_price >= {arg(min_price)}")
    if max_price is not None:
        where.append(f"points_price <= {arg(max_price)}")
    has_units = "EXISTS (SELECT 1 FROM mall_item_stock s WHERE s.item_id = mall_items.id AND s.remaining > 0)"
    if in_stock is True:
        where.append(f"(NOT stock_limited OR {has_units})")
    elif in_stock is False:
        where.append(f"(stock_limited AND NOT {has_units})")
    if after:
        where.append(f"(created_at, id) < ({arg(after[0])}, {arg(after[1])})")
    sql = (
        f"SELECT {ITEM_COLUMNS} FROM mall_items WHERE {' AND '.join(where) or 'true'}"
        f" ORDER BY created_at DESC, id DESC LIMIT {arg(limit + 1)}"
    )
    return await conn.fetch(sql, *args)


# ---- orders ----------------------------------------------------------------------------------------------

# mall_place_order (migrations 0012, 0021) does what placing an order takes, in this order: the item and its
# rules, the person's account locked and the points spent from the soonest-expiring lots (the ledger's debit, on
# the points domain's tables), a stock slot nobody holds (the order's random first slot, read alone; else the
# next free one, else one waited for in slot order), the per-person count (a conditional upsert), the order. It
# answers one row: ``outcome`` ('placed', 'refused' by the item's own rules, 'insufficient_points',
# 'out_of_stock', 'per_user_limit') with the item's terms, the points, the voucher's expiry, the spend entry and,
# when over the limit, the units the person already holds; the item's stock only with a refusal (summed then).
# mall_order_request (migration 0019) is the person's whole order request in one statement: the
# Idempotency-Key's lock and record first (idempotency_begin), then mall_place_order in a subtransaction undone
# if it refuses, then for a placed order its order.created events (webhook_emit), its audit entry
# (audit_append) and its answer, stored under the key. What only the statement knows (the item's merchant,
# title, price and voucher expiry, the order's points and ledger entry) it fills into the events' payloads and
# into the audit entry and the answer, which the service sends as format() templates (app.core.sqljson). After
# the answer, ``p_wait`` (migration 0024) says whether an order that finds every free stock slot of its item held
# waits for one: alone it does; in a group it answers 'busy' instead (see place_together). With ``check_caller``
# (migration 0025) it first checks the caller's standing (user_caller_may_act: the person, their operator, the
# entrustment, the token's refresh family; PL/pgSQL since migration 0026, planned once a connection rather than
# once a transaction) and, refused, answers 'caller_refused' having done nothing.
ORDER_REQUEST_SQL = (
    "SELECT * FROM mall_order_request($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
    " $15, $16, $17, $18, $19, $20, $21, $22, $23, true, $24, $25)"
)


class OrderRequest(NamedTuple):
    """An order request's arguments, in ``mall_order_request``'s order (made by :func:`order_request`)."""

    lock: int | None
    scope: str | None
    key: str | None
    fingerprint: str | None
    stored_until: datetime | None
    item_id: uuid.UUID
    user_id: uuid.UUID
    operator_id: uuid.UUID | None
    quantity: int
    now: datetime
    order_id: uuid.UUID
    digest: bytes
    sealed: bytes
    first_slot: int
    event_ids: list[uuid.UUID]
    event_orgs: list[uuid.UUID | None]
    event_types: list[str]
    event_subject_types: list[str]
    event_subject_ids: list[str]
    event_payloads: list[str]
    audit_chain: int
    audit: str
    body: str
    check_caller: bool
    caller_family: uuid.UUID | None


_TYPES = (
    "bigint", "text", "text", "text", "timestamptz", "uuid", "uuid", "uuid", "int", "timestamptz", "uuid",
    "bytea", "bytea", "int", "uuid[]", "uuid[]", "text[]", "text[]", "text[]", "text[]", "int", "text", "text", "boolean", "uuid",
)  # fmt: skip
assert len(_TYPES) == len(OrderRequest._fields)


def order_request(
    *,
    key: tuple[int, str, str, str, datetime] | None,
    item_id: uuid.UUID,
    user_id: uuid.UUID,
    operator_id: uuid.UUID | None,
    quantity: int,
    now: datetime,
    order_id: uuid.UUID,
    digest: bytes,
    sealed: bytes,
    events: tuple[list[Any], ...],
    audit: tuple[int, str],
    body: str,
    caller: tuple[bool, uuid.UUID | None] = (False, None),
) -> OrderRequest:
    """An order request for :func:`place` or :func:`place_together`; it starts looking for a free stock slot at
    a random one.

    ``key``: the request's Idempotency-Key (:attr:`app.core.idempotency.Deferred.args`) or None; the row's
    ``key_`` columns say what it found: the order was placed only if ``key_locked`` and no ``key_fingerprint``.
    ``events``: the order.created events as ``webhook_emit`` takes them (ids, recipients, types, subject types,
    subject ids, payloads; the first recipient null: the merchant). ``audit``: the spend's entry, its chain and
    rows (``%1$s``: the ledger entry id, ``%2$s``: the points). ``body``: the answer (``%1$s``…``%6$s``: merchant
    id, title, unit price, points, voucher expiry, expiry policy); the row's ``body`` is it filled in.
    ``caller``: whether the statement checks the caller's standing first, and the token's refresh family."""
    return OrderRequest._make(
        (
            *(key or (None, None, None, None, None)),
            item_id,
            user_id,
            operator_id,
            quantity,
            now,
            order_id,
            digest,
            sealed,
            secrets.randbelow(MAX_SLOTS),
            *events,
            *audit,
            body,
            *caller,
        )
    )


async def place(conn: Conn, request: OrderRequest) -> asyncpg.Record:
    """Place an order in one statement (see ``ORDER_REQUEST_SQL``), its own transaction when run outside one.
    A refusal changed nothing."""
    row = await conn.fetchrow(ORDER_REQUEST_SQL, *request)
    assert row is not None  # the function always answers one row
    return row


async def place_together(conn: Conn, requests: Sequence[OrderRequest]) -> list[asyncpg.Record]:
    """Place orders in one statement, one transaction when run outside one: each as :func:`place` would, in the
    order given, each seeing those before it; one answer each, in that order. A refusal undoes its own order
    only; an error (a deadlock detected) undoes them all. An order that finds every free stock slot of its item
    held (by another statement, or by an earlier order of this one) does not wait for one: it answers ``busy``,
    undone like a refusal, for the caller to place it again alone (:func:`place`), where it may wait.

    Its locks: first the accounts of every person in it, in one order (the order of a ledger's credit, which
    locks its accounts thus too), then each order's stock slot, per-person count and audit chain in the order
    given. Locking each account only when its order came would hold an earlier order's audit chain while waiting
    for a later person's account, which another order of that person may hold while it waits for the chain."""
    rows = await conn.fetch(
        _together_sql(len(requests)),
        [r.user_id for r in requests],
        *itertools.chain.from_iterable(requests),
    )
    return list(rows)


@functools.cache
def _together_sql(n: int) -> str:
    fields = OrderRequest._fields
    width = len(fields)
    arguments = [f"v.{f}" for f in fields]
    arguments.insert(fields.index("body") + 1, "false")  # p_wait: an order in a group never waits for a slot
    values = ", ".join(
        f"({k}, " + ", ".join(f"${2 + k * width + j}::{t}" for j, t in enumerate(_TYPES)) + ")"
        for k in range(n)
    )
    # the accounts' locks are taken first: the one-time filter's subquery runs before any row is made
    return (
        "WITH held AS MATERIALIZED (SELECT count(*) AS accounts FROM (SELECT FROM point_accounts a"
        " WHERE a.user_id = ANY($1::uuid[]) ORDER BY a.user_id FOR UPDATE) locked)"
        f" SELECT r.* FROM (VALUES {values}) AS v(n, {', '.join(fields)})"
        f" CROSS JOIN LATERAL mall_order_request({', '.join(arguments)}) r"
        " WHERE (SELECT accounts FROM held) >= 0 ORDER BY v.n"
    )


async def order(conn: Conn, order_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {ORDER_COLUMNS} FROM mall_orders WHERE id = $1", order_id)


async def list_orders(
    conn: Conn,
    *,
    user_id: uuid.UUID | None = None,
    merchant_id: uuid.UUID | None = None,
    operator_id: uuid.UUID | None = None,
    status: str | None = None,
    item_id: uuid.UUID | None = None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[asyncpg.Record]:
    where, args = [], []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if user_id:
        where.append(f"user_id = {arg(user_id)}")
    if merchant_id:
        where.append(f"merchant_id = {arg(merchant_id)}")
    if operator_id:
        where.append(f"operator_id = {arg(operator_id)}")
    if status:
        where.append(f"status = {arg(status)}")
    if item_id:
        where.append(f"item_id = {arg(item_id)}")
    if after:
        where.append(f"(created_at, id) < ({arg(after[0])}, {arg(after[1])})")
    return await conn.fetch(
        f"SELECT {ORDER_COLUMNS} FROM mall_orders WHERE {' AND '.join(where)}"
        f" ORDER BY created_at DESC, id DESC LIMIT {arg(limit + 1)}",
        *args,
    )


async def redeem(conn: Conn, digest: bytes, merchant_id: uuid.UUID, now: datetime) -> asyncpg.Record | None:
    """Use a valid voucher of this merchant: exactly once, by the conditional update of its status."""
    return await conn.fetchrow(
        "UPDATE mall_orders SET status = 'redeemed', redeemed_at = $3, closed_at = $3"
        " WHERE voucher_digest = $1 AND merchant_id = $2 AND status = 'issued' AND voucher_expires_at > $3"
        f" RETURNING {ORDER_COLUMNS}",
        digest,
        merchant_id,
        now,
    )


async def voucher(conn: Conn, digest: bytes) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {ORDER_COLUMNS} FROM mall_orders WHERE voucher_digest = $1", digest)


async def cancel(
    conn: Conn, order_id: uuid.UUID, user_id: uuid.UUID, now: datetime, operator_id: uuid.UUID | None = None
) -> asyncpg.Record | None:
    """Cancel an unused, unexpired order of this person (with ``operator_id``: placed through that operator):
    exactly once, by the conditional update."""
    return await conn.fetchrow(
        "UPDATE mall_orders SET status = 'cancelled', cancelled_at = $3, closed_at = $3, refunded_points = points,"
        " refunded_at = $3 WHERE id = $1 AND user_id = $2 AND status = 'issued' AND voucher_expires_at > $3"
        f" AND ($4::uuid IS NULL OR operator_id = $4) RETURNING {ORDER_COLUMNS}",
        order_id,
        user_id,
        now,
        operator_id,
    )


async def expire_due(conn: Conn, now: datetime, limit: int) -> list[asyncpg.Record]:
    """Mark up to ``limit`` unused vouchers past their expiry ``expired`` (skipping rows a cancel or
    redemption holds right now): each exactly once, with the refund decided by the order's policy."""
    return await conn.fetch(
        "UPDATE mall_orders o SET status = 'expired', expired_at = $1, closed_at = $1,"
        " refunded_points = CASE WHEN o.expiry_policy = 'refund' THEN o.points ELSE 0 END,"
        " refunded_at = CASE WHEN o.expiry_policy = 'refund' THEN $1::timestamptz END"
        " WHERE o.id IN (SELECT id FROM mall_orders WHERE status = 'issued' AND voucher_expires_at <= $1"
        "   ORDER BY voucher_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
        " AND o.status = 'issued'"
        f" RETURNING {', '.join('o.' + c.strip() for c in ORDER_COLUMNS.split(','))}",
        now,
        limit,
    )


async def return_stock(conn: Conn, returns: list[tuple[uuid.UUID, int]]) -> None:
    """Put units back on sale, into slot 0 of each limited item (unlimited items have no slots);
    one slot per item, items in id order."""
    if not returns:
        return
    totals: dict[uuid.UUID, int] = {}
    for item_id, quantity in returns:
        totals[item_id] = totals.get(item_id, 0) + quantity
    ids = sorted(totals)
    await conn.execute(
        "WITH locked AS MATERIALIZED (SELECT item_id FROM mall_item_stock WHERE item_id = ANY($1::uuid[])"
        "  AND slot = 0 ORDER BY item_id FOR UPDATE)"
        " UPDATE mall_item_stock m SET remaining = m.remaining + t.q"
        " FROM unnest($1::uuid[], $2::int[]) AS t(id, q), locked"
        " WHERE m.item_id = t.id AND m.slot = 0 AND locked.item_id = t.id",
        ids,
        [totals[i] for i in ids],
    )


async def release_purchases(conn: Conn, releases: list[tuple[uuid.UUID, uuid.UUID, int]]) -> None:
    """Give back per-person allowance (refunded orders); counter rows locked in key order."""
    if not releases:
        return
    totals: dict[tuple[uuid.UUID, uuid.UUID], int] = {}
    for item_id, user_id, quantity in releases:
        totals[(item_id, user_id)] = totals.get((item_id, user_id), 0) + quantity
    keys = sorted(totals)
    await conn.execute(
        "WITH t AS (SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[]) AS t(i, u, q)),"
        " locked AS MATERIALIZED (SELECT p.item_id, p.user_id FROM mall_purchases p JOIN t ON p.item_id = t.i AND p.user_id = t.u"
        "  ORDER BY p.item_id, p.user_id FOR UPDATE OF p)"
        " UPDATE mall_purchases p SET quantity = p.quantity - t.q FROM t, locked"
        " WHERE p.item_id = t.i AND p.user_id = t.u AND locked.item_id = t.i AND locked.user_id = t.u",
        [k[0] for k in keys],
        [k[1] for k in keys],
        [totals[k] for k in keys],
    )


# ---- merchant statement and reports ----------------------------------------------------------------------


async def statement(conn: Conn, merchant_id: uuid.UUID, start: datetime, end: datetime) -> dict[str, tuple]:
    rows = await conn.fetch(
        "SELECT 'ordered' AS line, count(*) AS n, coalesce(sum(quantity), 0) AS q, coalesce(sum(points), 0) AS p"
        " FROM mall_orders WHERE merchant_id = $1 AND created_at >= $2 AND created_at < $3"
        " UNION ALL"
        " SELECT CASE WHEN status = 'expired' AND refunded_points > 0 THEN 'expired_refunded'"
        "   WHEN status = 'expired' THEN 'expired_forfeited' ELSE status END,"
        "   count(*), sum(quantity), sum(points)"
        " FROM mall_orders WHERE merchant_id = $1 AND closed_at >= $2 AND closed_at < $3 GROUP BY 1",
        merchant_id,
        start,
        end,
    )
    return {r["line"]: (r["n"], r["q"], r["p"]) for r in rows}


# Where the used points of each grouping are: (table, key column, when given back, how many given back).
# A merchant's are its items' orders; an operator's, the redemptions reported from its own mall (SZ 23).
_USED_POINTS = {
    "merchant": ("mall_orders", "merchant_id", "refunded_at", "refunded_points"),
    "operator": ("operator_redemptions", "operator_id", "reversed_at", "points"),
}


async def used_points(
    conn: Conn, group_by: str, start: datetime, end: datetime, tz: str, only: uuid.UUID | None
) -> list[asyncpg.Record]:
    """Per local day (in ``tz``) and merchant or operator (``group_by``): orders placed in [start, end),
    the points they used, and the points given back that day; ``only`` one organisation's rows."""
    table, key, given_back_at, given_back = _USED_POINTS[group_by]
    own = f"AND {key} = $4" if only else "AND $4::uuid IS NULL"
    return await conn.fetch(
        "SELECT day, key, sum(orders)::bigint AS orders, sum(used)::bigint AS points_used,"
        " sum(refunded)::bigint AS points_refunded FROM ("
        f"  SELECT (created_at AT TIME ZONE $3)::date AS day, {key} AS key, count(*) AS orders,"
        "   sum(points) AS used, 0 AS refunded"
        f"  FROM {table} WHERE created_at >= $1 AND created_at < $2 {own} GROUP BY 1, 2"
        "  UNION ALL"
        f"  SELECT ({given_back_at} AT TIME ZONE $3)::date, {key}, 0, 0, sum({given_back})"
        f"  FROM {table} WHERE {given_back_at} >= $1 AND {given_back_at} < $2 {own} GROUP BY 1, 2"
        " ) t GROUP BY day, key ORDER BY day, key",
        start,
        end,
        tz,
        only,
    )


# ---- operator-mall redemptions ---------------------------------------------------------------------------


async def claim_redemption(
    conn: Conn,
    redemption_id: uuid.UUID,
    operator_id: uuid.UUID,
    operator_order_id: str,
    user_id: uuid.UUID,
    points: int,
    description: str,
    now: datetime,
) -> bool:
    """Claim (operator, operator_order_id); False if it was claimed before (a concurrent claim waits here)."""
    inserted = await conn.fetchval(
        "INSERT INTO operator_redemptions (id, operator_id, operator_order_id, user_id, points, description, status,"
        " created_at) VALUES ($1, $2, $3, $4, $5, $6, 'completed', $7)"
        " ON CONFLICT (operator_id, operator_order_id) DO NOTHING RETURNING id",
        redemption_id,
        operator_id,
        operator_order_id,
        user_id,
        points,
        description,
        now,
    )
    return inserted is not None


async def set_redemption_entry(conn: Conn, redemption_id: uuid.UUID, entry_id: int) -> asyncpg.Record:
    """Note the spend of a redemption this transaction has just claimed."""
    row = await conn.fetchrow(
        f"UPDATE operator_redemptions SET spend_entry_id = $2 WHERE id = $1 RETURNING {REDEMPTION_COLUMNS}",
        redemption_id,
        entry_id,
    )
    assert row is not None
    return row


async def redemption(conn: Conn, operator_id: uuid.UUID, operator_order_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {REDEMPTION_COLUMNS} FROM operator_redemptions WHERE operator_id = $1 AND operator_order_id = $2",
        operator_id,
        operator_order_id,
    )


async def spends(
    conn: Conn, user_id: uuid.UUID, order_ids: list[uuid.UUID], redemption_ids: list[uuid.UUID]
) -> list[asyncpg.Record]:
    """(ref_type, id, quantity, what, org_id) of the person's own orders (the item's title and merchant) and
    operator redemptions (their description, null for none, and operator) among these ids."""
    return await conn.fetch(
        "SELECT 'mall_order' AS ref_type, id, quantity, title AS what, merchant_id AS org_id FROM mall_orders"
        " WHERE user_id = $1 AND id = ANY($2::uuid[])"
        " UNION ALL SELECT 'operator_redemption', id, NULL, description, operator_id FROM operator_redemptions"
        " WHERE user_id = $1 AND id = ANY($3::uuid[])",
        user_id,
        order_ids,
        redemption_ids,
    )


async def reverse_redemption(
    conn: Conn, operator_id: uuid.UUID, operator_order_id: str, now: datetime, made_after: datetime
) -> asyncpg.Record | None:
    """Reverse a completed redemption made after ``made_after``: exactly once, by the conditional update."""
    return await conn.fetchrow(
        "UPDATE operator_redemptions SET status = 'reversed', reversed_at = $3"
        " WHERE operator_id = $1 AND operator_order_id = $2 AND status = 'completed' AND created_at > $4"
        f" RETURNING {REDEMPTION_COLUMNS}",
        operator_id,
        operator_order_id,
        now,
        made_after,
    )


async def list_redemptions(
    conn: Conn, operator_id: uuid.UUID, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[asyncpg.Record]:
    if after:
        return await conn.fetch(
            f"SELECT {REDEMPTION_COLUMNS} FROM operator_redemptions WHERE operator_id = $1"
            " AND (created_at, id) < ($2, $3) ORDER BY created_at DESC, id DESC LIMIT $4",
            operator_id,
            after[0],
            after[1],
            limit + 1,
        )
    return await conn.fetch(
        f"SELECT {REDEMPTION_COLUMNS} FROM operator_redemptions WHERE operator_id = $1"
        " ORDER BY created_at DESC, id DESC LIMIT $2",
        operator_id,
        limit + 1,
    )


async def redemptions_by_id(conn: Conn, user_id: uuid.UUID, ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    """The person's own redemptions among ``ids``, newest first."""
    return await conn.fetch(
        f"SELECT {REDEMPTION_COLUMNS} FROM operator_redemptions WHERE id = ANY($2::uuid[]) AND user_id = $1"
        " ORDER BY created_at DESC, id DESC",
        user_id,
        ids,
    )


async def merchant_activity(conn: Conn, start: datetime, end: datetime) -> list[asyncpg.Record]:
    """Per merchant, from ``start`` to ``end``: orders placed and their points, vouchers redeemed, orders
    cancelled, vouchers expired unused, and points refunded (each by when it happened); merchants with any."""
    return await conn.fetch(
        "SELECT merchant_id,"
        " count(*) FILTER (WHERE created_at >= $1 AND created_at < $2)::bigint AS orders,"
        " coalesce(sum(points) FILTER (WHERE created_at >= $1 AND created_at < $2), 0)::bigint AS points,"
        " count(*) FILTER (WHERE redeemed_at >= $1 AND redeemed_at < $2)::bigint AS redeemed,"
        " count(*) FILTER (WHERE cancelled_at >= $1 AND cancelled_at < $2)::bigint AS cancelled,"
        " count(*) FILTER (WHERE expired_at >= $1 AND expired_at < $2)::bigint AS expired,"
        " coalesce(sum(refunded_points) FILTER (WHERE refunded_at >= $1 AND refunded_at < $2), 0)::bigint"
        "   AS refunded_points"
        " FROM mall_orders WHERE (created_at >= $1 AND created_at < $2) OR (closed_at >= $1 AND closed_at < $2)"
        " OR (refunded_at >= $1 AND refunded_at < $2) GROUP BY merchant_id",
        start,
        end,
    )
