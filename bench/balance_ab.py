"""Two versions of the code side by side: the CPU a balance read costs each, compared round by round.

    python bench/balance_ab.py BEFORE [AFTER] [--rounds 8] [--tokens 2000] [--reads 8000] [--people 4000]
                               [--connections 64]

What ``bench/redeem_ab.py`` is for orders, this is for ``bench/redeem.py``'s two balance phases: BEFORE and AFTER
are checkouts of this project (AFTER defaults to this one), both servers run at once (``--workers 2``, an embedded
PostgreSQL each), each set up with ``--people`` people. Each round mints ``--tokens`` new user tokens on each
server (not measured), then sends both, at the same time, the reads ``bench/redeem.py`` sends: ``GET
/v1/me/account`` once with each new token (its signature verified, its caller's standing read), then ``--reads``
more with those tokens, shuffled (a process that has not seen a token yet reads its caller; the other keeps it).
The CPU a read (API, PostgreSQL) is over all of a round's reads; every read must answer 200. Prints JSON as
``bench/redeem_ab.py`` does (``after_over_before``: the medians over the rounds of AFTER's figure over BEFORE's).
"""

import asyncio
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._ab import arguments, report, rounds, servers  # noqa: E402
from bench.redeem import RawClient, fresh_tokens  # noqa: E402
from bench.redeem_ab import sent, set_up  # noqa: E402


async def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--reads", type=int, default=8000)
    parser.add_argument("--people", type=int, default=4000)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if args.tokens > args.people:
        parser.error("--tokens: at most --people (one new token each a round)")
    async with servers(args.before, args.after) as started:
        states = await set_up(started, args.people, 0)

        async def turn(side: str, _: None) -> dict:
            """One round's reads on one side: its new tokens minted (not measured), then the reads."""
            server = started[side]
            host, port = server.base_url.removeprefix("http://").split(":")
            async with RawClient(host, int(port), 32) as raw:
                tokens = await fresh_tokens(raw, states[side], args.tokens)
            again = [tokens[n % len(tokens)] for n in range(args.reads)]
            random.shuffle(again)
            calls = [("GET", "/v1/me/account", token, b"") for token in (*tokens, *again)]
            return await sent(server, calls, args.connections, 200, "reads_per_s")

        kept = await rounds(args.rounds, lambda side, run: None, turn)
    print(
        report(
            "balance_ab",
            args,
            {
                "new_tokens_per_round": args.tokens,
                "more_reads_per_round": args.reads,
                "people": args.people,
                "connections_each": args.connections,
            },
            kept,
            "read",
            "reads_per_s",
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
