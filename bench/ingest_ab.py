"""Two versions of the code side by side: the CPU a credited record costs each, compared round by round.

    python bench/ingest_ab.py BEFORE [AFTER] [--rounds 8] [--batches 16] [--clients 4] [--users 2000]

BEFORE and AFTER are checkouts of this project (AFTER defaults to this one; e.g. ``git worktree add
/tmp/before HEAD~1``; a checkout without a ``.venv`` runs on this one's Python). On this machine the same code
measures up to 2.5× apart from one hour to the next, and changes of a few percent drown in that noise between
separate invocations of ``bench/ingest.py``. Here both servers run at once, each on an embedded PostgreSQL
of its own with ``--workers 2`` (both started by this script, so with this checkout's settings), and each round
sends ``--batches`` batches of 1,000 records (those of ``bench/ingest.py``, from ``--clients`` clients) to both
at the same time: each sees the same moment of the machine and the same load beside it, and the CPU its
processes and its PostgreSQL's spent in the round is its own. A first round warms both and is not counted.
Prints JSON: each side's medians (CPU a record, API and PostgreSQL; records/s) and, the figures to read, the
medians over the rounds of AFTER's figure over BEFORE's in the same round (``after_over_before``: 0.95 for
``total`` is 5 % less CPU a record). The same code on both sides measured 1.000 and 0.980 (rounds 0.94–1.09),
and the same code on two PostgreSQL settings 0.988 and, swapped, 0.968: the second side may gain up to ~2 %
from its place, so for a change of a few percent run it twice, the second time with the two swapped, and take
the geometric mean of AFTER's figures over BEFORE's (the place cancels). Sending each round's batches to one
server and then the other, as this script first did, measured the same code 0.88–1.03 (``docs/scaling.md``).
"""

import asyncio
import sys
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._ab import arguments, per_unit, report, rounds, servers  # noqa: E402
from bench._server import Server, enrol_many, seed_operator  # noqa: E402
from bench.ingest import make_batches, submit_all  # noqa: E402


async def turn(server: Server, op: dict, bodies: list[bytes], clients: int) -> dict:
    """Batches sent to one server: its CPU a credited record (API, PostgreSQL) and its rate."""
    before = server.cpu_seconds()
    result = await submit_all(server.base_url, op, bodies, clients, False)
    after = server.cpu_seconds()
    assert result["credited"] == 1000 * len(bodies), f"only {result['credited']} records credited"
    return per_unit(before, after, result["credited"], "records_per_s", result["seconds"])


async def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--batches", type=int, default=16)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--users", type=int, default=2000)
    args = parser.parse_args()
    if not 1 <= args.rounds <= 9:  # make_batches puts run 10 on days still to come: its records are refused
        parser.error("--rounds: from 1 to 9")
    async with servers(args.before, args.after) as started:
        seeded = {}
        for side, server in started.items():
            async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
                op = await seed_operator(client, server.urls.database_url)
                seeded[side] = (op, await enrol_many(client, op, args.users))

        def batches(side: str, run: int) -> list[bytes]:  # each run on days of its own: every record credited
            return [orjson.dumps({"records": b}) for b in make_batches(seeded[side][1], args.batches, run)]

        async def sent(side: str, bodies: list[bytes]) -> dict:
            return await turn(started[side], seeded[side][0], bodies, args.clients)

        kept = await rounds(args.rounds, batches, sent)
    print(
        report(
            "ingest_ab",
            args,
            {
                "batches_per_turn": args.batches,
                "records_per_batch": 1000,
                "clients": args.clients,
                "users": args.users,
            },
            kept,
            "record",
            "records_per_s",
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
