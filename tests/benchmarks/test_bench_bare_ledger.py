"""The bare ledger ``bench/redeem.py`` measures the orders against (``bench/_ledger.py``): its transfers keep
every balance and entry in agreement under concurrent calls, refuse an overdraft, and its check finds a
balance that disagrees."""

import asyncpg
import pytest

from app.core import db
from bench import _ledger as ledger

ACCOUNTS = 40


@pytest.fixture
async def bare(servers):
    url = db.plain_url(servers.database_url)
    await ledger.install(url, ACCOUNTS)
    conn = await asyncpg.connect(url)
    try:
        yield url, conn
    finally:
        await conn.execute(f"DROP SCHEMA {ledger.SCHEMA} CASCADE")
        await conn.close()


async def test_concurrent_transfers_keep_every_balance_and_entry_in_agreement(bare):
    url, conn = bare
    moves = ledger.pairs(600, ACCOUNTS)
    async with ledger.pool(url, 8) as pool:
        result = await ledger.transfers(pool, moves)

    assert len(result["latencies"]) == 600 and all(t > 0 for t in result["latencies"])
    assert result["seconds"] > 0
    assert await conn.fetchval(f"SELECT count(*) FROM {ledger.SCHEMA}.transfers") == 600
    assert await conn.fetchval(f"SELECT count(*) FROM {ledger.SCHEMA}.entries") == 1200
    assert await conn.fetchval(f"SELECT sum(balance) FROM {ledger.SCHEMA}.accounts") == (
        ACCOUNTS * ledger.START_BALANCE
    )
    sent = {a: 0 for a in range(1, ACCOUNTS + 1)}
    for source, target in moves:
        sent[source] -= ledger.AMOUNT
        sent[target] += ledger.AMOUNT
    balances = dict(await conn.fetch(f"SELECT id, balance FROM {ledger.SCHEMA}.accounts"))
    assert balances == {a: ledger.START_BALANCE + moved for a, moved in sent.items()}
    assert await ledger.consistent(url)


async def test_an_overdraft_is_refused_with_nothing_written(bare):
    url, conn = bare
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.fetchval(f"SELECT {ledger.SCHEMA}.transfer(1, 2, $1)", ledger.START_BALANCE + 1)

    assert await conn.fetchval(f"SELECT count(*) FROM {ledger.SCHEMA}.transfers") == 0
    assert await conn.fetchval(f"SELECT balance FROM {ledger.SCHEMA}.accounts WHERE id = 2") == (
        ledger.START_BALANCE
    )
    assert await ledger.consistent(url)


@pytest.mark.parametrize(
    "breakage",
    [
        "UPDATE {s}.accounts SET balance = balance + 1 WHERE id = 3",
        "UPDATE {s}.entries SET amount = amount + 1 WHERE id = 1",
        "UPDATE {s}.entries SET balance_after = balance_after - 1"
        " WHERE id = (SELECT max(id) FROM {s}.entries WHERE account_id = 1)",
    ],
    ids=["a balance moved alone", "an entry's amount", "a last balance_after"],
)
async def test_the_check_finds_what_disagrees(bare, breakage):
    url, conn = bare
    async with ledger.pool(url, 1) as pool:
        await ledger.transfers(pool, [(1, 2), (2, 1), (1, 3)])
    assert await ledger.consistent(url)

    await conn.execute(breakage.format(s=ledger.SCHEMA))

    assert not await ledger.consistent(url)
