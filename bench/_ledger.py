"""A bare double-entry ledger in PostgreSQL: the database's own speed for a transfer, measured in the same run.

The yardstick of "the request path at the speed of the database": the least a ledger's transfer can be, in the
shape of the pure-SQL ledgers (one function call a transfer, its own transaction): lock the two accounts in id
order, move the amount between their balances (a balance may not go negative), write the transfer and its two
entries with each account's balance after it. Three tables with the indexes such a ledger reads by (an
account's entries, a transfer's sides), no idempotency key, no audit entry, no event, no stock, no HTTP. It is
created in its own schema of the benchmark's throw-away database (``bench_bare_ledger``), never by the
platform's migrations, and called from the load generator's process over ``connections`` connections, as the
HTTP phases are.
"""

import asyncio
import random
import time

import asyncpg

SCHEMA = "bench_bare_ledger"
START_BALANCE = 1_000_000_000
AMOUNT = 10

_INSTALL = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
CREATE TABLE {SCHEMA}.accounts (
  id bigint PRIMARY KEY,
  balance bigint NOT NULL CHECK (balance >= 0)
);
CREATE TABLE {SCHEMA}.transfers (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  from_id bigint NOT NULL,
  to_id bigint NOT NULL,
  amount bigint NOT NULL CHECK (amount > 0),
  created_at timestamptz NOT NULL
);
CREATE INDEX ON {SCHEMA}.transfers (from_id, id);
CREATE INDEX ON {SCHEMA}.transfers (to_id, id);
CREATE TABLE {SCHEMA}.entries (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id bigint NOT NULL,
  transfer_id bigint NOT NULL,
  amount bigint NOT NULL,
  balance_after bigint NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE INDEX ON {SCHEMA}.entries (account_id, id);
CREATE FUNCTION {SCHEMA}.transfer(p_from bigint, p_to bigint, p_amount bigint) RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
  t bigint;
  from_after bigint;
  to_after bigint;
  at timestamptz := clock_timestamp();
BEGIN
  PERFORM 1 FROM {SCHEMA}.accounts WHERE id IN (p_from, p_to) ORDER BY id FOR UPDATE;
  UPDATE {SCHEMA}.accounts SET balance = balance - p_amount WHERE id = p_from RETURNING balance INTO from_after;
  UPDATE {SCHEMA}.accounts SET balance = balance + p_amount WHERE id = p_to RETURNING balance INTO to_after;
  INSERT INTO {SCHEMA}.transfers (from_id, to_id, amount, created_at) VALUES (p_from, p_to, p_amount, at)
    RETURNING id INTO t;
  INSERT INTO {SCHEMA}.entries (account_id, transfer_id, amount, balance_after, created_at)
    VALUES (p_from, t, -p_amount, from_after, at), (p_to, t, p_amount, to_after, at);
  RETURN t;
END
$fn$;
"""

# What must hold after any number of transfers: the balances' sum unchanged, each account's balance its start
# plus its entries, each transfer's two entries summing to nothing, and its latest entry's balance_after its
# balance (rows breaking each; none is consistent).
_BROKEN = f"""
SELECT 'sum' FROM {SCHEMA}.accounts HAVING sum(balance) <> count(*) * {START_BALANCE}::numeric
UNION ALL
SELECT 'balance' FROM {SCHEMA}.accounts a
  LEFT JOIN (SELECT account_id, sum(amount) AS moved FROM {SCHEMA}.entries GROUP BY account_id) e
  ON e.account_id = a.id WHERE a.balance <> {START_BALANCE} + coalesce(e.moved, 0)
UNION ALL
SELECT 'transfer' FROM {SCHEMA}.entries GROUP BY transfer_id HAVING sum(amount) <> 0 OR count(*) <> 2
UNION ALL
SELECT 'balance_after' FROM {SCHEMA}.accounts a JOIN LATERAL (SELECT balance_after FROM {SCHEMA}.entries e
  WHERE e.account_id = a.id ORDER BY e.id DESC LIMIT 1) last ON last.balance_after <> a.balance
LIMIT 1
"""


async def install(database_url: str, accounts: int) -> None:
    """The bare ledger with ``accounts`` accounts, each holding :data:`START_BALANCE`."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(_INSTALL)
        await conn.execute(
            f"INSERT INTO {SCHEMA}.accounts (id, balance) SELECT g, $1 FROM generate_series(1, $2) g",
            START_BALANCE,
            accounts,
        )
        await conn.execute(f"VACUUM ANALYZE {SCHEMA}.accounts")
    finally:
        await conn.close()


def pairs(count: int, accounts: int) -> list[tuple[int, int]]:
    """``count`` transfers between two different accounts drawn at random."""
    moves = []
    for _ in range(count):
        source, target = random.sample(range(1, accounts + 1), 2)
        moves.append((source, target))
    return moves


def pool(database_url: str, connections: int) -> asyncpg.Pool:
    """``connections`` connections for :func:`transfers`, all open once entered (``async with``): a phase's CPU
    readings taken inside it see their backends."""
    return asyncpg.create_pool(database_url, min_size=connections, max_size=connections)


async def transfers(pool: asyncpg.Pool, moves: list[tuple[int, int]]) -> dict:
    """Each move a transfer of :data:`AMOUNT`, its own statement and transaction, as many at once as ``pool``
    has connections: the wall time and each transfer's latency, as the HTTP phases' ``timed`` answers them."""
    latencies: list[float] = [0.0] * len(moves)
    next_move = iter(range(len(moves)))

    async def worker() -> None:
        async with pool.acquire() as conn:
            for i in next_move:
                t = time.perf_counter()
                await conn.fetchval(f"SELECT {SCHEMA}.transfer($1, $2, $3)", *moves[i], AMOUNT)
                latencies[i] = time.perf_counter() - t

    started = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(pool.get_max_size())])
    return {"seconds": time.perf_counter() - started, "latencies": latencies}


async def consistent(database_url: str) -> bool:
    """Whether every balance, transfer and entry of the bare ledger agrees (see ``_BROKEN``)."""
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(_BROKEN) is None
    finally:
        await conn.close()
