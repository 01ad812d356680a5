"""Two versions of the code side by side: the CPU a spread order costs each, compared round by round.

    python bench/redeem_ab.py BEFORE [AFTER] [--rounds 8] [--orders 2000] [--people 4000] [--items 200]
                              [--connections 32]

What ``bench/ingest_ab.py`` is for batches, this is for the orders of ``bench/redeem.py``'s spread phase: BEFORE
and AFTER are checkouts of this project (AFTER defaults to this one; e.g. ``git worktree add /tmp/before
HEAD~1``); both servers run at once, each with ``--workers 2`` on an embedded PostgreSQL of its own (both started
by this script, so with this checkout's settings), set up as ``bench/redeem.py`` sets its server up
(``--people`` people with 200 points each, a merchant's ``--items`` items). Each round sends ``--orders`` orders
of one unit, each person at most once a round, to both at the same time from ``--connections`` keep-alive
connections each: both see the same moment of the machine, and the CPU each one's processes and PostgreSQL
spent in the round is its own. A first round warms both and is not counted; every order must be placed (201).
Prints JSON: each side's medians (CPU an order, API and PostgreSQL; orders/s) and the medians over the rounds of
AFTER's figure over BEFORE's in the same round (``after_over_before``). A side's place may be worth a few
percent: for a small change run it twice, the second time with the two swapped, and take the geometric mean.
"""

import asyncio
import random
import sys
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._ab import arguments, per_unit, report, rounds, servers  # noqa: E402
from bench._server import Server  # noqa: E402
from bench.redeem import POINTS_EACH, PRICE, RawClient, setup, timed  # noqa: E402

JSON_HEADER = b"content-type: application/json\r\n"


def orders(state: dict, count: int, run: int) -> list[tuple[str, str, bytes, bytes]]:
    """``count`` orders of one unit of a random item, by as many different people."""
    return [
        (
            "POST",
            "/v1/me/orders",
            state["users"][n] + JSON_HEADER + f"idempotency-key: ab-{run}-{n}\r\n".encode(),
            orjson.dumps({"item_id": random.choice(state["spread_items"]), "quantity": 1}),
        )
        for n in random.sample(range(len(state["users"])), count)
    ]


async def sent(server: Server, calls: list, connections: int, status: int, rate: str) -> dict:
    """Calls sent to one server: its CPU a call (API, PostgreSQL) and ``rate``; every call must answer ``status``."""
    host, port = server.base_url.removeprefix("http://").split(":")
    async with RawClient(host, int(port), connections) as raw:
        before = server.cpu_seconds()
        result = await timed(raw, calls, connections)
        after = server.cpu_seconds()
    refused = [s for s in result["statuses"] if s != status]
    assert not refused, f"{len(refused)} of {len(calls)} calls not answered {status}: {sorted(set(refused))}"
    return per_unit(before, after, len(calls), rate, result["seconds"])


async def set_up(started: dict[str, Server], people: int, items: int) -> dict[str, dict]:
    """Each side's server set up as ``bench/redeem.py`` sets one up (``people`` with points, a merchant's
    ``items``): what each side's calls are made of."""
    states = {}
    for side, server in started.items():
        host, port = server.base_url.removeprefix("http://").split(":")
        async with httpx.AsyncClient(base_url=server.base_url, timeout=120) as client:
            async with RawClient(host, int(port), 32) as raw:
                states[side] = await setup(client, raw, server.urls.database_url, people, items)
    return states


async def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--people", type=int, default=4000)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if args.orders > args.people:
        parser.error("--orders: at most --people (each person orders at most once a round)")
    if (args.rounds + 1) * PRICE > POINTS_EACH:
        parser.error(f"--rounds: at most {POINTS_EACH // PRICE - 1} (each person has {POINTS_EACH} points)")
    async with servers(args.before, args.after) as started:
        states = await set_up(started, args.people, args.items)

        async def turn(side: str, calls: list) -> dict:
            return await sent(started[side], calls, args.connections, 201, "orders_per_s")

        kept = await rounds(args.rounds, lambda side, run: orders(states[side], args.orders, run), turn)
    print(
        report(
            "redeem_ab",
            args,
            {
                "orders_per_round": args.orders,
                "people": args.people,
                "items": args.items,
                "connections_each": args.connections,
            },
            kept,
            "order",
            "orders_per_s",
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
