"""The short chaos run: a real server process killed with SIGKILL and restarted, PostgreSQL backends
terminated mid-transaction, under concurrent ingestion, orders, cancellations, redemptions and
voucher expiry; then every invariant (see ``bench/chaos.py``, whose long run is by hand).

The server process shares the test session's embedded PostgreSQL and Redis.
"""

import asyncio
import json

from bench.chaos import Chaos, ChaosServer, voucher_expiry_in_two_days
from tests.factories import authority_token, bearer
from tests.factories_points import ensure_rule

KILLS = 3
TERMINATIONS = 3


async def test_nothing_is_lost_or_doubled_through_kills_and_terminated_backends(servers, client, capsys):
    await ensure_rule()
    authority = bearer(await authority_token(client))
    server = ChaosServer(servers.database_url, servers.redis_url)
    await asyncio.to_thread(server.start)
    try:
        run = Chaos(
            server,
            servers.database_url,
            authority,
            people=12,
            duration=10,
            kills=KILLS,
            terminations=TERMINATIONS,
            seed=20261122,
            run_job=voucher_expiry_in_two_days,
        )
        report = await run.run()
    finally:
        await asyncio.to_thread(server.stop)
    with capsys.disabled():
        print(
            json.dumps(
                {
                    "chaos_short": {
                        **report["chaos"],
                        **report["traffic"],
                        "violations": len(report["violations"]),
                    }
                }
            )
        )
    assert report["violations"] == []
    assert report["chaos"]["server_kills_survived"] == KILLS
    assert report["chaos"]["backend_terminations"] == TERMINATIONS
    traffic = report["traffic"]
    assert traffic["records"] > 0 and traffic["orders"] > 0
    assert traffic["cancellations"] + traffic["redemptions"] + traffic["vouchers_expired_by_job"] > 0
