"""What ``bench/ingest_ab.py`` and ``bench/redeem_ab.py`` share: two checkouts' servers at once, each round's load
sent to both at the same time, and AFTER's figures over BEFORE's round by round."""

import argparse
import asyncio
import statistics
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bench._server import ROOT, Server, dumps

SIDES = ("before", "after")


def arguments(doc: str | None) -> argparse.ArgumentParser:
    """A script's command line: the two checkouts and ``--rounds`` (8); the script adds its own load's."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path, nargs="?", default=ROOT)
    parser.add_argument("--rounds", type=int, default=8)
    return parser


@asynccontextmanager
async def servers(before: Path, after: Path) -> AsyncIterator[dict[str, Server]]:
    """Both checkouts' servers (``--workers 2``), each on an embedded PostgreSQL of its own, stopped at the end."""
    started = {"before": Server(workers=2, checkout=before), "after": Server(workers=2, checkout=after)}
    try:
        for server in started.values():
            await asyncio.to_thread(server.start)
        yield started
    finally:
        for server in started.values():
            if server.proc is not None:
                server.stop()


def per_unit(
    before: dict[str, float], after: dict[str, float], units: int, rate: str, seconds: float
) -> dict:
    """The CPU a unit (µs) of the API's processes, PostgreSQL's and both, from two ``Server.cpu_seconds()``
    readings, and the units a second as ``rate``."""
    figures = {k: (after[k] - before[k]) / units * 1e6 for k in after}
    return {**figures, "total": sum(figures.values()), rate: units / seconds}


async def rounds(
    count: int, prepare: Callable[[str, int], Any], turn: Callable[[str, Any], Awaitable[dict]]
) -> dict[str, list[dict]]:
    """``count`` rounds after one that warms both and is not kept: each round's load made for both sides first
    (``prepare(side, run)``), then sent to both at the same time (``turn(side, load)``, its figures kept)."""
    kept: dict[str, list[dict]] = {side: [] for side in SIDES}
    for run in range(count + 1):
        load = {side: prepare(side, run) for side in SIDES}
        measured = await asyncio.gather(*(turn(side, load[side]) for side in SIDES))
        if run:
            for side, figures in zip(SIDES, measured, strict=True):
                kept[side].append(figures)
    return kept


def report(
    benchmark: str, args: argparse.Namespace, load: dict, kept: dict[str, list[dict]], unit: str, rate: str
) -> str:
    """The JSON a script prints: its setup (the checkouts, the rounds, ``load``), each side's medians
    (``cpu_us_per_<unit>``: API, PostgreSQL, both; ``rate``), the medians over the rounds of AFTER's figure over
    BEFORE's in the same round, and every round."""
    keys = ("api", "postgres", "total", rate)
    pairs = list(zip(kept["before"], kept["after"], strict=True))
    return dumps(
        {
            "benchmark": benchmark,
            "setup": {
                "before": str(args.before.resolve()),
                "after": str(args.after.resolve()),
                "rounds": args.rounds,
                **load,
                "server_workers": 2,
            },
            f"cpu_us_per_{unit}": {
                side: {k: round(statistics.median(r[k] for r in kept[side]), 1) for k in keys[:3]}
                for side in SIDES
            },
            rate: {side: round(statistics.median(r[rate] for r in kept[side])) for side in SIDES},
            "after_over_before": {
                k: round(statistics.median(a[k] / b[k] for b, a in pairs), 3) for k in keys
            },
            "rounds": {side: [{k: round(v, 1) for k, v in r.items()} for r in kept[side]] for side in SIDES},
        }
    )
