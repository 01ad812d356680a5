"""``carbon-points ledger verify`` and ``carbon-points points expire``."""

import uuid
from datetime import timedelta

import sqlalchemy as sa

from app.core import clock, db
from tests.factories import invoke_cli, make_operator
from tests.factories_points import enrol, ensure_rule, make_methodology, record, submit


class TestLedgerCommands:
    async def test_verify_and_expire(self, client, run_sync):
        await ensure_rule()
        btype = await make_methodology(factor="100")
        op = await make_operator(client)
        u = await enrol(client, op)
        r = await submit(
            client,
            op,
            [record(u["external_user_id"], btype, quantity=1.0, start=clock.now() - timedelta(hours=3))],
        )
        assert r.json()["results"][0]["points"] == 10

        ok = await invoke_cli(run_sync, "ledger", "verify")
        assert ok.exit_code == 0, ok.output
        assert "ledger intact" in ok.output

        clock.set_offset(timedelta(days=731))
        try:
            result = await invoke_cli(run_sync, "points", "expire")
        finally:
            clock.set_offset(timedelta(0))
        assert result.exit_code == 0, result.output
        async with db.session_scope() as session:
            entries = (
                await session.execute(
                    sa.text(
                        "SELECT kind, amount, balance_after FROM ledger_entries WHERE user_id = :u ORDER BY id"
                    ),
                    {"u": uuid.UUID(u["user_id"])},
                )
            ).all()
        assert [tuple(e) for e in entries] == [("earn", 10, 10), ("expire", -10, 0)]
        assert (await invoke_cli(run_sync, "ledger", "verify")).exit_code == 0

    async def test_verify_exits_1_naming_the_broken_invariant(self, client, run_sync):
        await ensure_rule()
        btype = await make_methodology(factor="100")
        op = await make_operator(client)
        u = await enrol(client, op)
        await submit(
            client,
            op,
            [record(u["external_user_id"], btype, quantity=1.0, start=clock.now() - timedelta(hours=3))],
        )
        async with db.session_scope() as session:
            await session.execute(
                sa.text("UPDATE point_accounts SET balance = balance + 5 WHERE user_id = :u"),
                {"u": uuid.UUID(u["user_id"])},
            )
        try:
            broken = await invoke_cli(run_sync, "ledger", "verify")
            assert broken.exit_code == 1
            assert "account balance equals the sum of its entries" in broken.output
        finally:
            async with db.session_scope() as session:
                await session.execute(
                    sa.text("UPDATE point_accounts SET balance = balance - 5 WHERE user_id = :u"),
                    {"u": uuid.UUID(u["user_id"])},
                )
